"""The update filters that keep an atomic field operation valid whatever the document is by then.

Each guard is a condition on the stored document under which applying the operator still gives
a value the schema accepts; where no filter can say that exactly, the plan falls back to
guarding on `_version` (each function says which by returning `exact`). `unread_inc_guards`
goes further: guards for an increment sent without reading the document at all.
"""

import math
import sys
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any

from bson import ObjectId

from api.fields import FieldSpec
from api.value_checks import INT64_MAX, INT64_MIN

_DOUBLE_MAX = Fraction(sys.float_info.max)


def subschema(schema: dict, path: str) -> dict:
    for part in path.split("."):
        schema = (schema.get("properties") or {}).get(part) or {}
    return schema


def ancestor_guards(path: str, stored: dict, schema: dict) -> list[dict]:
    """If a stored parent with required fields vanished, MongoDB would recreate it incomplete."""
    guards: list[dict] = []
    node: Any = stored
    prefix = path.split(".")[:-1]
    for end in range(1, len(prefix) + 1):
        node = node.get(prefix[end - 1]) if isinstance(node, dict) else None
        if isinstance(node, dict) and subschema(schema, ".".join(prefix[:end])).get("required"):
            guards.append({".".join(prefix[:end]): {"$exists": True}})
    return guards


def inc_guard(path: str, delta: Any, current: Any, sub: dict) -> tuple[list[dict], bool]:
    """The condition on the field's old value making old + delta fit minimum/maximum.

    `current` is the value just read, None if the field is absent.
    """
    high, low = sub.get("maximum"), sub.get("minimum")
    bound = None
    if high is not None and delta > 0:
        bound = ("$lte", _exact_difference(high, delta))
    elif low is not None and delta < 0:
        bound = ("$gte", _exact_difference(low, delta))
    # An absent field becomes `delta` itself, which must fit both bounds.
    absent_ok = (high is None or delta <= high) and (low is None or delta >= low)
    if bound is None:
        return ([] if absent_ok else [{path: {"$exists": True}}]), True
    condition = {path: {bound[0]: bound[1]}}
    if current is not None:
        # Float rounding can make the filter refuse the value just validated: retrying would
        # loop, so fall back to the version.
        fits = current <= bound[1] if bound[0] == "$lte" else current >= bound[1]
        new = current + delta
        if not fits and (high is None or new <= high) and (low is None or new >= low):
            return [], False
    if absent_ok:
        return [{"$or": [condition, {path: {"$exists": False}}]}], True
    return [condition], True


def _exact_difference(bound: Any, delta: Any) -> Any:
    difference = Fraction(bound) - Fraction(delta)
    # A whole number past 64 bits has no BSON integer to go out as (a bound such as 1e30).
    whole = difference.denominator == 1 and INT64_MIN <= difference <= INT64_MAX
    return int(difference) if whole else float(difference)


def grow_guard(path: str, item: Any, name: str, sub: dict) -> tuple[list[dict], bool]:
    """push / add_to_set: room left under maxItems, and no duplicate under uniqueItems."""
    guards: list[dict] = []
    # MongoDB query equality on arrays, objects and null does not match JSON equality.
    plain = isinstance(item, str | int | float | datetime | ObjectId)
    if sub.get("minItems", 0) > 1:  # an array removed meanwhile would be recreated too short
        guards.append({path: {"$exists": True}})
    limit = sub.get("maxItems")
    if limit is not None:
        if limit < 1 or (name == "add_to_set" and not plain):
            return guards, False
        # Stored arrays never exceed maxItems (a schema change is checked against them), so
        # "not exactly full" means "has room"; `$size` also works where array-index paths don't.
        room = {"$nor": [{path: {"$size": limit}}]}
        # Adding an item already present changes nothing, so a full array is fine then.
        guards.append({"$or": [room, {path: item}]} if name == "add_to_set" else room)
    if sub.get("uniqueItems") is True:
        if not plain:  # embedded-document equality in MongoDB depends on key order
            return guards, False
        if name == "push":
            guards.append({path: {"$nin": [item]}})
    return guards, True


