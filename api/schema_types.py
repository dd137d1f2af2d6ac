"""The pydantic types a compiled collection schema is assembled from, and the checks they run.

The checks run on every write, so pydantic does the work wherever it can; they fail with
PydanticCustomError so that failures surface as ordinary errors with a location.
"""

import math
import re
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Annotated, Any, Union

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StringConstraints,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

# `constructor` is refused as Parse Server does: JavaScript clients merging such an object can
# have their prototypes polluted (`__proto__` is already out through its underscores).
FIELD_NAME = re.compile(r"(?!constructor\Z)[A-Za-z][A-Za-z0-9_]{0,63}")
# BSON stores integers as int64: a larger int would make the insert itself fail.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_VALUE_DEPTH = 100  # MongoDB refuses documents nested deeper
# rust-regex runs user patterns in linear time; Python's backtracking `re` would allow ReDoS.
MODEL_CONFIG = ConfigDict(strict=True, regex_engine="rust-regex", allow_inf_nan=False)

# RFC 3339 requires the offset; fromisoformat alone would also take naive or partial forms.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)
_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*:([\w\-.~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+", re.ASCII
)
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _error(kind: str, msg: str, subpath: tuple = ()) -> PydanticCustomError:
    # The text travels in ctx: pydantic would read braces in a template as placeholders.
    # `subpath` locates the problem below the value pydantic reports it on (see document_errors).
    return PydanticCustomError(kind, "{msg}", {"msg": msg, "subpath": list(subpath)})


def to_utc_datetime(value: str) -> datetime:
    match = _RFC3339.fullmatch(value)
    if not match:
        raise _error("date_time", "Input should be an RFC 3339 date-time with a timezone")
    fraction = match[1] or ""  # fromisoformat takes at most microseconds
    value = value.replace(fraction, fraction[:7].ljust(7, "0")) if fraction else value
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _error("date_time", "Input should be a valid date-time") from None


def check_email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise _error("email", "Input should be a valid email address") from None
    return value


def _regex_check(regex: re.Pattern, kind: str, msg: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise _error(kind, msg)
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
        raise _error("unique_items", "Array items should be unique")
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
            raise _error("too_deep", "Value is nested too deeply", path)
        if isinstance(current, dict):
            for key, item in current.items():
                if not isinstance(key, str) or not FIELD_NAME.fullmatch(key):
                    raise _error("field_name", bad_name_msg(key), (*path, str(key)))
                stack.append((item, (*path, key)))
        elif isinstance(current, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(current))
        elif isinstance(current, float) and not math.isfinite(current):
            raise _error("finite_number", "Input should be a finite number", path)
        elif isinstance(current, int) and not INT64_MIN <= current <= INT64_MAX:
            raise _error("int64", "Integer is too large to store", path)
        elif current is not None and json_type(current) is None:
            raise _error("json_type", "Input should be a JSON value", path)
    return value


JSON_VALUE = Annotated[Any, AfterValidator(check_json_value)]


class ClosedObject(BaseModel):
    model_config = ConfigDict(**MODEL_CONFIG, extra="forbid")


class OpenObject(BaseModel):
    model_config = ConfigDict(**MODEL_CONFIG, extra="allow")

    @model_validator(mode="after")
    def validate_extra_keys(self) -> "OpenObject":
        for key, value in (self.__pydantic_extra__ or {}).items():
            check_json_value({key: value})
        return self


def annotated(base: Any, *metadata: Any) -> Any:
    return Annotated[(base, *metadata)]


def _same(value: Any) -> Any:
    return value


def string_type(low: int | None, high: int | None, pattern: str | None, fmt: str | None) -> Any:
    metadata: list[Any] = [StringConstraints(min_length=low, max_length=high, pattern=pattern)]
    if fmt:
        metadata.append(AfterValidator(FORMATS[fmt]))
    if fmt == "date-time":
        # Re-validating a stored document meets the BSON dates its strings were turned into.
        metadata.insert(1, BeforeValidator(_datetime_to_string))
        # Input is a string but the value becomes a datetime; dump it untouched.
        metadata.append(PlainSerializer(_same, return_type=Any))
    return annotated(str, *metadata)


def _datetime_to_string(value: object) -> object:
    if isinstance(value, datetime):
        # BSON dates are UTC; pymongo hands them back naive unless told otherwise.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def _integral_float_to_int(value: object) -> object:
    # JSON does not tell 3 from 3.0: an integral float is a valid integer.
    return int(value) if type(value) is float and value.is_integer() else value


def integer_type(low: float | None, high: float | None) -> Any:
    ge = INT64_MIN if low is None else max(INT64_MIN, math.ceil(low))
    le = INT64_MAX if high is None else min(INT64_MAX, math.floor(high))
    return annotated(int, BeforeValidator(_integral_float_to_int), Field(ge=ge, le=le))


def _number_kind(value: object) -> str:
    return "#int" if type(value) is int and INT64_MIN <= value <= INT64_MAX else "#float"


def number_type(low: float | None, high: float | None) -> Any:
    """Ints stay ints (3 is stored as 3, not 3.0); the tag keeps errors to one per value."""
    ge, le = (None if low is None else math.ceil(low)), (None if high is None else math.floor(high))
    integer = annotated(int, Field(ge=ge, le=le), Tag("#int"))
    ge_f, le_f = (None if low is None else float(low)), (None if high is None else float(high))
    real = annotated(float, Field(ge=ge_f, le=le_f), Tag("#float"))
    return Annotated[Union[integer, real], Discriminator(_number_kind)]  # noqa: UP007


def array_type(items: Any, low: int | None, high: int | None, unique: bool) -> Any:
    metadata: list[Any] = [Field(min_length=low, max_length=high)]
    if unique:
        metadata.append(BeforeValidator(check_unique))
    return annotated(list[items], *metadata)


def union_type(members: dict[str, Any], nullable: bool) -> Any:
    """Several JSON types: dispatch on the value's own type, so only one member reports errors."""
    if not members:
        return None
    if len(members) == 1:
        (annotation,) = members.values()
    else:

        def member(value: Any) -> str | None:
            # Serialization asks again, with the validated value.
            kind = json_type(value)
            if kind is None and isinstance(value, BaseModel | datetime):
                kind = "object" if isinstance(value, BaseModel) else "string"
            if kind in ("integer", "number") and kind not in members:
                # Ints are numbers; the integer member takes integral floats.
                kind = "number" if kind == "integer" else "integer"
            return f"#{kind}" if kind in members else None

        names = " or ".join(sorted([*members, *(["null"] if nullable else [])]))
        tagged = tuple(annotated(a, Tag(f"#{name}")) for name, a in members.items())
        annotation = Annotated[
            Union[tagged],  # noqa: UP007
            Discriminator(
                member, custom_error_type="type", custom_error_message=f"Input should be {names}"
            ),
        ]
    return annotation | None if nullable else annotation


def enum_type(annotation: Any, allowed: list) -> Any:
    keys = {value_key(v) for v in allowed}
    shown = ", ".join(json_repr(v) for v in allowed[:10]) + (", ..." if len(allowed) > 10 else "")

    def check(value: object) -> object:
        if value_key(value) not in keys:
            raise _error("enum", f"Input should be one of: {shown}")
        return value

    return Annotated[annotation, BeforeValidator(check)]


def json_repr(value: object) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)[:40]


_MESSAGES = {
    "model_type": "Input should be an object",
    "model_attributes_type": "Input should be an object",
    "dict_type": "Input should be an object",
    "list_type": "Input should be an array",
    "none_required": "Input should be null",
}


def document_errors(exc: ValidationError) -> list[dict]:
    """Pydantic errors as [{"loc": path in the document, "msg": short text}]."""
    result = []
    for error in exc.errors(include_url=False, include_input=False):
        kind, ctx = error["type"], error.get("ctx") or {}
        *parents, last = error["loc"] or ("#",)
        # "#..." entries are union tags (see union_type), not document keys.
        loc = [p for p in parents if isinstance(p, int) or not p.startswith("#")]
        if kind == "extra_forbidden" or isinstance(last, int) or not last.startswith("#"):
            loc.append(last)
        loc.extend(ctx.get("subpath", ()))
        msg = _MESSAGES.get(kind, error["msg"])
        if kind == "extra_forbidden":
            msg = f"Unknown field {str(last)[:70]!r} is not allowed"
        elif kind in ("too_short", "too_long") and ctx.get("field_type") == "List":
            bound = ctx.get("min_length", ctx.get("max_length"))
            size = "at least" if kind == "too_short" else "at most"
            msg = f"Array should have {size} {bound} item{'' if bound == 1 else 's'}"
        result.append({"loc": loc, "msg": msg})
    return result
