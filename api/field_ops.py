"""Atomic field operators (inc, push, pull, add_to_set) planned as one guarded MongoDB update.

The route validates `OpsPlan.result` with the collection's model, then runs the update filtered
by `OpsPlan.guard`. A guard holds exactly when the operators, applied to whatever the document
is by then, still give a valid result, so concurrent increments never serialise on `_version`;
a constraint no filter can express sets `needs_version_guard` instead.
"""

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.field_op_guards import ancestor_guards, grow_guard, inc_guard, subschema
from api.fields import FieldSpec
from api.filter_values import FilterError, convert_value
from api.value_checks import INT64_MAX, INT64_MIN
from documents.users import to_milliseconds

OPERATORS = {"inc": "$inc", "push": "$push", "pull": "$pull", "add_to_set": "$addToSet"}
MAX_PATHS = 100
MAX_ITEM_DEPTH = 16
_UNKNOWN = "Unknown field"
_NAMES = ", ".join(OPERATORS)
_MISSING = object()


class OpsError(ValueError):
    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


@dataclass(frozen=True)
class OpsPlan:
    result: dict
    update: dict
    guard: dict
    needs_version_guard: bool


def parse_ops(
    body: object, fields: Mapping[str, FieldSpec], *, allow_write_only: bool = False
) -> dict[str, dict[str, Any]]:
    """The operations, shape- and type-checked; integral floats become ints on integer fields."""
    if not isinstance(body, dict):
        raise OpsError([{"loc": ["body"], "msg": "Body should be a JSON object"}])
    errors: list[dict] = []
    for key in body.keys() - OPERATORS.keys():
        errors.append({"loc": ["body", str(key)[:70]], "msg": f"Unknown operator; use {_NAMES}"})
    ops: dict[str, dict[str, Any]] = {}
    for name in OPERATORS:
        if name in body and not isinstance(body[name], dict):
            errors.append({"loc": ["body", name], "msg": "Should be an object of field: value"})
        elif name in body:
            ops[name] = dict(body[name])
    if errors:
        raise OpsError(errors)
    total = sum(map(len, ops.values()))
    if total == 0:
        raise OpsError([{"loc": ["body"], "msg": f"Give at least one operation: {_NAMES}"}])
    if total > MAX_PATHS:
        raise OpsError([{"loc": ["body"], "msg": f"At most {MAX_PATHS} fields per request"}])
    seen: dict[str, str] = {}
    for name, changes in ops.items():
        for path, value in changes.items():
            loc = ["body", name, path]
            spec = _user_field(path, fields, allow_write_only)
            # MongoDB refuses an update touching one path twice, or a path and its parent.
            clash = next((p for p in seen if _overlap(p, path)), None)
            if isinstance(spec, str):
                errors.append({"loc": loc, "msg": spec})
            elif clash is not None:
                errors.append({"loc": loc, "msg": f"Conflicts with {clash!r} in {seen[clash]}"})
            elif name == "inc":
                changes[path] = _increment(value, spec, loc, errors)
            elif "array" not in spec.types:
                errors.append({"loc": loc, "msg": f"{name} applies only to array fields"})
            else:
                _check_item(value, loc, 0, errors)
                changes[path] = _as_stored_item(value, spec.items)
            seen.setdefault(path, name)
    if errors:
        raise OpsError(errors)
    return ops


def plan_ops(ops: dict, stored: dict, schema: dict) -> OpsPlan:
    result = {k: copy.deepcopy(v) for k, v in stored.items() if not k.startswith("_")}
    update: dict[str, dict] = {}
    guards: list[dict] = []
    version = False
    for name, changes in ops.items():
        for path, value in changes.items():
            loc = ["body", name, path]
            parent, leaf = _parent(result, path, create=name != "pull", loc=loc)
            current = _MISSING if parent is None else parent.get(leaf, _MISSING)
            sub = subschema(schema, path)
            update.setdefault(OPERATORS[name], {})[path] = copy.deepcopy(value)
            guards += ancestor_guards(path, stored, schema)
            if name == "inc":
                if current is not _MISSING and not _is_number(current):
                    raise OpsError([{"loc": loc, "msg": "Cannot increment a non-number"}])
                new = (0 if current is _MISSING else current) + value
                if isinstance(new, int) and not INT64_MIN <= new <= INT64_MAX:
                    raise OpsError([{"loc": loc, "msg": "Result would overflow a 64-bit integer"}])
                assert parent is not None  # created above for every operator but pull
                parent[leaf] = new
                guard, exact = inc_guard(path, value, None if current is _MISSING else current, sub)
                guards += guard
                version |= not exact or "enum" in sub
                continue
            if current is not _MISSING and not isinstance(current, list):
                raise OpsError([{"loc": loc, "msg": f"Cannot {name} on a non-array value"}])
            if name == "pull":
                if isinstance(current, list):
                    current[:] = [e for e in current if not _pull_matches(e, value)]
                version |= bool(sub.get("minItems"))
                continue
            assert parent is not None
            items = parent.setdefault(leaf, [])
            if name == "push" or not any(_bson_equal(e, value) for e in items):
                items.append(copy.deepcopy(value))
            guard, exact = grow_guard(path, value, name, sub)
            guards += guard
            version |= not exact
    combined = guards[0] if len(guards) == 1 else ({"$and": guards} if guards else {})
    return OpsPlan(result, update, combined, version)


