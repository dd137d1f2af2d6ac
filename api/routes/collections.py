"""Collection definitions: create, list, read, change and drop collections (admins only)."""

from fastapi import APIRouter, status
from pydantic import BaseModel

from api import audit
from api.catalog import Collection, bind, definitions_written
from api.collection_admin import (
    apply_indexes,
    check_indexes,
    compile_definition_schema,
    drop_collection,
)
from api.collection_admin import create_collection as create_collection_definition
from api.deps import AdminUser, ClientAddress, CollectionDep
from api.problems import Problem
from api.routes.common import METERED, V1
from api.schemas import CompiledSchema, DocumentInvalid
from documents.collections import (
    CollectionCreate,
    CollectionDef,
    CollectionPublic,
    CollectionUpdate,
)
from documents.users import utc_now

router = APIRouter(prefix=f"{V1}/collections", tags=["collections"], responses=METERED)
MISFITS_NAMED = 10


class CollectionList(BaseModel):
    items: list[CollectionPublic]
    next_cursor: str | None = None


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_collection(
    body: CollectionCreate, admin: AdminUser, address: ClientAddress
) -> CollectionPublic:
    """Define a new collection: its schema, access rules and indexes."""
    definition = await create_collection_definition(body)
    await audit.record("collection.create", actor=admin.id, target=body.name, address=address)
    return CollectionPublic.model_validate(definition)


@router.get("")
async def list_collections(_: AdminUser) -> CollectionList:
    """Every collection definition, by name."""
    definitions = await CollectionDef.find_all().sort("+name").to_list()
    return CollectionList(items=[CollectionPublic.model_validate(d) for d in definitions])


@router.get("/{name}")
async def read_collection(_: AdminUser, collection: CollectionDep) -> CollectionPublic:
    """One collection definition."""
    return CollectionPublic.model_validate(collection.definition)


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
    body: CollectionUpdate, admin: AdminUser, collection: CollectionDep, address: ClientAddress
) -> CollectionPublic:
    """Change a collection's schema, rules or indexes; existing documents must fit a new schema."""
    definition = collection.definition
    changes = body.model_dump(exclude_unset=True, by_alias=True)
    schema = body.schema_ if body.schema_ is not None else definition.schema_
    compiled = compile_definition_schema(schema)
    indexes = body.indexes if body.indexes is not None else definition.indexes
    check_indexes(indexes, compiled)
    if body.schema_ is not None:
        misfits = await _misfits(collection, compiled)
        if misfits:
            ids = ", ".join(str(m["loc"][0]) for m in misfits)
            raise Problem(
                409, f"Existing documents do not fit the new schema: {ids}", errors=misfits
            )
    if "indexes" in changes:
        # Built before the definition changes: a unique index the stored documents break is
        # refused (409) with the definition as it was.
        replacement = definition.model_copy(update={"indexes": indexes})
        await apply_indexes(bind(replacement), previous=definition)
    update: dict = {"updated": utc_now(), "version": definition.version + 1}
    if "schema" in changes:
        update["schema"] = schema
    if "rules" in changes and body.rules is not None:
        update["rules"] = body.rules.model_dump()
    if "indexes" in changes:
        update["indexes"] = [spec.model_dump(exclude_none=True) for spec in indexes]
    with definitions_written():
        result = await CollectionDef.get_pymongo_collection().replace_one(
            {"_id": definition.id, "version": definition.version},
            {**definition.model_dump(by_alias=True, exclude={"id"}), **update},
        )
    if result.matched_count == 0:
        if "indexes" in changes:
            await _restore_indexes(definition, replacement)
        raise Problem(409, "The collection was changed meanwhile; read it and try again")
    changed = await CollectionDef.get(definition.id)
    assert changed is not None
    await audit.record(
        "collection.update",
        actor=admin.id,
        target=changed.name,
        address=address,
        detail={"changed": sorted(changes), "version": changed.version},
    )
    return CollectionPublic.model_validate(changed)


async def _restore_indexes(read: CollectionDef, attempted: CollectionDef) -> None:
    """After losing the race to change a definition: its indexes were synced to the attempted
    one, which dropped any the winner had built; they are made the winner's again."""
    current = await CollectionDef.get(read.id)
    if current is not None:
        await apply_indexes(bind(current), previous=attempted)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(
    admin: AdminUser, collection: CollectionDep, address: ClientAddress
) -> None:
    """Drop a collection with all its documents."""
    await drop_collection(collection)
    await audit.record("collection.delete", actor=admin.id, target=collection.name, address=address)
