"""Listing documents: a checked filter, sort and projection, keyset cursors, optional totals."""

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.cursors import CursorError, decode_cursor, encode_cursor, query_fingerprint
from api.filters import FilterError, check_filter
from api.guards import Access
from api.problems import Problem
from api.query_options import QueryOptionError, parse_fields, parse_sort
from api.rendering import SYSTEM_KEYS, render
from api.rules import caller_id
from documents.users import Strict

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_FILTER_CHARACTERS = 16_384
FieldList = str | Annotated[list[str], Field(max_length=100)]


class ListQuery(Strict):
    """A list request, as `POST …/query` takes it (and `GET …/documents` in its query string)."""

    filter: dict[str, Any] | None = None
    sort: FieldList | None = None
    fields: FieldList | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str, Field(max_length=4096)] | None = None
    q: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    total: bool = False


class DocumentPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None = None


def parse_filter_param(text: str | None) -> dict[str, Any] | None:
    """The `filter` query parameter: JSON text holding an object."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER_CHARACTERS:
        raise Problem(400, "filter is too long")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:  # ValueError: a number past 4,300 digits too
        raise Problem(400, "filter is not valid JSON") from error
    if not isinstance(value, dict):
        raise Problem(400, "filter must be a JSON object")
    return value


def _path_value(document: dict, path: str) -> Any:
    if path in document:  # some servers answer a projected sub-field under its dotted name
        return document[path]
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def after_condition(sort: list[tuple[str, int]], values: list[Any]) -> dict:
    """Matches the documents that come after `values` in `sort` order (keyset pagination).

    MongoDB sorts null and missing values first, so they come before everything ascending and
    after everything descending.
    """
    branches = []
    for position, (path, direction) in enumerate(sort):
        value = values[position]
        equal = {sort[i][0]: values[i] for i in range(position)}
        if value is None:
            if direction == 1:
                branches.append({**equal, path: {"$ne": None}})
            continue
        if direction == 1:
            branches.append({**equal, path: {"$gt": value}})
        else:
            branches.append({**equal, "$or": [{path: {"$lt": value}}, {path: None}]})
    if not branches:
        return {"_id": {"$exists": False}}
    return branches[0] if len(branches) == 1 else {"$or": branches}


def _all_of(*parts: dict) -> dict:
    """The conjunction of filters, as one flat filter when no two of them name the same key.

    Equivalent to `$and`, but simple databases (the embedded one among them) only use an index
    for a flat filter.
    """
    parts = tuple(part for part in parts if part)
    merged: dict = {}
    for part in parts:
        if merged.keys() & part.keys():
            return {"$and": list(parts)}
        merged.update(part)
    return merged


@dataclass(frozen=True)
class _Plan:
    query: dict
    sort: list[tuple[str, int]]
    projection: dict | None
    strip: tuple[str, ...]
    fingerprint: str


def _plan(access: Access, spec: ListQuery) -> _Plan:
    collection, admin = access.collection, access.is_admin
    try:
        checked = check_filter(spec.filter or {}, collection.fields, allow_write_only=admin)
        sort = parse_sort(spec.sort, collection.fields, allow_write_only=admin)
        requested = parse_fields(spec.fields, collection.fields, allow_write_only=admin)
    except (FilterError, QueryOptionError) as error:
        raise Problem(400, str(error)) from error
    if "_id" not in (path for path, _ in sort):
        sort.append(("_id", 1))  # a unique last key makes the order total, as keysets need
    text = {}
    if spec.q is not None:
        if not collection.has_text_index:
            raise Problem(400, "This collection has no text index to search with q")
        text = {"$text": {"$search": spec.q}}
    projection, strip = None, access.hidden
    if requested is not None:
        # Sort keys the cursor needs but the client did not ask for: fetched, then dropped. One
        # inside a requested object is fetched with it (projecting both would collide).
        extra = [
            path
            for path, _ in sort
            if path not in SYSTEM_KEYS
            and not any(path == r or path.startswith(f"{r}.") for r in requested)
        ]
        projection = dict.fromkeys([*SYSTEM_KEYS, *requested, *extra], 1)
        strip += tuple(extra)
    elif access.hidden:
        projection = dict.fromkeys(access.hidden, 0)
    fingerprint = query_fingerprint(
        str(collection.definition.id),
        checked,
        sort,
        spec.q,
        access.narrowing,
        caller_id(access.principal),
    )
    return _Plan(_all_of(access.narrowing, checked, text), sort, projection, strip, fingerprint)


async def list_documents(access: Access, spec: ListQuery, signing_key: str) -> DocumentPage:
    plan = _plan(access, spec)
    query = plan.query
    if spec.cursor:
        try:
            values = decode_cursor(spec.cursor, plan.fingerprint, signing_key)
        except CursorError as error:
            raise Problem(400, f"Invalid cursor: {error}") from error
        if len(values) != len(plan.sort):
            raise Problem(400, "Invalid cursor: it does not fit this sort")
        query = _all_of(query, after_condition(plan.sort, values))
    found = await access.collection.storage.find(
        query,
        plan.projection,
        sort=plan.sort,
        limit=spec.limit + 1,
        max_time_ms=access.max_time_ms,
    ).to_list()
    page = found[: spec.limit]
    next_cursor = None
    if len(found) > spec.limit:
        last = [_path_value(page[-1], path) for path, _ in plan.sort]
        next_cursor = encode_cursor(last, plan.fingerprint, signing_key)
    # Rendered documents are JSON already: validating them again would copy every one.
    items = [render(doc, plan.strip) for doc in page]
    result = DocumentPage.model_construct(items=items, next_cursor=next_cursor)
    if spec.total:
        result.total = await _count(access, plan.query)
    return result


async def _count(access: Access, query: dict) -> int:
    storage = access.collection.storage
    if not query:
        # Whole-collection counts come from metadata, in constant time.
        return await storage.estimated_document_count(maxTimeMS=access.max_time_ms)
    return await storage.count_documents(query, maxTimeMS=access.max_time_ms)
