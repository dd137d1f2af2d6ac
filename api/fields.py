"""What the engine knows about one field path of a collection: the JSON types it may hold."""

from collections.abc import Iterable
from dataclasses import dataclass

# JSON Schema types a user field may declare.
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})
# Types only system fields hold: `_id` is an ObjectId, `_created`/`_updated` are BSON dates.
SYSTEM_TYPES = frozenset({"objectid", "datetime"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """The types one dotted field path may hold.

    `items` describes an array's elements (None when the field is not an array or its items
    are unconstrained); `write_only` fields are never returned to, nor filterable by, non-admins.
    """

    types: frozenset[str]
    items: "FieldSpec | None" = None
    write_only: bool = False
    format: str | None = None


# Every document carries these; clients read them but never write them.
SYSTEM_FIELDS: dict[str, FieldSpec] = {
    "_id": FieldSpec(frozenset({"objectid"})),
    "_owner": FieldSpec(frozenset({"string", "null"})),
    "_created": FieldSpec(frozenset({"datetime"})),
    "_updated": FieldSpec(frozenset({"datetime"})),
    "_version": FieldSpec(frozenset({"integer"})),
}


def outermost(paths: Iterable[str]) -> tuple[str, ...]:
    """The paths that lie under no other path given: a projection or `$unset` naming both a
    field and one of its children is a path collision on MongoDB."""
    chosen = sorted(set(paths))
    return tuple(
        path for path in chosen if not any(path.startswith(f"{other}.") for other in chosen)
    )
