"""Checking a schema's keyword values one at a time: types, bounds, patterns, formats, enums.

`SchemaCompiler` walks the schema's structure and builds the model; the checks here collect the
errors (up to a limit) so that one definition reports every problem with its path at once.
"""

import math
import sys
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import SchemaError as CoreSchemaError
from pydantic_core import SchemaValidator, core_schema

from api import schema_types
from api.fields import JSON_TYPES
from api.schemas import SchemaError
from api.value_checks import FORMATS, value_key

MAX_PATTERN_LENGTH = 512
_MAX_ERRORS = 20

_GENERIC_KEYWORDS = frozenset({"type", "enum", "default", "writeOnly", "title", "description"})
_TYPED_KEYWORDS: dict[str, str] = {
    **dict.fromkeys(("minLength", "maxLength", "pattern", "format"), "string"),
    **dict.fromkeys(("minimum", "maximum"), "integer or number"),
    **dict.fromkeys(("items", "minItems", "maxItems", "uniqueItems"), "array"),
    **dict.fromkeys(("properties", "required", "additionalProperties"), "object"),
}


class KeywordChecker:
    """The keyword checks, each reporting through `fail` with the keyword's path."""

    def __init__(self) -> None:
        self.errors: list[dict] = []

    def fail(self, path: list, msg: str) -> None:
        self.errors.append({"loc": list(path), "msg": msg})
        if len(self.errors) >= _MAX_ERRORS:
            raise SchemaError(self.errors)

    def types(self, schema: dict, path: list) -> frozenset[str] | None:
        raw = schema.get("type")
        names = [raw] if isinstance(raw, str) else raw
        valid = isinstance(names, list) and all(isinstance(n, str) for n in names)
        if not valid or not names or not set(names) <= JSON_TYPES:
            self.fail([*path, "type"], f"type should be one of {', '.join(sorted(JSON_TYPES))}")
            return None
        if len(set(names)) != len(names):
            self.fail([*path, "type"], "type should not repeat a type")
            return None
        return frozenset(names)

    def check_keywords(self, schema: dict, path: list, types: frozenset[str]) -> None:
        for key in schema:
            applies = _TYPED_KEYWORDS.get(key)
            if key in _GENERIC_KEYWORDS:
                continue
            if applies is None:
                self.fail([*path, key], f"Unknown keyword {key[:70]!r}")
            elif not set(applies.split(" or ")) & types:
                self.fail([*path, key], f"{key} applies only to type {applies}")

    def limits(self, schema: dict, low: str, high: str, path: list, read: Any) -> tuple:
        lo, hi = read(schema, low, path), read(schema, high, path)
        if lo is not None and hi is not None and lo > hi:
            self.fail([*path, low], f"{low} should not be greater than {high}")
        return lo, hi

    def count(self, schema: dict, key: str, path: list) -> int | None:
        value = schema.get(key)
        if key in schema and (type(value) is not int or value < 0):
            self.fail([*path, key], f"{key} should be a non-negative integer")
            return None
        return None if value is None else min(value, sys.maxsize)

    def bound(self, schema: dict, key: str, path: list) -> float | None:
        value = schema.get(key)
        if key in schema and not _finite_number(value):
            self.fail([*path, key], f"{key} should be a finite number")
            return None
        return value

    def string(self, schema: dict, path: list) -> Any:
        low, high = self.limits(schema, "minLength", "maxLength", path, self.count)
        pattern, fmt = schema.get("pattern"), schema.get("format")
        if "pattern" in schema:
            pattern = self.pattern(pattern, [*path, "pattern"])
        if "format" in schema and (not isinstance(fmt, str) or fmt not in FORMATS):
            self.fail([*path, "format"], f"format should be one of {', '.join(FORMATS)}")
            return str
        return schema_types.string_type(low, high, pattern, fmt)

    def pattern(self, pattern: Any, path: list) -> str | None:
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
            self.fail(path, f"pattern should be a string of at most {MAX_PATTERN_LENGTH} chars")
            return None
        try:
            SchemaValidator(core_schema.str_schema(pattern=pattern, regex_engine="rust-regex"))
        except CoreSchemaError as exc:
            last = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
            reason = last.removeprefix("SchemaError: ").removeprefix("error: ")[:120]
            self.fail(path, f"pattern is not a supported regular expression: {reason}")
            return None
        return pattern

    def check_required(self, required: Any, properties: dict, path: list) -> None:
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            self.fail(path, "required should be a list of property names")
        elif len(set(required)) != len(required):
            self.fail(path, "required should not repeat a name")
        else:
            for index, name in enumerate(required):
                if name not in properties:
                    self.fail([*path, index], f"Required field {name[:70]!r} is not in properties")

    def enum(self, values: Any, annotation: Any, path: list, types: frozenset[str]) -> Any:
        if types & {"object", "array"}:
            self.fail(path, "enum applies only to string, integer, number, boolean and null")
        elif not isinstance(values, list) or not values:
            self.fail(path, "enum should be a non-empty list")
        elif len({value_key(v) for v in values}) != len(values):
            self.fail(path, "enum should not repeat a value")
        else:
            self.check_values(annotation, dict(enumerate(values)), path, "Enum value")
            return schema_types.enum_type(annotation, values)
        return annotation

    def check_values(self, annotation: Any, values: dict, path: list, what: str) -> None:
        """Each value (keyed by its place under `path`) must pass the field's own validation."""
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            adapter: TypeAdapter = TypeAdapter(annotation)
        else:
            adapter = TypeAdapter(annotation, config=schema_types.MODEL_CONFIG)
        for key, value in values.items():
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                for error in schema_types.document_errors(exc):
                    self.fail([*path, key, *error["loc"]], f"{what} is invalid: {error['msg']}")


def _finite_number(value: object) -> bool:
    try:
        return type(value) in (int, float) and math.isfinite(float(value))  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float
        return False
