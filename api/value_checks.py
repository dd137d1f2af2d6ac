"""The value checks compiled schemas run through pydantic validators, on every write.

String formats, items that must be unique, and values no schema describes (which must still be
storable JSON with valid field names); each fails with a PydanticCustomError so that failures
surface as ordinary validation errors with a location.
"""

import math
import re
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic_core import PydanticCustomError

# `constructor` is refused as Parse Server does: JavaScript clients merging such an object can
# have their prototypes polluted (`__proto__` is already out through its underscores).
FIELD_NAME = re.compile(r"(?!constructor\Z)[A-Za-z][A-Za-z0-9_]{0,63}")
# BSON stores integers as int64: a larger int would make the insert itself fail.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_VALUE_DEPTH = 100  # MongoDB refuses documents nested deeper

# RFC 3339 requires the offset; fromisoformat alone would also take naive or partial forms.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)
_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*:([\w\-.~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+", re.ASCII
)
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def custom_error(kind: str, msg: str, subpath: tuple = ()) -> PydanticCustomError:
    # The text travels in ctx: pydantic would read braces in a template as placeholders.
    # `subpath` locates the problem below the value pydantic reports it on (see document_errors).
    return PydanticCustomError(kind, "{msg}", {"msg": msg, "subpath": list(subpath)})


def to_utc_datetime(value: str) -> datetime:
    match = _RFC3339.fullmatch(value)
    if not match:
        raise custom_error("date_time", "Input should be an RFC 3339 date-time with a timezone")
    fraction = match[1] or ""  # fromisoformat takes at most microseconds
    value = value.replace(fraction, fraction[:7].ljust(7, "0")) if fraction else value
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise custom_error("date_time", "Input should be a valid date-time") from None


def check_email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise custom_error("email", "Input should be a valid email address") from None
    return value


def _regex_check(regex: re.Pattern, kind: str, msg: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise custom_error(kind, msg)
        return value

    return check


FORMATS: dict[str, Callable[[str], Any]] = {
    "date-time": to_utc_datetime,
    "email": check_email,
    "uri": _regex_check(_URI, "uri", "Input should be an absolute URI with a scheme"),
    "uuid": _regex_check(_UUID, "uuid", "Input should be a UUID"),
}


def json_type(value: object) -> str | None:
    """The JSON type name of a Python value, None for values JSON cannot hold."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {str: "string", float: "number", list: "array", dict: "object"}.get(type(value))


def value_key(value: object, depth: int = 0) -> Hashable:
    """Equal keys for equal JSON values: `true` is not `1`, `1.0` is `1`, key order is moot."""
    if isinstance(value, bool | str) or value is None:
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", value)
    if depth < MAX_VALUE_DEPTH and isinstance(value, list):
        return ("array", tuple(value_key(item, depth + 1) for item in value))
    if depth < MAX_VALUE_DEPTH and isinstance(value, dict):
        return ("object", frozenset((k, value_key(v, depth + 1)) for k, v in value.items()))
    return ("other", id(value))  # fails validation anyway


def check_unique(value: object) -> object:
    if isinstance(value, list) and len({value_key(item) for item in value}) != len(value):
        raise custom_error("unique_items", "Array items should be unique")
    return value


def bad_name_msg(key: object) -> str:
    return (
        f"Field name {str(key)[:70]!r} is not allowed: names start with a letter and "
        "contain only letters, digits and underscores"
    )


def check_json_value(value: object) -> object:
    """Values no schema describes must still be storable: JSON, valid field names, bounded depth."""
    stack: list[tuple[object, tuple]] = [(value, ())]
    while stack:
        current, path = stack.pop()
        if len(path) > MAX_VALUE_DEPTH:
            raise custom_error("too_deep", "Value is nested too deeply", path)
        if isinstance(current, dict):
            for key, item in current.items():
                if not isinstance(key, str) or not FIELD_NAME.fullmatch(key):
                    raise custom_error("field_name", bad_name_msg(key), (*path, str(key)))
                stack.append((item, (*path, key)))
        elif isinstance(current, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(current))
        elif isinstance(current, float) and not math.isfinite(current):
            raise custom_error("finite_number", "Input should be a finite number", path)
        elif isinstance(current, int) and not INT64_MIN <= current <= INT64_MAX:
            raise custom_error("int64", "Integer is too large to store", path)
        elif current is not None and json_type(current) is None:
            raise custom_error("json_type", "Input should be a JSON value", path)
    return value
