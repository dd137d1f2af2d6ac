"""The service's one way to the database: PyMongo's async client over a URL, then Beanie."""

import asyncio
from dataclasses import dataclass

from beanie import init_beanie
from pymongo import AsyncMongoClient

from api.embedded_fixes import COMPOUND_ID_INDEXES
from documents import MODELS


async def connect(url: str, database: str) -> AsyncMongoClient:
    # Dates come back aware, in UTC as bson's own `utc`: asking for `datetime.UTC` instead makes
    # the decoder convert every date it reads (~0.6 µs each, ~2 % of a page of 50 documents).
    client: AsyncMongoClient = AsyncMongoClient(
        url,
        tz_aware=True,
        appname="cabinet",
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=10_000,
    )
    await init_beanie(database=client[database], document_models=MODELS)
    return client


async def ping(client: AsyncMongoClient, seconds: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await client.admin.command("ping")
    except Exception:  # any failure at all means "not ready"
        return False
    return True


@dataclass(frozen=True, slots=True)
class ServerTraits:
    """Where the server departs from MongoDB; on MongoDB itself every trait is True.

    The embedded stand-in (nx-27017) skips a `$lookup`'s own pipeline, and with it the rule
    filter Cabinet puts there, once earlier stages reshaped the documents. Unpatched, it cannot
    keep `_id` inside a compound index (every insert then fails); `api.embedded_fixes` fixes that
    and has its `buildInfo` say so (`compoundIdIndexes: true`), which is what
    `id_in_compound_index` follows there.
    """

    late_join_rules: bool
    id_in_compound_index: bool


async def server_traits(client: AsyncMongoClient) -> ServerTraits:
    info = await client.admin.command("buildInfo")
    mongodb = info.get("process") != "nx_27017"
    return ServerTraits(
        late_join_rules=mongodb,
        id_in_compound_index=mongodb or info.get(COMPOUND_ID_INDEXES) is True,
    )
