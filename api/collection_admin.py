"""Defining a collection from a definition: shared by the collections route and `seed/`."""

from pymongo.errors import DuplicateKeyError, OperationFailure

from api.catalog import Collection, bind, definitions_written, index_problems, sync_indexes
from api.problems import Problem
from api.schema_compiler import compile_schema
from api.schemas import CompiledSchema, SchemaError
from documents.collections import CollectionCreate, CollectionDef, IndexSpec


def compile_definition_schema(schema: dict) -> CompiledSchema:
    """The compiled schema, or 422 naming every problem in it."""
    try:
        return compile_schema(schema)
    except SchemaError as error:
        errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors]
        raise Problem(422, "The schema is not valid", errors=errors) from error


def check_indexes(indexes: list[IndexSpec], compiled: CompiledSchema) -> None:
    problems = index_problems(indexes, compiled.fields)
    if problems:
        raise Problem(422, "The indexes are not valid", errors=problems)


async def apply_indexes(collection: Collection, previous: CollectionDef | None = None) -> None:
    """Builds the definition's indexes (`previous`: the definition it replaces); 409 when a
    unique index cannot be built over the documents already stored."""
    try:
        await sync_indexes(collection, previous)
    except OperationFailure as error:
        if not any(spec.unique for spec in collection.definition.indexes):
            raise
        raise Problem(409, "Existing documents hold duplicate values for a unique index") from error


async def create_collection(body: CollectionCreate) -> CollectionDef:
    """Stores a new definition and builds its indexes; 422 if invalid, 409 if the name is taken."""
    compiled = compile_definition_schema(body.schema_)
    check_indexes(body.indexes, compiled)
    definition = CollectionDef(
        name=body.name, schema=body.schema_, rules=body.rules, indexes=body.indexes
    )
    try:
        await definition.insert()
    except DuplicateKeyError as error:
        raise Problem(409, f"A collection named '{body.name}' already exists") from error
    try:
        await apply_indexes(bind(definition))
    except Problem:
        with definitions_written():
            await definition.delete()
        raise
    return definition


async def drop_collection(collection: Collection) -> None:
    """Removes the documents with their indexes, then the definition; so a drop that fails
    midway never leaves old documents for a new collection of the same name to inherit."""
    definition = collection.definition
    # Read afresh: another process's cached definition may name one since dropped and re-made.
    current = await CollectionDef.find_one({"_id": definition.id, "version": definition.version})
    if current is None:
        raise Problem(409, "The collection was changed meanwhile; read it and try again")
    with definitions_written():
        await collection.storage.drop()
        await definition.delete()
