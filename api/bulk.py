"""Bulk writes: up to 1000 inserts, merge-patch updates and deletes in one database round trip,
and another whenever an operation comes back to a document the current one already changes."""

from dataclasses import dataclass, field
from itertools import chain
from typing import Annotated, Any

from bson import ObjectId
from pydantic import BaseModel, Field
from pymongo import DeleteOne, InsertOne, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from api.deps import parse_object_id
from api.document_writes import as_stored, new_document, successor
from api.guards import Access
from api.merge_patch import merge_patch
from api.rendering import to_json, user_fields
from api.rules import Action, caller_id, rule_filter
from api.schemas import DocumentInvalid
from documents.users import Strict

MAX_OPERATIONS = 1000
NOT_ATTEMPTED = 424
DocumentId = Annotated[str, Field(max_length=64)]


class UpdateSpec(Strict):
    id: DocumentId
    patch: dict[str, Any]
    if_version: Annotated[int, Field(ge=1)] | None = None


class DeleteSpec(Strict):
    id: DocumentId


class InsertOperation(Strict):
    insert: dict[str, Any]


class UpdateOperation(Strict):
    update: UpdateSpec


class DeleteOperation(Strict):
    delete: DeleteSpec


Operation = InsertOperation | UpdateOperation | DeleteOperation


class BulkRequest(Strict):
    ordered: bool = True
    operations: Annotated[list[Operation], Field(min_length=1, max_length=MAX_OPERATIONS)]


class OperationResult(BaseModel):
    status: int
    id: str | None = Field(default=None, serialization_alias="_id")
    version: int | None = Field(default=None, serialization_alias="_version")
    error: dict[str, Any] | None = None


class BulkResponse(BaseModel):
    results: list[OperationResult]


def _failure(status: int, detail: str, errors: list | None = None) -> OperationResult:
    error: dict[str, Any] = {"detail": detail}
    if errors is not None:
        error["errors"] = errors
    return OperationResult(status=status, error=error)


@dataclass
class _Write:
    """A write model, the operation it carries out and the document it changes."""

    position: int
    model: InsertOne | ReplaceOne | DeleteOne
    document: ObjectId
    written: dict | None = None  # what a replace leaves stored: it alone tells ours from another's


@dataclass
class _Planner:
    """Turns operations into write models, tracking each document's state as the batch goes."""

    access: Access
    current: dict[ObjectId, dict]  # documents as they will be after the operations so far
    updatable: set[ObjectId]
    deletable: set[ObjectId]
    writes: list[_Write] = field(default_factory=list)

    def refusal(self, action: Action) -> OperationResult | None:
        rules = self.access.collection.definition.rules
        if rule_filter(rules, action, self.access.principal) is not None:
            return None
        if self.access.principal is None:
            return _failure(401, "Authentication required")
        return _failure(403, f"You may not {action} in this collection")

    def validate(self, body: object, position: int) -> dict | OperationResult:
        try:
            return self.access.collection.compiled.validate(body)
        except DocumentInvalid as error:
            loc = ["operations", position]
            errors = [{"loc": [*loc, *e["loc"]], "msg": e["msg"]} for e in error.errors]
            return _failure(422, "The document does not fit the collection's schema", errors)

    def add(self, write: _Write, result: OperationResult) -> OperationResult:
        self.writes.append(write)
        return result

    def insert(self, position: int, body: dict) -> OperationResult:
        fields = self.refusal("create") or self.validate(body, position)
        if isinstance(fields, OperationResult):
            return fields
        stored = {"_id": ObjectId(), **new_document(fields, caller_id(self.access.principal))}
        return self.add(
            _Write(position, InsertOne(stored), stored["_id"]),
            OperationResult(status=201, id=str(stored["_id"]), version=1),
        )

    def update(self, position: int, spec: UpdateSpec) -> OperationResult:
        refused = self.refusal("update")
        if refused:
            return refused
        oid = parse_object_id(spec.id)
        stored = self.current.get(oid) if oid is not None and oid in self.updatable else None
        if oid is None or stored is None:
            return _failure(404, "Document not found")
        if spec.if_version is not None and spec.if_version != stored["_version"]:
            return _failure(412, "The document has changed since the version given")
        fields = self.validate(merge_patch(to_json(user_fields(stored)), spec.patch), position)
        if isinstance(fields, OperationResult):
            return fields
        following = successor(stored, fields)
        self.current[oid] = following
        model = ReplaceOne({"_id": oid, "_version": stored["_version"]}, following)
        return self.add(
            _Write(position, model, oid, following),
            OperationResult(status=200, id=spec.id, version=following["_version"]),
        )

    def delete(self, position: int, spec: DeleteSpec) -> OperationResult:
        refused = self.refusal("delete")
        if refused:
            return refused
        oid = parse_object_id(spec.id)
        if oid is None or oid not in self.deletable or oid not in self.current:
            return _failure(404, "Document not found")
        del self.current[oid]
        return self.add(
            _Write(position, DeleteOne({"_id": oid}), oid), OperationResult(status=204, id=spec.id)
        )


