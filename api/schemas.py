"""Collection schemas: a JSON Schema subset compiled once into the pydantic model checking writes.

A schema is checked in full when it is defined, so a bad or hostile one is refused up front with
the path of the offending keyword, and each write then costs one pydantic validation.
"""

import json
import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import bson
from pydantic import MISSING, BaseModel, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import SchemaError as CoreSchemaError
from pydantic_core import SchemaValidator, core_schema

from api import schema_types
from api.fields import JSON_TYPES, FieldSpec

MAX_DEPTH = 8
MAX_PROPERTIES = 500
MAX_PATTERN_LENGTH = 512
_MAX_ERRORS = 20
# Below MongoDB's 16 MiB, leaving room for the system fields.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024
_UNCOMPILABLE = "Schema could not be compiled"

_GENERIC_KEYWORDS = frozenset({"type", "enum", "default", "writeOnly", "title", "description"})
_TYPED_KEYWORDS: dict[str, str] = {
    **dict.fromkeys(("minLength", "maxLength", "pattern", "format"), "string"),
    **dict.fromkeys(("minimum", "maximum"), "integer or number"),
    **dict.fromkeys(("items", "minItems", "maxItems", "uniqueItems"), "array"),
    **dict.fromkeys(("properties", "required", "additionalProperties"), "object"),
}


class _ErrorList(Exception):
    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


class SchemaError(_ErrorList):
    """The schema itself is unacceptable; each error's loc starts with "schema"."""


class DocumentInvalid(_ErrorList):
    """A document does not satisfy its collection's schema; each loc is a path in the document."""


@dataclass(frozen=True)
class CompiledSchema:
    schema: dict
    model: type[BaseModel]
    fields: dict[str, FieldSpec]

    def validate(self, data: object) -> dict:
        """The document to store: defaults filled in, date-times as aware UTC datetimes."""
        if not isinstance(data, dict):
            raise DocumentInvalid([{"loc": [], "msg": "Document should be a JSON object"}])
        try:
            document = self.model.model_validate(data)
        except ValidationError as exc:
            raise DocumentInvalid(schema_types.document_errors(exc)) from None
        stored = document.model_dump(by_alias=True)
        # MongoDB refuses documents over 16 MiB with a server error; field operators can grow
        # one past that a request at a time, so the limit is a validation failure instead.
        if len(bson.encode(stored)) > MAX_DOCUMENT_BYTES:
            message = f"The document is larger than {MAX_DOCUMENT_BYTES} bytes"
            raise DocumentInvalid([{"loc": [], "msg": message}])
        return stored


def compile_schema(schema: object) -> CompiledSchema:
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise SchemaError([{"loc": ["schema"], "msg": "Schema should be plain JSON"}]) from None
    return _compile_canonical(canonical)


@lru_cache(maxsize=256)
def _compile_canonical(canonical: str) -> CompiledSchema:
    schema = json.loads(canonical)
    try:
        model, fields = _Compiler().compile(schema)
    except SchemaError:
        raise
    except Exception:
        # The checks should refuse every bad schema first; this keeps any they miss a 422.
        raise SchemaError([{"loc": ["schema"], "msg": _UNCOMPILABLE}]) from None
    return CompiledSchema(schema=schema, model=model, fields=fields)


@dataclass
class _Node:
    annotation: Any
    spec: FieldSpec
    children: dict[str, FieldSpec]  # dotted paths below this one, relative to it


