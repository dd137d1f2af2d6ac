"""Importing a streamed body: the format chosen, the body read record by record into the
`Importer`, and the outcome as a report or a problem.

Memory stays flat whatever the body's size: the readers hold one record, the importer one batch
and at most the first errors the report lists.
"""

from collections.abc import AsyncIterator
from typing import Literal

from starlette.requests import ClientDisconnect

from api.catalog import Collection
from api.csv_records import csv_records
from api.import_batches import Importer, ImportReport
from api.import_formats import BodyRefused, ReadingStopped, Record, json_records, ndjson_records
from api.problems import Problem
from api.rate_limits import RateLimited

ImportFormat = Literal["ndjson", "csv", "json"]
ImportMode = Literal["insert", "upsert"]
MEDIA_TYPES: dict[str, ImportFormat] = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "text/csv": "csv",
    "application/json": "json",
}
UTF8_NAMES = ("utf-8", "utf8", "us-ascii")


class BodyTooLarge(Exception):
    pass


def choose_format(requested: ImportFormat | None, content_type: str | None) -> ImportFormat:
    """The format to read: the one asked for, else the content type's; 415 if they disagree."""
    media_type, *parameters = (content_type or "").split(";")
    media_type = media_type.strip().lower()
    for parameter in parameters:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "charset" and value.strip('"').lower() not in (
            "utf-8",
            "utf8",
            "us-ascii",
        ):
            raise Problem(415, "Import bodies must be UTF-8")
    implied = MEDIA_TYPES.get(media_type)
    if media_type and implied is None:
        expected = ", ".join(MEDIA_TYPES)
        raise Problem(415, f"Content type {media_type!r} cannot be imported; use one of {expected}")
    if requested is not None and implied is not None and requested != implied:
        raise Problem(415, f"format={requested} does not match the content type {media_type}")
    chosen = requested or implied
    if chosen is None:
        raise Problem(415, "Give the body a Content-Type (or say format=ndjson|csv|json)")
    return chosen


def upsert_key(collection: Collection, mode: ImportMode, key: str | None) -> str | None:
    """The field upserts match on, which must carry a unique index of its own (else 400)."""
    if mode == "insert":
        if key is not None:
            raise Problem(400, "key applies only to mode=upsert")
        return None
    if key is None:
        raise Problem(400, "mode=upsert needs key=<field>, a field with a unique index")
    for spec in collection.definition.indexes:
        if spec.unique and spec.fields and [f.lstrip("+-") for f in spec.fields] == [key]:
            return key
    raise Problem(400, f"key {key!r} is not a field with a unique index of its own")


async def limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, stopping with BodyTooLarge once more than `limit` bytes have come."""
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise Problem(400, "The client went away before the body was complete") from None


async def run_import(
    importer: Importer,
    chunks: AsyncIterator[bytes],
    chosen: ImportFormat,
    limit: int,
) -> ImportReport:
    """Reads, checks and writes every record; 400 for an unusable body, 413 past the limit, 429
    once the caller's budget is spent (both saying how much was written)."""
    body = limited(chunks, limit)
    records: AsyncIterator[Record]
    if chosen == "ndjson":
        records = ndjson_records(body)
    elif chosen == "csv":
        records = csv_records(body, importer.collection.compiled.schema)
    else:
        records = json_records(body)
    try:
        try:
            async for record in records:
                await importer.add(record)
        except ReadingStopped as error:
            await importer.flush()
            importer.fail(error.line, error.detail)
        await importer.flush()
    except BodyRefused as error:
        raise Problem(400, str(error)) from None
    except BodyTooLarge:
        stopped = await _stopped(importer)
        raise Problem(
            413, f"The body is larger than the import limit of {limit} bytes; {stopped}"
        ) from None
    except RateLimited as error:
        # Rows are counted before they are written: what the report says was written, was.
        stopped = await _stopped(importer)
        retry = {"Retry-After": str(error.retry_after)}
        raise Problem(429, f"The request budget is spent; {stopped}", headers=retry) from None
    finally:
        await importer.settle()
    return importer.report


async def _stopped(importer: Importer) -> str:
    """What an import that stops early wrote, for the client to pick it up from there."""
    await importer.settle()
    report = importer.report
    return (
        f"the import stopped after writing {report.inserted + report.updated} records "
        f"({report.inserted} inserted, {report.updated} updated)"
    )