def unread_inc_guards(
    ops: dict, fields: Mapping[str, FieldSpec], schema: dict
) -> list[dict] | None:
    """Guards under which `ops` can run as one `$inc` without reading the document first.

    Nothing validates the result then, so the guards hold only where it is schema-valid, the
    stored value included: None when no filter can say that (an operator other than inc, an
    enum), and the caller reads the document and plans from it instead.
    """
    if ops.keys() != {"inc"}:
        return None
    guards: list[dict] = []
    for path, delta in ops["inc"].items():
        sub = subschema(schema, path)
        fitting = unread_inc_range(delta, sub)
        if fitting is None or "enum" in sub:
            return None
        *parents, _ = path.split(".")
        ancestors = [".".join(parents[:end]) for end in range(1, len(parents) + 1)]
        # MongoDB would create an absent parent holding only this field.
        guards += [
            {a: {"$exists": True}} for a in ancestors if subschema(schema, a).get("required")
        ]
        present = {path: {"$gte": fitting[0], "$lte": fitting[1]}}
        # An absent field becomes `delta`, as from 0. MongoDB's `$exists: false` matches no
        # null, and it refuses $inc below a parent that is no object; the stand-in's matches
        # null (SQL's IS NULL), and it skips such an $inc yet bumps `_version`. So "absent" is
        # offered only where the schema allows neither a null field nor a parent but an object.
        absent = fitting[0] <= 0 <= fitting[1] and "null" not in fields[path].types
        if absent and all(fields[a].types == {"object"} for a in ancestors):
            guards.append({"$or": [present, {path: {"$exists": False}}]})
        else:
            guards.append(present)
    return guards


def unread_inc_range(delta: int | float, sub: dict) -> tuple[float, float] | None:
    """The stored values from which `+ delta` fits minimum/maximum and BSON, or None if none do.

    Bounding both sides also makes the filter refuse what is not a number. An integer delta on
    an integer gives an exact integer, which must fit int64; any other sum MongoDB works out in
    doubles, rounding each operand and the result. Bounds that are doubles inside the range keep
    a rounded result inside it, and the delta counts as the worse of itself and its rounding.
    """
    return _fitting_range(delta, sub.get("minimum"), sub.get("maximum"))


# Exact arithmetic is most of an increment's own work, and the same few increments under the
# same bounds come again and again. Typed: an increment of 1 and of 1.0 differ (int64 or double).
@lru_cache(maxsize=4096, typed=True)
def _fitting_range(
    delta: int | float, minimum: int | float | None, maximum: int | float | None
) -> tuple[float, float] | None:
    storable = (INT64_MIN, INT64_MAX) if isinstance(delta, int) else (-_DOUBLE_MAX, _DOUBLE_MAX)
    least = storable[0] if minimum is None else minimum
    most = storable[1] if maximum is None else maximum
    low = _double_at_least(max(Fraction(least), Fraction(storable[0])))
    high = _double_at_most(min(Fraction(most), Fraction(storable[1])))
    exact, rounded = Fraction(delta), Fraction(float(delta))
    bottom = _double_at_least(Fraction(low) - min(exact, rounded))
    top = _double_at_most(Fraction(high) - max(exact, rounded))
    return (bottom, top) if bottom <= top else None


def _double_at_most(value: Fraction) -> float:
    """The largest double not above `value`, capped at the largest finite one (-inf if none)."""
    if value >= _DOUBLE_MAX:
        return sys.float_info.max
    if value < -_DOUBLE_MAX:
        return -math.inf
    nearest = float(value)
    return nearest if Fraction(nearest) <= value else math.nextafter(nearest, -math.inf)


def _double_at_least(value: Fraction) -> float:
    return -_double_at_most(-value)
