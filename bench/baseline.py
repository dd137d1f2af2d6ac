"""The baseline: a bare Starlette app making the same database call as each Cabinet scenario.

    BENCH_MONGODB_URL=… BENCH_DATABASE=… BENCH_OWNER=… python -m uvicorn bench.baseline:app

No validation, no auth, no rate limit, no rules: the owner is fixed by the environment, bodies
go to the database as sent (plus the system fields Cabinet stores). What is left is the cost of
HTTP, JSON and the driver, which Cabinet pays too; the difference is Cabinet's own.
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient, ReturnDocument
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

OWNER = os.environ.get("BENCH_OWNER", "")
LIST_LIMIT = 50


def plain(value: Any) -> Any:
    """Stored values as JSON: ids as strings, dates in ISO 8601."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _storage(request: Request) -> Any:
    return request.app.state.database[request.path_params["collection"]]


def object_id(text: str) -> ObjectId | None:
    return ObjectId(text) if ObjectId.is_valid(text) else None


async def read_document(request: Request) -> Response:
    found = await _storage(request).find_one(
        {"_id": object_id(request.path_params["doc_id"]), "_owner": OWNER}
    )
    if found is None:
        return JSONResponse({"detail": "not found"}, status_code=404)
    return JSONResponse(plain(found))


async def list_documents(request: Request) -> Response:
    params = request.query_params
    query = {"_owner": OWNER, **json.loads(params.get("filter") or "{}")}
    sort = [
        (key.lstrip("-"), -1 if key.startswith("-") else 1)
        for key in (params.get("sort") or "_id").split(",")
    ]
    found = await _storage(request).find(query, sort=sort, limit=LIST_LIMIT + 1).to_list()
    return JSONResponse({"items": plain(found[:LIST_LIMIT]), "next_cursor": None})


async def create_document(request: Request) -> Response:
    now = datetime.now(UTC)
    stored = {
        **await request.json(),
        "_owner": OWNER,
        "_created": now,
        "_updated": now,
        "_version": 1,
    }
    await _storage(request).insert_one(stored)
    return JSONResponse(plain(stored), status_code=201)


async def apply_inc(request: Request) -> Response:
    body = await request.json()
    changed = await _storage(request).find_one_and_update(
        {"_id": object_id(request.path_params["doc_id"]), "_owner": OWNER},
        {"$inc": {**body["inc"], "_version": 1}, "$currentDate": {"_updated": True}},
        return_document=ReturnDocument.AFTER,
    )
    if changed is None:
        return JSONResponse({"detail": "not found"}, status_code=404)
    return JSONResponse(plain(changed))


async def aggregate(request: Request) -> Response:
    body = await request.json()
    stages = [{"$match": {"_owner": OWNER}}, *body["pipeline"], {"$limit": 10_001}]
    cursor = await _storage(request).aggregate(stages)
    return JSONResponse({"items": plain(await cursor.to_list())})


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    client: AsyncMongoClient = AsyncMongoClient(os.environ["BENCH_MONGODB_URL"], tz_aware=True)
    app.state.database = client[os.environ["BENCH_DATABASE"]]
    try:
        yield
    finally:
        await client.close()


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/{collection}/documents", list_documents),
        Route("/{collection}/documents", create_document, methods=["POST"]),
        Route("/{collection}/documents/{doc_id}", read_document),
        Route("/{collection}/documents/{doc_id}/inc", apply_inc, methods=["POST"]),
        Route("/{collection}/aggregate", aggregate, methods=["POST"]),
    ],
    lifespan=lifespan,
)
