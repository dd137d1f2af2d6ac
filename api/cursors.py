"""Opaque, tamper-evident pagination cursors bound to the query they came from."""

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS


class CursorError(ValueError):
    """The cursor was altered, forged, or belongs to another query."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_fingerprint(*parts: Any) -> str:
    """A short digest of what defines a query (filter, sort, ...), to bind its cursors to it."""
    canonical = json_util.dumps(parts, json_options=CANONICAL_JSON_OPTIONS, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _signature(key: str, payload: bytes) -> bytes:
    return hmac.new(key.encode(), b"cursor:" + payload, hashlib.sha256).digest()[:18]


def encode_cursor(values: list[Any], fingerprint: str, key: str) -> str:
    payload = json_util.dumps(
        {"v": values, "q": fingerprint}, json_options=CANONICAL_JSON_OPTIONS
    ).encode()
    return f"{_b64(payload)}.{_b64(_signature(key, payload))}"


def decode_cursor(cursor: str, fingerprint: str, key: str) -> list[Any]:
    """The sort-key values of the last item seen; CursorError unless issued for this query."""
    try:
        encoded_payload, encoded_signature = cursor.split(".")
        payload, signature = _unb64(encoded_payload), _unb64(encoded_signature)
    except (ValueError, binascii.Error) as error:
        raise CursorError("malformed cursor") from error
    if len(cursor) > 4096 or not hmac.compare_digest(signature, _signature(key, payload)):
        raise CursorError("invalid cursor")
    try:
        data = json_util.loads(payload)
    except (ValueError, json.JSONDecodeError) as error:
        raise CursorError("malformed cursor") from error
    if data.get("q") != fingerprint:
        raise CursorError("cursor belongs to another query")
    values = data.get("v")
    if not isinstance(values, list):
        raise CursorError("malformed cursor")
    return values