async def _visible(access: Access, action: Action, ids: list[ObjectId]) -> dict[ObjectId, dict]:
    narrowing = rule_filter(access.collection.definition.rules, action, access.principal)
    if narrowing is None or not ids:
        return {}
    found = access.collection.storage.find(
        {"_id": {"$in": ids}, **narrowing}, max_time_ms=access.max_time_ms
    )
    return {stored["_id"]: stored async for stored in found}


def _ids(
    request: BulkRequest, kind: type[UpdateOperation] | type[DeleteOperation]
) -> list[ObjectId]:
    specs = [
        op.update if isinstance(op, UpdateOperation) else op.delete
        for op in request.operations
        if isinstance(op, kind)
    ]
    return [oid for spec in specs if (oid := parse_object_id(spec.id)) is not None]


async def run_bulk(access: Access, request: BulkRequest) -> BulkResponse:
    """Checks every operation, writes the good ones with one bulk write, and reports each."""
    deletable = await _visible(access, "delete", _ids(request, DeleteOperation))
    updatable = await _visible(access, "update", _ids(request, UpdateOperation))
    planner = _Planner(access, {**deletable, **updatable}, set(updatable), set(deletable))
    results: dict[int, OperationResult] = {}
    for position, operation in enumerate(request.operations):
        if isinstance(operation, InsertOperation):
            result = planner.insert(position, operation.insert)
        elif isinstance(operation, UpdateOperation):
            result = planner.update(position, operation.update)
        else:
            result = planner.delete(position, operation.delete)
        results[position] = result
        if result.error is not None and request.ordered:
            break
    await _write(access.collection.storage, request.ordered, planner.writes, results)
    return BulkResponse(
        results=[
            results.get(position)
            or _failure(NOT_ATTEMPTED, "Not attempted: an earlier operation failed")
            for position in range(len(request.operations))
        ]
    )


def _rounds(writes: list[_Write]) -> list[list[_Write]]:
    """The writes in order, cut wherever one comes back to a document the round already changes."""
    rounds: list[list[_Write]] = [[]]
    documents: set[ObjectId] = set()
    for write in writes:
        if write.document in documents:
            rounds.append([])
            documents.clear()
        rounds[-1].append(write)
        documents.add(write.document)
    return rounds


async def _write(
    storage: AsyncCollection,
    ordered: bool,
    writes: list[_Write],
    results: dict[int, OperationResult],
) -> None:
    """Writes round by round. A second change of a document was planned on the first one's result
    and its filter expects the version the first one makes; sent together, it would overwrite
    another client's write of that version after the first one lost the race. So it waits for
    the next round, which knows whether the first one happened.

    A lost race shows only once its round is written, so an ordered bulk stops at the end of
    that round: the operations after it there were written and are reported so."""
    rounds = _rounds(writes)
    failed: set[ObjectId] = set()  # documents an earlier round did not change as planned
    for number, writes_now in enumerate(rounds):
        pending = []
        for write in writes_now:
            if write.document in failed:
                results[write.position] = _failure(
                    NOT_ATTEMPTED, "Not attempted: an earlier operation on this document failed"
                )
            else:
                pending.append(write)
        await _write_round(storage, ordered, pending, results)
        failures = [write for write in pending if not _done(write, results)]
        if failures and ordered:
            for later in chain.from_iterable(rounds[number + 1 :]):
                results.pop(later.position, None)
            return
        failed.update(write.document for write in failures)


def _done(write: _Write, results: dict[int, OperationResult]) -> bool:
    result = results.get(write.position)
    return result is not None and result.error is None


async def _write_round(
    storage: AsyncCollection,
    ordered: bool,
    writes: list[_Write],
    results: dict[int, OperationResult],
) -> None:
    if not writes:
        return
    try:
        outcome = await storage.bulk_write([write.model for write in writes], ordered=ordered)
        matched = outcome.matched_count
    except BulkWriteError as error:
        matched = error.details.get("nMatched", 0)
        for write_error in error.details.get("writeErrors", []):
            index = write_error["index"]
            duplicate = write_error.get("code") == 11000
            results[writes[index].position] = _failure(
                409 if duplicate else 503,
                "A document with the same value of a unique field already exists"
                if duplicate
                else "The write could not be completed",
            )
            if ordered:
                for later in writes[index + 1 :]:
                    results.pop(later.position, None)
    replaces = [
        (write.position, write.document, write.written)
        for write in writes
        if write.written is not None and _done(write, results)
    ]
    if matched < len(replaces):
        # A replace matched nothing: someone changed that document between our read and write.
        # Only the document itself tells whose write it holds (another writer starting from the
        # same version reaches the same version number), so compare it whole with ours. A replace
        # that landed and was changed again since looks lost too: in that doubt a conflict is
        # the safe report, a success could hide a lost write.
        ids = [document for _, document, _ in replaces]
        stored = {d["_id"]: d async for d in storage.find({"_id": {"$in": ids}})}
        for position, document, written in replaces:
            if stored.get(document) != as_stored(written, storage.codec_options):
                results[position] = _failure(409, "The document was changed meanwhile; try again")
