"""`seed import`: a file streamed into the app's own importer, or to the API's import endpoint.

Both ways read the file in chunks and never whole; the records are checked and written by
`api.importing` either way, so a file imports the same from disk as over HTTP.
"""

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.catalog import Collection, bind, load_collection
from api.collection_admin import create_collection
from api.deps import Principal
from api.import_batches import Importer, ImportReport
from api.import_formats import Record
from api.importing import ImportFormat, ImportMode, run_import, upsert_key
from documents.collections import CollectionCreate
from documents.users import ADMIN_ROLE

if TYPE_CHECKING:  # httpx is needed only to import over HTTP
    import httpx

CHUNK_BYTES = 1024 * 1024
CONTENT_TYPES: dict[ImportFormat, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "json": "application/json",
}
EXTENSIONS: dict[str, ImportFormat] = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
    ".json": "json",
}
# Called with the records (or, over HTTP, lines) handled so far and the failures so far.
Progress = Callable[[int, int | None], None]


class ImportRefused(Exception):
    """The import did not run: no such collection, a bad key, or the server refused it.

    `usage` tells a mistake in the command (exit 2) from a failure of the import (exit 1).
    """

    def __init__(self, message: str, *, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


def format_of(path: Path, requested: ImportFormat | None) -> ImportFormat:
    if requested is not None:
        return requested
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ImportRefused(f"cannot tell the format of {path.name}; give --format")
    return found


def read_definition(schema_file: Path, name: str) -> CollectionCreate:
    """A bare JSON Schema, or `{schema, rules?, indexes?}` as `POST /v1/collections` takes it."""
    try:
        given = json.loads(schema_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ImportRefused(f"cannot read the schema file {schema_file}: {error}") from error
    body: dict[str, Any] = dict(given) if isinstance(given, dict) and "schema" in given else {}
    body = body or {"schema": given}
    body["name"] = name
    try:
        return CollectionCreate.model_validate(body)
    except ValueError as error:
        raise ImportRefused(f"{schema_file} is not a collection definition: {error}") from error


async def file_chunks(
    path: Path, on_chunk: Callable[[bytes], None] | None = None
) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            if on_chunk is not None:
                on_chunk(chunk)
            yield chunk


@dataclass
class _ReportingImporter(Importer):
    """The app's importer, telling `progress` how far it has come after every record."""

    progress: Progress | None = None
    records: int = 0

    async def add(self, record: Record) -> None:
        await super().add(record)
        self.records += 1
        if self.progress is not None:
            self.progress(self.records, self.report.failed)


async def _target(name: str, definition: CollectionCreate | None) -> Collection:
    collection = await load_collection(name)
    if collection is not None:
        return collection
    if definition is None:
        raise ImportRefused(f"no collection named '{name}' (give --create --schema FILE)")
    return bind(await create_collection(definition))


async def import_file(
    path: Path,
    collection_name: str,
    principal: Principal,
    *,
    file_format: ImportFormat | None = None,
    mode: ImportMode = "insert",
    key: str | None = None,
    create: CollectionCreate | None = None,
    max_time_ms: int = 60_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Imports a file straight into the database as `principal` (an admin: `_id`s and owners kept).

    Needs Beanie initialised. Raises ImportRefused (or the app's Problem) if it cannot start.
    """
    chosen = format_of(path, file_format)
    collection = await _target(collection_name, create)
    key_field = upsert_key(collection, mode, key)
    importer = _ReportingImporter(
        collection, principal, key_field, {}, max_time_ms, progress=progress
    )
    report = await run_import(importer, file_chunks(path), chosen, sys.maxsize)
    if progress is not None:
        progress(importer.records, report.failed)
    return report


def admin_principal(owner_id: str) -> Principal:
    """An admin caller whose id becomes the `_owner` of records that name none."""
    return Principal(id=owner_id, roles=(ADMIN_ROLE,))


def _problem_detail(response: "httpx.Response") -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    detail = f"HTTP {response.status_code}: {body.get('detail', body)}"
    for error in body.get("errors") or []:
        detail += f"\n  {error.get('loc')}: {error.get('msg')}"
    return detail


async def import_over_http(
    path: Path,
    collection_name: str,
    url: str,
    api_key: str,
    *,
    file_format: ImportFormat | None = None,
    mode: ImportMode = "insert",
    key: str | None = None,
    create: CollectionCreate | None = None,
    progress: Progress | None = None,
    transport: "httpx.AsyncBaseTransport | None" = None,
) -> ImportReport:
    """Streams the file to `POST {url}/v1/collections/{name}/import` with an API key."""
    import httpx

    chosen = format_of(path, file_format)
    headers = {"X-API-Key": api_key}
    size = (await asyncio.to_thread(path.stat)).st_size
    lines = 0

    def count(chunk: bytes) -> None:
        nonlocal lines
        lines += chunk.count(b"\n")
        if progress is not None:
            progress(lines, None)

    timeout = httpx.Timeout(30.0, read=None, write=None)
    base = url.rstrip("/")
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=timeout, transport=transport
    ) as http:
        if create is not None:
            body = create.model_dump(by_alias=True, exclude_none=True)
            created = await http.post("/v1/collections", json=body)
            if created.status_code not in (201, 409):  # 409: it exists already, import into it
                raise ImportRefused(_problem_detail(created))
        params = {"format": chosen, "mode": mode, **({"key": key} if key else {})}
        response = await http.post(
            f"/v1/collections/{collection_name}/import",
            params=params,
            content=file_chunks(path, count),
            headers={
                "Content-Type": CONTENT_TYPES[chosen],
                "Content-Length": str(size),
            },
        )
    if response.status_code != 200:
        status = response.status_code
        raise ImportRefused(_problem_detail(response), usage=400 <= status < 500 and status != 413)
    return ImportReport.model_validate(response.json())
