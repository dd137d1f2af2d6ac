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