class _Compiler:
    def __init__(self) -> None:
        self.errors: list[dict] = []
        self.properties = 0

    def fail(self, path: list, msg: str) -> None:
        self.errors.append({"loc": list(path), "msg": msg})
        if len(self.errors) >= _MAX_ERRORS:
            raise SchemaError(self.errors)

    def compile(self, schema: Any) -> tuple[type[BaseModel], dict[str, FieldSpec]]:
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise SchemaError([{"loc": ["schema"], "msg": 'Schema should be {"type": "object"}'}])
        for key in ("default", "writeOnly"):
            if key in schema:
                msg = f"{key} is not allowed on the document itself"
                raise SchemaError([{"loc": ["schema", key], "msg": msg}])
        root = self.node(schema, ["schema"], 0, False)
        if self.errors or root is None:
            raise SchemaError(self.errors or [{"loc": ["schema"], "msg": _UNCOMPILABLE}])
        return root.annotation, root.children

    def node(self, schema: Any, path: list, level: int, write_only: bool) -> _Node | None:
        if not isinstance(schema, dict):
            self.fail(path, "Schema should be an object")
            return None
        types = self.types(schema, path)
        if types is None:
            return None
        self.check_keywords(schema, path, types)
        level += bool(types & {"object", "array"})
        if level > MAX_DEPTH:
            self.fail(path, f"Objects and arrays may nest at most {MAX_DEPTH} levels deep")
            return None
        errors_before = len(self.errors)
        for key in ("title", "description"):
            if not isinstance(schema.get(key, ""), str):
                self.fail([*path, key], f"{key} should be a string")
        if not isinstance(schema.get("writeOnly", False), bool):
            self.fail([*path, "writeOnly"], "writeOnly should be true or false")
        write_only = write_only or schema.get("writeOnly") is True
        members: dict[str, Any] = {"boolean": bool} if "boolean" in types else {}
        children: dict[str, FieldSpec] = {}
        items = None
        if "string" in types:
            members["string"] = self.string(schema, path)
        if types & {"integer", "number"}:
            low, high = self.limits(schema, "minimum", "maximum", path, self.bound)
            if "integer" in types:
                members["integer"] = schema_types.integer_type(low, high)
            if "number" in types:
                members["number"] = schema_types.number_type(low, high)
        if "array" in types:
            members["array"], items, children = self.array(schema, path, level, write_only)
        if "object" in types:
            members["object"], properties = self.object(schema, path, level, write_only)
            for name, spec in properties.items():
                children[name] = _merge(children[name], spec) if name in children else spec
        if len(self.errors) > errors_before:
            return None
        annotation = schema_types.union_type(members, "null" in types)
        if "enum" in schema:
            annotation = self.enum(schema["enum"], annotation, [*path, "enum"], types)
        if "default" in schema:
            self.check_values(annotation, {"default": schema["default"]}, path, "Default")
        spec = FieldSpec(frozenset(types), items, write_only, schema.get("format"))
        return _Node(annotation, spec, children)

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
        if "format" in schema and (not isinstance(fmt, str) or fmt not in schema_types.FORMATS):
            self.fail(
                [*path, "format"], f"format should be one of {', '.join(schema_types.FORMATS)}"
            )
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

    def array(self, schema: dict, path: list, level: int, write_only: bool) -> tuple:
        low, high = self.limits(schema, "minItems", "maxItems", path, self.count)
        items, spec, children = schema_types.JSON_VALUE, None, {}
        if "items" in schema:
            node = self.node(schema["items"], [*path, "items"], level, write_only)
            if node is not None:
                items, spec, children = node.annotation, node.spec, node.children
        unique = schema.get("uniqueItems", False)
        if not isinstance(unique, bool):
            self.fail([*path, "uniqueItems"], "uniqueItems should be true or false")
        return schema_types.array_type(items, low, high, unique is True), spec, children

    def object(self, schema: dict, path: list, level: int, write_only: bool) -> tuple:
        properties, required = schema.get("properties", {}), schema.get("required", [])
        if not isinstance(properties, dict):
            self.fail([*path, "properties"], "properties should be an object")
            properties = {}
        if not isinstance(schema.get("additionalProperties", False), bool):
            self.fail([*path, "additionalProperties"], "additionalProperties should be a boolean")
        self.check_required(required, properties, [*path, "required"])
        self.properties += len(properties)
        if self.properties > MAX_PROPERTIES:
            self.fail(path, f"Schemas may declare at most {MAX_PROPERTIES} properties in all")
            raise SchemaError(self.errors)
        fields: dict[str, Any] = {}
        paths: dict[str, FieldSpec] = {}
        for index, (name, sub) in enumerate(properties.items()):
            where = [*path, "properties", name]
            if not schema_types.FIELD_NAME.fullmatch(name):
                self.fail(where, schema_types.bad_name_msg(name))
                continue
            node = self.node(sub, where, level, write_only)
            if node is None:
                continue
            paths[name] = node.spec
            paths.update((f"{name}.{child}", spec) for child, spec in node.children.items())
            if "default" in sub and name in required:
                self.fail([*where, "default"], "A required field cannot have a default")
            elif "default" in sub:
                field = Field(default=sub["default"], alias=name, validate_default=True)
                fields[f"f{index}"] = (node.annotation, field)
            elif name in required:
                fields[f"f{index}"] = (node.annotation, Field(alias=name))
            else:  # an absent optional field stays absent in the output
                fields[f"f{index}"] = (node.annotation | MISSING, Field(MISSING, alias=name))
        if schema.get("additionalProperties") is True:
            base: type[BaseModel] = schema_types.OpenObject
        else:
            base = schema_types.ClosedObject
        # Python names stay neutral; JSON names ride on aliases so "json" or "copy" can't clash.
        return create_model("Document" if level == 1 else "Object", __base__=base, **fields), paths

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
        elif len({schema_types.value_key(v) for v in values}) != len(values):
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


def _merge(a: FieldSpec, b: FieldSpec) -> FieldSpec:
    """A path reached both as an object's property and through an array's items."""
    fmt = a.format if a.format == b.format else None
    return FieldSpec(a.types | b.types, a.items or b.items, a.write_only or b.write_only, fmt)


def _finite_number(value: object) -> bool:
    try:
        return type(value) in (int, float) and math.isfinite(float(value))  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float
        return False
