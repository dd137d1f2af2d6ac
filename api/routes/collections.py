"""Collection definitions: create, list, read, change and drop collections (admins only)."""

from fastapi import APIRouter, status
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError, OperationFailure

from api.catalog import Collection, bind, index_problems, sync_indexes
from api.deps import AdminUser, CollectionDep
from api.problems import Problem
from api.schemas import CompiledSchema, DocumentInvalid, SchemaError, compile_schema
from documents.collections import (
    CollectionCreate,
    CollectionDef,
    CollectionPublic,
    CollectionUpdate,
    IndexSpec,
)
from documents.users import utc_now

router = APIRouter(prefix="/collections", tags=["collections"])
MISFITS_NAMED = 10


class CollectionList(BaseModel):
    items: list[CollectionPublic]
    next_cursor: str | None = None


def _compile(schema: dict) -> CompiledSchema:
    try:
        return compile_schema(schema)
    except SchemaError as error:
        errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors]
        raise Problem(422, "The schema is not valid", errors=errors) from error


def _check_indexes(indexes: list[IndexSpec], compiled: CompiledSchema) -> None:
    problems = index_problems(indexes, compiled.fields)
    if problems:
        raise Problem(422, "The indexes are not valid", errors=problems)


async def _apply_indexes(collection: Collection) -> None:
    try:
        await sync_indexes(collection)
    except (DuplicateKeyError, OperationFailure) as error:
        raise Problem(409, "Existing documents hold duplicate values for a unique index") from error


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_collection(body: CollectionCreate, _: AdminUser) -> CollectionPublic:
    """Define a new collection: its schema, access rules and indexes."""
    compiled = _compile(body.schema_)
    _check_indexes(body.indexes, compiled)
    definition = CollectionDef(
        name=body.name, schema=body.schema_, rules=body.rules, indexes=body.indexes
    )
    try:
        await definition.insert()
    except DuplicateKeyError as error:
        raise Problem(409, f"A collection named '{body.name}' already exists") from error
    try:
        await _apply_indexes(bind(definition))
    except Problem:
        await definition.delete()
        raise
    return CollectionPublic.of(definition)


@router.get("")
async def list_collections(_: AdminUser) -> CollectionList:
    """Every collection definition, by name."""
    definitions = await CollectionDef.find_all().sort("+name").to_list()
    return CollectionList(items=[CollectionPublic.of(d) for d in definitions])


@router.get("/{name}")
async def read_collection(collection: CollectionDep, _: AdminUser) -> CollectionPublic:
    """One collection definition."""
    return CollectionPublic.of(collection.definition)


async def _misfits(collection: Collection, compiled: CompiledSchema) -> list[dict]:
    """Up to MISFITS_NAMED stored documents the new schema would refuse."""
    misfits: list[dict] = []
    async for stored in collection.storage.find({}):
        body = {key: value for key, value in stored.items() if not key.startswith("_")}
        try:
            compiled.validate(body)
        except DocumentInvalid as error:
            first = error.errors[0] if error.errors else {"loc": [], "msg": "invalid"}
            misfits.append({"loc": [str(stored["_id"]), *first["loc"]], "msg": first["msg"]})
            if len(misfits) == MISFITS_NAMED:
                break
    return misfits


@router.patch("/{name}")
async def update_collection(
    body: CollectionUpdate, collection: CollectionDep, _: AdminUser
) -> CollectionPublic:
    """Change a collection's schema, rules or indexes; existing documents must fit a new schema."""
    definition = collection.definition
    changes = body.model_dump(exclude_unset=True, by_alias=True)
    schema = body.schema_ if body.schema_ is not None else definition.schema_
    compiled = _compile(schema)
    indexes = body.indexes if body.indexes is not None else definition.indexes
    _check_indexes(indexes, compiled)
    if body.schema_ is not None:
        misfits = await _misfits(collection, compiled)
        if misfits:
            ids = ", ".join(str(m["loc"][0]) for m in misfits)
            raise Problem(
                409, f"Existing documents do not fit the new schema: {ids}", errors=misfits
            )
    update: dict = {"updated": utc_now(), "version": definition.version + 1}
    if "schema" in changes:
        update["schema"] = schema
    if "rules" in changes and body.rules is not None:
        update["rules"] = body.rules.model_dump()
    if "indexes" in changes:
        update["indexes"] = [spec.model_dump(exclude_none=True) for spec in indexes]
    result = await CollectionDef.get_pymongo_collection().replace_one(
        {"_id": definition.id, "version": definition.version},
        {**definition.model_dump(by_alias=True, exclude={"id"}), **update},
    )
    if result.matched_count == 0:
        raise Problem(409, "The collection was changed meanwhile; read it and try again")
    changed = await CollectionDef.get(definition.id)
    assert changed is not None
    if "indexes" in changes:
        await _apply_indexes(bind(changed))
    return CollectionPublic.of(changed)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(collection: CollectionDep, _: AdminUser) -> None:
    """Drop a collection with all its documents."""
    await collection.definition.delete()
    await collection.storage.drop()