def _user_field(path: object, fields: Mapping[str, FieldSpec], write_only: bool) -> Any:
    """The field's spec, or the message refusing it (write-only fields hide as unknown)."""
    if not isinstance(path, str) or not path:
        return _UNKNOWN
    if any(part.startswith("_") for part in path.split(".")):
        return "System fields are read-only"
    spec = fields.get(path)
    if spec is None or (spec.write_only and not write_only):
        return _UNKNOWN
    parts = path.split(".")
    for end in range(1, len(parts)):
        ancestor = fields.get(".".join(parts[:end]))
        # A path reached through an array's items names no single value MongoDB can update.
        if ancestor is None or "object" not in ancestor.types or "array" in ancestor.types:
            return "Only fields nested in objects, not arrays, can be updated by path"
    return spec


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _increment(value: object, spec: FieldSpec, loc: list, errors: list[dict]) -> object:
    if not spec.types & {"integer", "number"}:
        errors.append({"loc": loc, "msg": "inc applies only to integer and number fields"})
    elif not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        errors.append({"loc": loc, "msg": "Increment should be a finite number"})
    elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        errors.append({"loc": loc, "msg": "Increment should fit in a 64-bit integer"})
    elif isinstance(value, float) and "number" not in spec.types:
        if not value.is_integer():
            errors.append({"loc": loc, "msg": "Increment should be an integer"})
        elif not INT64_MIN <= value <= INT64_MAX:  # 1e20 is an integer, but not a storable one
            errors.append({"loc": loc, "msg": "Increment should fit in a 64-bit integer"})
        else:  # JSON does not tell 3 from 3.0, as elsewhere in the schema layer
            return int(value)
    return value


def _as_stored_item(value: object, items: FieldSpec | None) -> object:
    """A date-time or ObjectId string as the array holds it, so that the update's guards, the
    presence check of add_to_set and pull compare it with the stored items like with like."""
    if items is None or not isinstance(value, str):
        return value
    if "objectid" not in items.types and items.format != "date-time":
        return value
    try:
        stored = convert_value(value, items, "")
    except FilterError:
        return value  # validating the result explains what is wrong with it
    if isinstance(stored, datetime):  # BSON keeps milliseconds
        stored = to_milliseconds(stored)
    return stored


def _check_item(value: object, loc: list, depth: int, errors: list[dict]) -> None:
    if depth > MAX_ITEM_DEPTH:
        errors.append({"loc": loc, "msg": f"Value nests more than {MAX_ITEM_DEPTH} levels deep"})
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$") or "." in key:
                msg = "Keys inside values may not start with '$' or contain '.'"
                errors.append({"loc": [*loc, str(key)[:70]], "msg": msg})
            else:
                _check_item(item, [*loc, key], depth + 1, errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_item(item, [*loc, index], depth + 1, errors)
    elif isinstance(value, float) and not math.isfinite(value):
        errors.append({"loc": loc, "msg": "Value should be a finite number"})


def _parent(doc: dict, path: str, *, create: bool, loc: list) -> tuple[dict | None, str]:
    """The object holding the path's last part; MongoDB creates absent ones, except for $pull."""
    *ancestors, leaf = path.split(".")
    node = doc
    for part in ancestors:
        child = node.get(part, _MISSING)
        if child is _MISSING and not create:
            return None, leaf
        if child is _MISSING:
            child = node[part] = {}
        if not isinstance(child, dict):  # MongoDB fails the whole update here
            raise OpsError([{"loc": loc, "msg": f"Cannot reach a field inside {part!r}"}])
        node = child
    return node, leaf


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bson_equal(a: object, b: object) -> bool:
    """MongoDB's equality: numbers by value, `true` is not `1`, object keys compared in order."""
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_bson_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_bson_equal, a, b))
    return type(a) is type(b) and a == b


def _pull_matches(element: object, item: object) -> bool:
    """$pull compares scalars and arrays whole, but runs an object as a query on object elements."""
    if not isinstance(item, dict):
        return _bson_equal(element, item)
    if not isinstance(element, dict):
        return False
    return all(_query_equal(element.get(key, _MISSING), wanted) for key, wanted in item.items())


def _query_equal(value: object, wanted: object) -> bool:
    """A query's {key: wanted}: equal, or an array holding it; null also matches absent."""
    if wanted is None and value is _MISSING:
        return True
    if _bson_equal(value, wanted):
        return True
    return isinstance(value, list) and any(_bson_equal(v, wanted) for v in value)
