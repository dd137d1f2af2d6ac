"""Parses the `sort` and `fields` (projection) options of a document listing.

Both arrive as a comma-separated string (query string) or a list of strings (query body), and
name dotted field paths that must exist in the collection's fields, system fields included.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.fields import FieldSpec

MAX_SORT_KEYS = 8
MAX_PROJECTED_FIELDS = 100
# Sorting on these would compare whole sub-documents or arrays: meaningless orders and no index.
_UNSORTABLE_TYPES = frozenset({"object", "array"})


class QueryOptionError(ValueError):
    """A `sort` or `fields` option the API refuses; the route answers 400 with the message."""


def parse_sort(
    sort: str | list[str] | None,
    fields: Mapping[str, FieldSpec],
    *,
    allow_write_only: bool = False,
) -> list[tuple[str, int]]:
    """`"-year,title"` -> `[("year", -1), ("title", 1)]`; `-` descends, `+` (optional) ascends."""
    keys = _split("sort", sort, MAX_SORT_KEYS)
    result: list[tuple[str, int]] = []
    seen: set[str] = set()
    for key in keys:
        direction = -1 if key.startswith("-") else 1
        path = key[1:] if key[:1] in ("-", "+") else key
        spec = _known("sort", path, fields, allow_write_only)
        if spec.types & _UNSORTABLE_TYPES:
            raise QueryOptionError(f"sort: field {path!r} is not sortable")
        # MongoDB's range operators compare one type at a time, so a cursor over a field of
        # several types would never get from the numbers to the strings.
        if len(spec.types - {"null"}) > 1 and spec.format != "date-time":
            raise QueryOptionError(f"sort: field {path!r} holds several types; sort by another")
        if path in seen:
            raise QueryOptionError(f"sort: duplicate key {path!r}")
        seen.add(path)
        result.append((path, direction))
    return result


def parse_fields(
    fields_param: str | list[str] | None,
    fields: Mapping[str, FieldSpec],
    *,
    allow_write_only: bool = False,
) -> list[str] | None:
    """The projected paths in the order given, or None for whole documents.

    A path inside another requested path is dropped: the parent already brings it, and MongoDB
    refuses a projection naming both (a path collision).
    """
    paths = list(dict.fromkeys(_split("fields", fields_param, None)))
    if not paths:
        return None
    if len(paths) > MAX_PROJECTED_FIELDS:
        raise QueryOptionError(f"fields: at most {MAX_PROJECTED_FIELDS} fields")
    for path in paths:
        _known("fields", path, fields, allow_write_only)
    requested = set(paths)
    return [path for path in paths if not any(parent in requested for parent in _parents(path))]


def _split(option: str, value: object, limit: int | None) -> list[str]:
    """The stripped entries of a comma-separated string or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        entries = value.split(",")
    elif isinstance(value, list) and all(isinstance(entry, str) for entry in value):
        entries = value
    else:
        raise QueryOptionError(f"{option}: expected a comma-separated string or a list of strings")
    if limit is not None and len(entries) > limit:
        raise QueryOptionError(f"{option}: at most {limit} keys")
    stripped = [entry.strip() for entry in entries]
    if "" in stripped:
        raise QueryOptionError(f"{option}: empty key")
    return stripped


def _known(
    option: str, path: str, fields: Mapping[str, FieldSpec], allow_write_only: bool
) -> FieldSpec:
    spec = fields.get(path)
    # A hidden field must look exactly like a missing one, or errors would reveal it.
    if spec is None or (spec.write_only and not allow_write_only):
        raise QueryOptionError(f"{option}: unknown field {path!r}")
    return spec


def _parents(path: str) -> list[str]:
    """`"a.b.c"` -> `["a", "a.b"]`."""
    parts = path.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]
