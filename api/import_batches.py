"""The Importer: records validated into rows, written 1000 at a time, and counted in a report.

A batch is written while the next is read and checked; upserts match on a uniquely indexed key
and replace only the version they read, so a concurrent change fails the row instead of being lost.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel
from pymongo import InsertOne, ReplaceOne
from pymongo.errors import BulkWriteError

from api.catalog import Collection
from api.deps import Principal
from api.document_writes import as_stored, new_document, successor
from api.import_formats import Record
from api.rules import caller_id
from api.schemas import DocumentInvalid
from documents.users import to_milliseconds

BATCH_SIZE = 1000
MAX_LISTED_ERRORS = 100
IGNORED_SYSTEM_FIELDS = ("_created", "_updated", "_version")
DUPLICATE_KEY = 11000
_MAX_SCHEMA_ERRORS_SHOWN = 5
_UNSET: Any = object()


class RowError(BaseModel):
    line: int
    detail: str


class ImportReport(BaseModel):
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[RowError] = []


def _path_value(document: dict, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _key_of(value: Any) -> Hashable:
    # True == 1 in Python but not in MongoDB, so booleans are kept apart from numbers. Dates are
    # taken to the millisecond, as the server keeps them, so a row finds the one it stored.
    if isinstance(value, datetime):
        value = to_milliseconds(value)
    return (type(value) is bool, value)


def _schema_detail(error: DocumentInvalid) -> str:
    shown = [
        f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg']}"
        for e in error.errors[:_MAX_SCHEMA_ERRORS_SHOWN]
    ]
    more = len(error.errors) - len(shown)
    return (
        "The record does not fit the schema: " + "; ".join(shown) + (f"; …{more} more" * bool(more))
    )


@dataclass
class _Row:
    line: int
    fields: dict
    id: ObjectId | None
    owner: Any  # _UNSET when the record names no `_owner`
    key_value: Any = None

    @property
    def key(self) -> Hashable:
        return _key_of(self.key_value)


@dataclass
class Importer:
    """Turns records into batched writes and keeps the report."""

    collection: Collection
    principal: Principal | None
    key: str | None
    update_narrowing: dict
    max_time_ms: int
    # Counts records against the caller's rate limit, a batch at a time, before it is written.
    meter: Callable[[int], Awaitable[None]] | None = None
    report: ImportReport = field(default_factory=ImportReport)
    _unmetered: int = 0
    _batch: list[_Row] = field(default_factory=list)
    _keys: set[Hashable] = field(default_factory=set)
    _unlisted: list[RowError] = field(default_factory=list)  # this batch's errors, in line order
    _in_flight: tuple[asyncio.Task[list[RowError]], list[RowError]] | None = None

    def fail(self, line: int, detail: str) -> None:
        self.report.failed += 1
        if len(self.report.errors) + len(self._unlisted) < MAX_LISTED_ERRORS:
            self._unlisted.append(RowError(line=line, detail=detail))

    def _row(self, record: Record) -> _Row | None:
        if record.value is None:
            self.fail(record.line, record.error or "The record could not be read")
            return None
        value = {k: v for k, v in record.value.items() if k not in IGNORED_SYSTEM_FIELDS}
        given_id, owner = value.pop("_id", _UNSET), value.pop("_owner", _UNSET)
        admin = self.principal is not None and self.principal.is_admin
        if (given_id is not _UNSET or owner is not _UNSET) and not admin:
            self.fail(record.line, "Only administrators may import _id and _owner")
            return None
        object_id = None
        if given_id is not _UNSET:
            if not isinstance(given_id, str) or not ObjectId.is_valid(given_id):
                self.fail(record.line, "_id should be a 24-hex ObjectId string")
                return None
            object_id = ObjectId(given_id)
        if owner is not _UNSET and owner is not None and not isinstance(owner, str):
            self.fail(record.line, "_owner should be a string or null")
            return None
        try:
            fields = self.collection.compiled.validate(value)
        except DocumentInvalid as error:
            self.fail(record.line, _schema_detail(error))
            return None
        row = _Row(record.line, fields, object_id, owner)
        if self.key is not None:
            key_value = _path_value(fields, self.key)
            if isinstance(key_value, dict | list) or key_value is None:
                self.fail(record.line, f"The record has no single value for the key {self.key!r}")
                return None
            row.key_value = key_value
        return row

    async def add(self, record: Record) -> None:
        self._unmetered += 1
        row = self._row(record)
        if row is None:
            return
        if self.key is not None and row.key in self._keys:
            # The later record updates the earlier one, so the earlier must be written first.
            await self.flush()
        self._batch.append(row)
        if self.key is not None:
            self._keys.add(row.key)
        if len(self._batch) >= BATCH_SIZE:
            await self.flush()

    def _new(self, row: _Row) -> dict:
        owner = caller_id(self.principal) if row.owner is _UNSET else row.owner
        return {"_id": row.id or ObjectId(), **new_document(row.fields, owner)}

    async def flush(self) -> None:
        """Starts writing the batch once the previous one is written, so that reading and
        checking the next batch overlaps the database's work on this one."""
        if self.meter is not None and self._unmetered:
            records, self._unmetered = self._unmetered, 0
            await self.meter(records)
        batch, self._batch, self._keys = self._batch, [], set()
        unlisted, self._unlisted = self._unlisted, []
        await self.settle()
        if batch:
            self._in_flight = (asyncio.create_task(self._write(batch)), unlisted)
        else:
            self._list(unlisted)

    async def settle(self) -> None:
        """Waits for the batch being written and lists its errors."""
        if self._in_flight is None:
            return
        task, unlisted = self._in_flight
        self._in_flight = None
        self._list([*unlisted, *await task])

    def _list(self, errors: list[RowError]) -> None:
        listed = sorted(errors, key=lambda error: error.line)
        self.report.errors.extend(listed[: MAX_LISTED_ERRORS - len(self.report.errors)])

    async def _write(self, batch: list[_Row]) -> list[RowError]:
        storage = self.collection.storage
        existing: dict[Hashable, dict] = {}
        if self.key is not None:
            values = [row.key_value for row in batch]
            found = storage.find(
                {self.key: {"$in": values}, **self.update_narrowing}, max_time_ms=self.max_time_ms
            )
            existing = {_key_of(_path_value(doc, self.key)): doc async for doc in found}
        models: list[InsertOne | ReplaceOne] = []
        replaced: dict[int, tuple[ObjectId, dict]] = {}  # position → (id, document it writes)
        for position, row in enumerate(batch):
            stored = existing.get(row.key) if self.key is not None else None
            if stored is None:
                models.append(InsertOne(self._new(row)))
                continue
            following = successor(stored, row.fields)
            if row.owner is not _UNSET:
                following["_owner"] = row.owner
            replaced[position] = (stored["_id"], following)
            models.append(
                ReplaceOne({"_id": stored["_id"], "_version": stored["_version"]}, following)
            )
        failed: dict[int, str] = {}
        try:
            outcome = await storage.bulk_write(models, ordered=False)
            inserted, matched = outcome.inserted_count, outcome.matched_count
        except BulkWriteError as error:
            inserted, matched = error.details.get("nInserted", 0), error.details.get("nMatched", 0)
            for write_error in error.details.get("writeErrors", []):
                failed[write_error["index"]] = (
                    "duplicate value for a unique field"
                    if write_error.get("code") == DUPLICATE_KEY
                    else "The record could not be written"
                )
        if matched < len(replaced) - sum(1 for position in replaced if position in failed):
            await self._find_lost_replaces(replaced, failed)
        self.report.inserted += inserted
        # Counted by row rather than `matched`, so that a row is never both updated and failed.
        self.report.updated += sum(1 for position in replaced if position not in failed)
        errors = []
        for position, detail in sorted(failed.items()):
            self.report.failed += 1
            errors.append(RowError(line=batch[position].line, detail=detail))
        return errors

    async def _find_lost_replaces(
        self, replaced: dict[int, tuple[ObjectId, dict]], failed: dict[int, str]
    ) -> None:
        """Marks the replaces that matched nothing: the document changed after it was read.

        Only the document itself tells whose write it holds (a concurrent writer starting from
        the same version reaches the same version number), so it is compared whole with ours.
        One that landed and was changed again since looks lost too, and failing it is the safe
        side of that doubt.
        """
        storage = self.collection.storage
        found = storage.find({"_id": {"$in": [oid for oid, _ in replaced.values()]}})
        stored = {doc["_id"]: doc async for doc in found}
        for position, (oid, written) in replaced.items():
            landed = stored.get(oid) == as_stored(written, storage.codec_options)
            if position not in failed and not landed:
                failed[position] = "The document was changed during the import; try again"
