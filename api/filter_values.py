"""The values a filter compares fields with: each checked against the field's spec and converted.

ObjectId strings become ObjectIds and RFC 3339 strings become datetimes, because that is how
those fields are stored; a value fitting none of the field's types is a FilterError.
"""

import re
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from api.fields import FieldSpec

# Items of an array whose schema leaves them unconstrained: any scalar may be an element.
ANY_SCALAR = FieldSpec(frozenset({"string", "number", "boolean", "null"}))
JSON_KINDS: dict[type, str] = {
    dict: "object", list: "array", str: "string", int: "integer", float: "number",
    bool: "boolean", type(None): "null",
}  # fmt: skip
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


class FilterError(ValueError):
    """A filter the API refuses; the message names the problem and where it is."""


def convert_value(value: object, spec: FieldSpec, loc: str) -> Any:
    """Checks a scalar against a spec, converting ObjectId and date strings to BSON types."""
    types = spec.types
    kind = JSON_KINDS.get(type(value), "unknown")
    if isinstance(value, dict):
        raise FilterError(f"{loc}: sub-document equality is not supported, use dotted paths")
    if isinstance(value, list):
        pass  # arrays only ever match as a whole, through `equality`
    elif isinstance(value, str):
        if "objectid" in types:
            if _OBJECT_ID.fullmatch(value) is None:
                raise FilterError(f"{loc}: expected a 24-hex-digit ObjectId")
            return ObjectId(value)
        if "datetime" in types or ("string" in types and spec.format == "date-time"):
            return _date_time(value, loc)
        if "string" in types:
            return value
    elif (
        kind in types
        or (kind == "integer" and "number" in types)
        or (isinstance(value, float) and value.is_integer() and "integer" in types)
    ):
        return value
    raise FilterError(f"{loc}: expected {describe_types(types)}, got {kind}")


def _date_time(value: str, loc: str) -> datetime:
    if _DATE_TIME.fullmatch(value) is None:
        raise FilterError(f"{loc}: expected an RFC 3339 date-time with a UTC offset")
    # fromisoformat takes at most microseconds; BSON dates keep only milliseconds anyway.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.upper().replace(" ", "T"))
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise FilterError(f"{loc}: expected an RFC 3339 date-time with a UTC offset") from None


def describe_types(types: frozenset[str]) -> str:
    names = {"objectid": "ObjectId string", "datetime": "date-time string"}
    return " or ".join(sorted(names.get(t, t) for t in types)) or "nothing"
