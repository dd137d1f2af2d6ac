"""Bulk writes: up to 1000 inserts, merge-patch updates and deletes in one database round trip."""

from dataclasses import dataclass, field
from typing import Annotated, Any

from bson import ObjectId
from pydantic import BaseModel, Field
from pymongo import DeleteOne, InsertOne, ReplaceOne
from pymongo.errors import BulkWriteError

from api.deps import parse_object_id
from api.document_writes import new_document, successor
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
class _Planner:
    """Turns operations into write models, tracking each document's state as the batch goes."""

    access: Access
    current: dict[ObjectId, dict]  # documents as they will be after the operations so far
    updatable: set[ObjectId]
    deletable: set[ObjectId]
    models: list[Any] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    # What a replace expects to find afterwards: its document id and new version.
    replaced: dict[int, tuple[ObjectId, int]] = field(default_factory=dict)

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

    def add(self, position: int, model: Any, result: OperationResult) -> OperationResult:
        self.models.append(model)
        self.positions.append(position)
        return result

    def insert(self, position: int, body: dict) -> OperationResult:
        fields = self.refusal("create") or self.validate(body, position)
        if isinstance(fields, OperationResult):
            return fields
        stored = {"_id": ObjectId(), **new_document(fields, caller_id(self.access.principal))}
        return self.add(
            position,
            InsertOne(stored),
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
        self.replaced[position] = (oid, following["_version"])
        model = ReplaceOne({"_id": oid, "_version": stored["_version"]}, following)
        return self.add(
            position, model, OperationResult(status=200, id=spec.id, version=following["_version"])
        )

    def delete(self, position: int, spec: DeleteSpec) -> OperationResult:
        refused = self.refusal("delete")
        if refused:
            return refused
        oid = parse_object_id(spec.id)
        if oid is None or oid not in self.deletable or oid not in self.current:
            return _failure(404, "Document not found")
        del self.current[oid]
        return self.add(position, DeleteOne({"_id": oid}), OperationResult(status=204, id=spec.id))


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
    await _write(access, request.ordered, planner, results)
    return BulkResponse(
        results=[
            results.get(position)
            or _failure(NOT_ATTEMPTED, "Not attempted: an earlier operation failed")
            for position in range(len(request.operations))
        ]
    )


async def _write(
    access: Access, ordered: bool, planner: _Planner, results: dict[int, OperationResult]
) -> None:
    if not planner.models:
        return
    storage = access.collection.storage
    try:
        outcome = await storage.bulk_write(planner.models, ordered=ordered)
        matched = outcome.matched_count
    except BulkWriteError as error:
        matched = error.details.get("nMatched", 0)
        for write_error in error.details.get("writeErrors", []):
            index = write_error["index"]
            duplicate = write_error.get("code") == 11000
            results[planner.positions[index]] = _failure(
                409 if duplicate else 503,
                "A document with the same value of a unique field already exists"
                if duplicate
                else "The write could not be completed",
            )
            if ordered:
                for later in planner.positions[index + 1 :]:
                    results.pop(later, None)
    if matched < len(planner.replaced):
        # A replace matched nothing: someone changed that document between our read and write.
        # Only the document itself tells whose write it holds (another writer starting from the
        # same version reaches the same version number), so compare it whole with ours.
        ids = list({oid for oid, _ in planner.replaced.values()})
        stored = {d["_id"]: d async for d in storage.find({"_id": {"$in": ids}})}
        for position, (oid, _) in planner.replaced.items():
            if (
                position in results
                and results[position].error is None
                # As JSON: the server keeps dates to the millisecond.
                and to_json(stored.get(oid)) != to_json(planner.current.get(oid))
            ):
                results[position] = _failure(409, "The document was changed meanwhile; try again")
