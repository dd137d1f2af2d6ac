"""The collections an admin has defined: each definition with its compiled schema, and indexes."""

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel, ReadPreference
from pymongo.asynchronous.collection import AsyncCollection

from api.database import ServerTraits, server_traits
from api.fields import SYSTEM_FIELDS, FieldSpec, outermost
from api.schema_compiler import compile_schema
from api.schemas import CompiledSchema
from api.watched_cache import WatchedCache, forget
from documents.collections import CollectionDef, IndexSpec

_COMPILED_CACHE_SIZE = 1024
# Keyed by definition id and version: a changed definition gets a new version, so a process
# never serves an old schema, and unchanged ones are not recompiled on every request.
_compiled: OrderedDict[tuple[str, int], CompiledSchema] = OrderedDict()


@dataclass(frozen=True)
class Collection:
    definition: CollectionDef
    compiled: CompiledSchema
    storage: AsyncCollection

    @property
    def name(self) -> str:
        return self.definition.name

    @cached_property
    def fields(self) -> dict[str, FieldSpec]:
        """User fields and system fields: every path a query may name."""
        return {**self.compiled.fields, **SYSTEM_FIELDS}

    @cached_property
    def write_only(self) -> tuple[str, ...]:
        """The write-only fields, outermost only (their children are hidden with them)."""
        return outermost(path for path, spec in self.compiled.fields.items() if spec.write_only)

    @property
    def has_text_index(self) -> bool:
        return any(spec.text for spec in self.definition.indexes)


def compiled_schema(definition: CollectionDef) -> CompiledSchema:
    key = (str(definition.id), definition.version)
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = compile_schema(definition.schema_)
        _compiled[key] = compiled
        if len(_compiled) > _COMPILED_CACHE_SIZE:
            _compiled.popitem(last=False)
    return compiled


def bind(definition: CollectionDef) -> Collection:
    storage = CollectionDef.get_pymongo_collection().database[definition.storage_name]
    return Collection(definition, compiled_schema(definition), storage)


async def load_collection(name: str, cache: WatchedCache | None = None) -> Collection | None:
    """The current definition: from `cache` while its change stream vouches for it, else read."""
    if cache is not None and (cached := cache.get(name)) is not None:
        return cached
    generation = cache.generation if cache is not None else 0
    # From the primary: a lagging secondary read after a change's event could be kept.
    definitions = CollectionDef.get_pymongo_collection()
    primary = definitions.with_options(read_preference=ReadPreference.PRIMARY)
    stored = await primary.find_one({"name": name})
    if stored is None:
        return None
    definition = CollectionDef.model_validate(stored)
    collection = bind(definition)
    if cache is not None:
        cache.put(name, definition.id, collection, generation)
    return collection


@contextmanager
def definitions_written() -> Iterator[None]:
    """Around a write to definitions: afterwards this process's next request reads them afresh,
    even after a failure (the write may still have been applied)."""
    try:
        yield
    finally:
        forget(CollectionDef.get_pymongo_collection().name)


def _key(field: str) -> tuple[str, int]:
    return field.lstrip("+-"), DESCENDING if field.startswith("-") else ASCENDING


def index_problems(indexes: list[IndexSpec], fields: dict[str, FieldSpec]) -> list[dict]:
    """What is wrong with index specs against a schema's fields, as validation errors."""
    problems: list[dict] = []
    if sum(1 for spec in indexes if spec.text) > 1:
        problems.append({"loc": ["body", "indexes"], "msg": "at most one text index"})
    known = {**fields, **SYSTEM_FIELDS}
    for position, spec in enumerate(indexes):
        for key in spec.fields or spec.text or []:
            path = key.lstrip("+-")
            loc = ["body", "indexes", position]
            field = known.get(path)
            if field is None:
                problems.append({"loc": loc, "msg": f"unknown field '{path}'"})
            elif spec.text and not (
                "string" in field.types or (field.items and "string" in field.items.types)
            ):
                problems.append({"loc": loc, "msg": f"text index field '{path}' is not a string"})
            elif spec.text and key != path:
                problems.append({"loc": loc, "msg": "text index fields take no direction"})
            elif spec.text and _under_write_only(path, fields):
                # A search would find documents by what only admins may read.
                problems.append({"loc": loc, "msg": f"text index field '{path}' is write-only"})
    return problems


def _under_write_only(path: str, fields: dict[str, FieldSpec]) -> bool:
    parts = path.split(".")
    return any(
        (spec := fields.get(".".join(parts[:end]))) is not None and spec.write_only
        for end in range(1, len(parts) + 1)
    )


def index_models(definition: CollectionDef, traits: ServerTraits) -> list[IndexModel]:
    # Owner-rule lists narrow on `_owner` and page in `_id` order, which `_owner, _id` serves
    # from the index alone; a server that cannot hold `_id` in a compound key gets `_owner`.
    owner = [("_owner", ASCENDING)]
    if traits.id_in_compound_index:
        owner.append(("_id", ASCENDING))
    models = [IndexModel(owner, name="cabinet_owner")]
    for spec in definition.indexes:
        if spec.text:
            models.append(IndexModel([(path, TEXT) for path in spec.text], name="cabinet_text"))
            continue
        assert spec.fields is not None
        keys = [_key(field) for field in spec.fields]
        name = "cabinet_" + "_".join(f"{path}_{direction}" for path, direction in keys)
        options: dict = {"name": name[:120]}
        if spec.unique:
            # Only documents that have the fields take part, so absent optional fields don't clash.
            options["unique"] = True
            options["partialFilterExpression"] = {path: {"$exists": True} for path, _ in keys}
        models.append(IndexModel(keys, **options))
    return models


def _signature(index: Mapping[str, Any]) -> tuple:
    """An index's identity by keys and uniqueness, from its definition or the server's listing.

    Not by name: the embedded database renames indexes. A text index is known by its fields,
    which MongoDB lists as `weights` (its keys are then `_fts` and `_ftsx`).
    """
    key = index["key"]
    pairs = list(key.items() if isinstance(key, Mapping) else key)
    if any(direction == "text" for _, direction in pairs):
        fields = index.get("weights") or [path for path, direction in pairs if direction == "text"]
        return "text", tuple(sorted(fields))
    return tuple((str(path), str(direction)) for path, direction in pairs), bool(
        index.get("unique")
    )


async def sync_indexes(collection: Collection, previous: CollectionDef | None = None) -> None:
    """Makes the storage collection's indexes those of the definition, dropping the others.

    `previous` is the definition being replaced: its text index counts as present even where
    the server does not list it (the embedded database leaves text indexes out). Other indexes
    are known from the listing alone, since what `previous` built depended on the server's
    traits then (the owner index of a stand-in data directory from before `_owner, _id`).
    """
    traits = await server_traits(collection.storage.database.client)
    desired = index_models(collection.definition, traits)
    wanted = {_signature(m.document) for m in desired}
    existing = await collection.storage.index_information()
    present = {_signature(info): name for name, info in existing.items()}
    built = set(present)
    if previous is not None:
        earlier = (_signature(m.document) for m in index_models(previous, traits))
        built |= {signature for signature in earlier if signature[0] == "text"}
    # New indexes first: if one cannot be built, the old ones are all still there.
    missing = [m for m in desired if _signature(m.document) not in built]
    if missing:
        await collection.storage.create_indexes(missing)
    for signature, name in present.items():
        if name != "_id_" and signature not in wanted:
            await collection.storage.drop_index(name)
