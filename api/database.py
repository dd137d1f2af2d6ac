"""The service's one way to the database: PyMongo's async client over a URL, then Beanie."""

import asyncio
from datetime import UTC

from beanie import init_beanie
from pymongo import AsyncMongoClient

from documents import MODELS


async def connect(url: str, database: str) -> AsyncMongoClient:
    client: AsyncMongoClient = AsyncMongoClient(
        url,
        tz_aware=True,
        tzinfo=UTC,
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


async def applies_late_join_rules(client: AsyncMongoClient) -> bool:
    """Whether the server runs a `$lookup`'s own pipeline wherever the `$lookup` stands.

    MongoDB does. The embedded stand-in (nx-27017) skips it after reshaping stages, and with
    it the rule filter Cabinet puts there, so the aggregation route must not rely on it.
    """
    info = await client.admin.command("buildInfo")
    return info.get("process") != "nx_27017"
