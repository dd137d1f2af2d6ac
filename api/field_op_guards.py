"""The update filters that keep an atomic field operation valid whatever the document is by then.

Each guard is a condition on the stored document under which applying the operator still gives
a value the schema accepts; where no filter can say that exactly, the plan falls back to
guarding on `_version` (each function says which by returning `exact`).
"""

from fractions import Fraction
from typing import Any


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
    return int(difference) if difference.denominator == 1 else float(difference)


def grow_guard(path: str, item: Any, name: str, sub: dict) -> tuple[list[dict], bool]:
    """push / add_to_set: room left under maxItems, and no duplicate under uniqueItems."""
    guards: list[dict] = []
    # MongoDB query equality on arrays, objects and null does not match JSON equality.
    plain = isinstance(item, str | int | float)
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
