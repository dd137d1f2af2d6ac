"""Turns a client's MongoDB-style JSON filter into one safe to hand to PyMongo, or refuses it.

The input is parsed JSON and possibly hostile: only a small operator set, only known field paths
and only values fitting each field's type get through, so a client can neither run code on the
server (`$where`, `$function`) nor probe fields it may not see. Anything else is a FilterError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from api.fields import FieldSpec
from api.filter_values import ANY_SCALAR, JSON_KINDS, FilterError, convert_value, describe_types
from api.regex_safety import regex_risk

# FilterError is the error of `check_filter`: callers catch it from here, beside the function.
__all__ = ["ALLOWED_OPERATORS", "LOGICAL_OPERATORS", "FilterError", "check_filter"]

LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor"})
RANGE_OPERATORS = frozenset({"$gt", "$gte", "$lt", "$lte"})
FIELD_OPERATORS = RANGE_OPERATORS | {
    "$eq", "$ne", "$in", "$nin", "$exists", "$regex", "$options", "$all", "$size", "$elemMatch",
    "$not",
}  # fmt: skip
ALLOWED_OPERATORS = FIELD_OPERATORS | LOGICAL_OPERATORS

MAX_DEPTH = 10
MAX_NODES = 2000
MAX_STRING = 4096
MAX_REGEX = 256
MAX_LIST = 1000  # items of $in, $nin, $all
MAX_BRANCHES = 100  # filters of $and, $or, $nor
MAX_ARRAY_SIZE = 2**31 - 1  # $size is an int32 on the server


def check_filter(
    filter: object, fields: Mapping[str, FieldSpec], *, allow_write_only: bool = False
) -> dict[str, Any]:
    """Returns a fresh, checked copy of `filter`, with ObjectId and date strings converted.

    `fields` maps every filterable dotted path (system fields included) to its spec.
    """
    if type(filter) is not dict:
        raise FilterError("filter: expected a JSON object")
    _check_json(filter, 1, [0])
    return _Checker(fields, allow_write_only).filter_doc(filter, "filter", "")


def _check_json(value: object, depth: int, nodes: list[int]) -> None:
    """Refuses non-JSON types and oversized input before anything walks it further."""
    # Exact types: subclasses (bool aside) could override comparisons or iteration.
    if type(value) not in JSON_KINDS:
        raise FilterError(f"filter: a {type(value).__name__} is not a JSON value")
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            raise FilterError(f"filter is too deep (at most {MAX_DEPTH} levels)")
        nodes[0] += len(value)
        if nodes[0] > MAX_NODES:
            raise FilterError(f"filter is too large (at most {MAX_NODES} entries)")
        if isinstance(value, dict) and any(
            type(key) is not str or len(key) > MAX_STRING for key in value
        ):
            raise FilterError("filter: keys must be strings of sane length")
        for child in value.values() if isinstance(value, dict) else value:
            _check_json(child, depth + 1, nodes)
    elif isinstance(value, str) and len(value) > MAX_STRING:
        raise FilterError(f"filter: strings are limited to {MAX_STRING} characters")
    elif isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise FilterError("filter: integer does not fit in 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise FilterError("filter: numbers must be finite")


class _Checker:
    def __init__(self, fields: Mapping[str, FieldSpec], allow_write_only: bool) -> None:
        self.fields = fields
        self.allow_write_only = allow_write_only

    def filter_doc(self, doc: object, loc: str, base: str) -> dict[str, Any]:
        """`base` prefixes paths inside an `$elemMatch` on object items."""
        if not isinstance(doc, dict):
            raise FilterError(f"{loc}: expected an object")
        out: dict[str, Any] = {}
        for key, value in doc.items():
            here = f"{loc}.{key}"
            if key in LOGICAL_OPERATORS:
                if not isinstance(value, list) or not 0 < len(value) <= MAX_BRANCHES:
                    raise FilterError(f"{here}: expected a list of 1 to {MAX_BRANCHES} filters")
                out[key] = [self.filter_doc(b, f"{here}[{i}]", base) for i, b in enumerate(value)]
            elif key in FIELD_OPERATORS:
                raise FilterError(f"{loc}: operator {key} must be applied to a field")
            elif key.startswith("$"):
                raise FilterError(f"{loc}: operator {key} is not allowed")
            else:
                path = base + key
                out[key] = self.condition(value, self.spec(path, here), path, here)
        return out

    def spec(self, path: str, loc: str) -> FieldSpec:
        if any(not part or part.isdigit() for part in path.split(".")):
            raise FilterError(f"{loc}: field paths take no empty parts or array indexes")
        spec = self.fields.get(path)
        # A hidden field must look exactly like a missing one, or errors would reveal it.
        if spec is None or (spec.write_only and not self.allow_write_only):
            raise FilterError(f"{loc}: unknown field {path!r}")
        return spec

    def condition(self, value: object, spec: FieldSpec, path: str, loc: str) -> Any:
        if isinstance(value, dict) and any(key.startswith("$") for key in value):
            return self.operators(value, spec, path, loc)
        return self.equality(value, spec, loc)

    def equality(self, value: object, spec: FieldSpec, loc: str) -> Any:
        """A literal compared whole; for an array field a list is an exact array match."""
        if isinstance(value, dict):
            raise FilterError(f"{loc}: sub-document equality is not supported, use dotted paths")
        if isinstance(value, list):
            if "array" not in spec.types:
                raise FilterError(f"{loc}: expected {describe_types(spec.types)}, got array")
            items = spec.items or ANY_SCALAR
            return [convert_value(item, items, f"{loc}[{i}]") for i, item in enumerate(value)]
        return self.scalar(value, spec, loc)

    def scalar(self, value: object, spec: FieldSpec, loc: str) -> Any:
        """As in MongoDB, a scalar compared with an array field matches any one element."""
        try:
            return convert_value(value, spec, loc)
        except FilterError:
            if "array" not in spec.types:
                raise
        return convert_value(value, spec.items or ANY_SCALAR, loc)

    def operators(self, ops: dict[str, Any], spec: FieldSpec, path: str, loc: str) -> Any:
        for op in ops:
            if op.startswith("$") and op not in ALLOWED_OPERATORS:
                raise FilterError(f"{loc}: operator {op} is not allowed")
            if op in LOGICAL_OPERATORS:
                raise FilterError(f"{loc}: operator {op} is only allowed at filter level")
        if not all(op.startswith("$") for op in ops):
            raise FilterError(f"{loc}: sub-document equality is not supported, use dotted paths")
        if "$options" in ops and "$regex" not in ops:
            raise FilterError(f"{loc}: $options needs $regex")
        out: dict[str, Any] = {}
        for op, arg in ops.items():
            here = f"{loc}.{op}"
            if op in ("$eq", "$ne"):
                out[op] = self.equality(arg, spec, here)
            elif op in RANGE_OPERATORS:
                if arg is None or isinstance(arg, list | dict):
                    raise FilterError(f"{here}: expected a single non-null value")
                out[op] = self.scalar(arg, spec, here)
            elif op in ("$in", "$nin"):
                values = _bounded_list(arg, here)
                out[op] = [self.equality(v, spec, f"{here}[{i}]") for i, v in enumerate(values)]
            elif op == "$all":
                items = _array_items(spec, here)
                values = _bounded_list(arg, here)
                out[op] = [convert_value(v, items, f"{here}[{i}]") for i, v in enumerate(values)]
            elif op == "$size":
                _array_items(spec, here)
                if type(arg) is not int or not 0 <= arg <= MAX_ARRAY_SIZE:
                    raise FilterError(f"{here}: expected a non-negative integer")
                out[op] = arg
            elif op == "$exists":
                if type(arg) is not bool:
                    raise FilterError(f"{here}: expected true or false")
                out[op] = arg
            elif op == "$regex":
                out.update(_regex(arg, ops.get("$options", ""), spec, loc))
            elif op == "$elemMatch":
                out[op] = self.elem_match(arg, spec, path, here)
            elif op == "$not":
                if not isinstance(arg, dict) or not arg or not all(k[:1] == "$" for k in arg):
                    raise FilterError(f"{here}: expected an operator object")
                out[op] = self.operators(arg, spec, path, here)
        return out

    def elem_match(self, arg: object, spec: FieldSpec, path: str, loc: str) -> dict[str, Any]:
        items = _array_items(spec, loc)
        if not isinstance(arg, dict) or not arg:
            raise FilterError(f"{loc}: expected a non-empty object")
        if "object" in items.types:
            return self.filter_doc(arg, loc, path + ".")
        if not any(key.startswith("$") for key in arg):
            raise FilterError(f"{loc}: expected an operator object")
        result: dict[str, Any] = self.operators(arg, items, path, loc)
        return result


def _regex(pattern: object, options: object, spec: FieldSpec, loc: str) -> dict[str, str]:
    if not _holds_strings(spec):
        raise FilterError(f"{loc}.$regex: only string fields take $regex")
    if not isinstance(pattern, str) or len(pattern) > MAX_REGEX or "\x00" in pattern:
        raise FilterError(f"{loc}.$regex: expected a pattern of at most {MAX_REGEX} characters")
    if (
        not isinstance(options, str)
        or set(options) - {"i", "m"}
        or len(set(options)) < len(options)
    ):
        raise FilterError(f"{loc}.$options: only the flags i and m, each once, are allowed")
    risk = regex_risk(pattern)
    if risk:
        raise FilterError(f"{loc}.$regex: {risk}")
    return {"$regex": pattern, "$options": options}


def _holds_strings(spec: FieldSpec) -> bool:
    """Whether values are stored as strings: date-time strings are stored as BSON dates."""
    if "string" in spec.types and spec.format != "date-time":
        return True
    return "array" in spec.types and (spec.items is None or _holds_strings(spec.items))


def _bounded_list(arg: object, loc: str) -> list[Any]:
    if not isinstance(arg, list) or len(arg) > MAX_LIST:
        raise FilterError(f"{loc}: expected a list of at most {MAX_LIST} values")
    return arg


def _array_items(spec: FieldSpec, loc: str) -> FieldSpec:
    if "array" not in spec.types:
        raise FilterError(f"{loc}: only array fields take this operator")
    return spec.items or ANY_SCALAR
