"""Exporting a collection as NDJSON or CSV: the caller's visible documents, read in batches.

Both formats re-import: NDJSON lines are the documents as the API renders them, and CSV cells
hold what the importer's conversion by schema types turns back into the same values.
"""

import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from pymongo.asynchronous.cursor import AsyncCursor

from api.filters import FilterError, check_filter
from api.guards import Access
from api.listing import parse_filter_param
from api.problems import Problem
from api.rendering import SYSTEM_KEYS, render

ExportFormat = Literal["ndjson", "csv"]
MEDIA_TYPES: dict[ExportFormat, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
}
BATCH_SIZE = 1000
Encoder = Callable[[list[dict]], str]


def export_query(access: Access, filter_text: str | None) -> dict:
    """The caller's list-rule narrowing and their checked filter, together (400 for a bad one)."""
    try:
        checked = check_filter(
            parse_filter_param(filter_text) or {},
            access.collection.fields,
            allow_write_only=access.is_admin,
        )
    except FilterError as error:
        raise Problem(400, str(error)) from error
    parts = [part for part in (access.narrowing, checked) if part]
    if len(parts) > 1:
        return {"$and": parts}
    return parts[0] if parts else {}


def csv_header(access: Access) -> list[str]:
    """System fields, then the schema's top-level properties in order, without hidden ones."""
    # The definition as the admin wrote it: the compiled schema is canonicalised (keys sorted).
    properties = access.collection.definition.schema_.get("properties", {})
    return [*SYSTEM_KEYS, *(name for name in properties if name not in access.hidden)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def ndjson_encoder(access: Access) -> Encoder:
    def encode(batch: list[dict]) -> str:
        return "".join(
            json.dumps(render(doc, access.hidden), ensure_ascii=False, separators=(",", ":")) + "\n"
            for doc in batch
        )

    return encode


def csv_encoder(access: Access) -> tuple[str, Encoder]:
    """The header line, and the encoder of each batch of rows."""
    header = csv_header(access)

    def lines(rows: list[list[str]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue()

    def encode(batch: list[dict]) -> str:
        rendered = (render(doc, access.hidden) for doc in batch)
        return lines([[_cell(doc.get(name)) for name in header] for doc in rendered])

    return lines([header]), encode


async def open_export(
    access: Access, query: dict, max_time_ms: int
) -> tuple[AsyncCursor, list[dict]]:
    """The cursor and its first batch, read before the response starts so that a failing
    query (a timeout) still gets a proper error response."""
    projection = dict.fromkeys(access.hidden, 0) if access.hidden else None
    cursor = access.collection.storage.find(
        query, projection, sort=[("_id", 1)], batch_size=BATCH_SIZE, max_time_ms=max_time_ms
    )
    try:
        first = await cursor.to_list(BATCH_SIZE)
    except BaseException:
        await cursor.close()
        raise
    return cursor, first


async def stream_export(
    cursor: AsyncCursor, first: list[dict], encode: Encoder, preamble: str = ""
) -> AsyncIterator[bytes]:
    """The body, one chunk per batch. A failure midway ends the response abruptly, so the
    client sees an incomplete transfer rather than a file that looks whole."""
    try:
        if preamble:
            yield preamble.encode()
        batch = first
        while batch:
            yield encode(batch).encode()
            batch = await cursor.to_list(BATCH_SIZE)
    finally:
        await cursor.close()
