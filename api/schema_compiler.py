"""Compiling a collection schema (a JSON Schema subset) into the pydantic model checking writes.

A schema is checked in full when it is defined, so a bad or hostile one is refused up front with
the path of the offending keyword; compiled schemas are cached by their canonical JSON.
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import MISSING, BaseModel, Field, create_model

from api import schema_types
from api.fields import FieldSpec
from api.schema_keywords import KeywordChecker
from api.schemas import CompiledSchema, SchemaError
from api.value_checks import FIELD_NAME, bad_name_msg

MAX_DEPTH = 8
MAX_PROPERTIES = 500
_UNCOMPILABLE = "Schema could not be compiled"


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
        model, fields = SchemaCompiler().compile(schema)
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


class SchemaCompiler(KeywordChecker):
    """Walks the schema's structure, building the model and the map of field paths."""

    def __init__(self) -> None:
        super().__init__()
        self.properties = 0

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
            if not FIELD_NAME.fullmatch(name):
                self.fail(where, bad_name_msg(name))
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


def _merge(a: FieldSpec, b: FieldSpec) -> FieldSpec:
    """A path reached both as an object's property and through an array's items."""
    fmt = a.format if a.format == b.format else None
    return FieldSpec(a.types | b.types, a.items or b.items, a.write_only or b.write_only, fmt)
