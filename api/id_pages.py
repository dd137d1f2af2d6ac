"""Pages of a system collection in `_id` order, with signed cursors (users, API keys, audit)."""

from typing import Annotated, TypeVar

from beanie import Document
from fastapi import Query

from api.cursors import CursorError, decode_cursor, encode_cursor, query_fingerprint
from api.problems import Problem

D = TypeVar("D", bound=Document)
PageLimit = Annotated[int, Query(ge=1, le=1000)]
PageCursor = Annotated[str | None, Query(max_length=4096)]


async def id_page(
    model: type[D],
    query: dict,
    *,
    limit: int,
    cursor: str | None,
    key: str,
    newest_first: bool = False,
) -> tuple[list[D], str | None]:
    """One page of `model` documents matching `query`, and the cursor to the next, if any."""
    fingerprint = query_fingerprint(model.get_collection_name(), query, newest_first)
    if cursor:
        try:
            (last,) = decode_cursor(cursor, fingerprint, key)
        except (CursorError, ValueError) as error:
            raise Problem(400, "Invalid cursor") from error
        query = {**query, "_id": {"$lt" if newest_first else "$gt": last}}
    order = "-_id" if newest_first else "+_id"
    found = await model.find(query).sort(order).limit(limit + 1).to_list()
    page = found[:limit]
    more = len(found) > limit
    return page, encode_cursor([page[-1].id], fingerprint, key) if more else None
