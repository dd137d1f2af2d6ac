"""The pydantic types a compiled collection schema is assembled from, and its errors as text.

The types run on every write, so pydantic does the work wherever it can; the checks it cannot
express are in `api.value_checks`.
"""

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Union

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

from api.value_checks import (
    FORMATS,
    INT64_MAX,
    INT64_MIN,
    check_json_value,
    check_unique,
    custom_error,
    json_type,
    value_key,
)

# rust-regex runs user patterns in linear time; Python's backtracking `re` would allow ReDoS.
MODEL_CONFIG = ConfigDict(strict=True, regex_engine="rust-regex", allow_inf_nan=False)

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
            raise custom_error("enum", f"Input should be one of: {shown}")
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
