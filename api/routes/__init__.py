"""Every route of the API, under one router mounted at /v1."""

from fastapi import APIRouter

from api.routes import (
    aggregate,
    api_keys,
    auth,
    collections,
    documents,
    health,
    queries,
    transfer,
    users,
)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(api_keys.router)
api_router.include_router(collections.router)
api_router.include_router(queries.router)
api_router.include_router(documents.router)
api_router.include_router(documents.bulk_router)
api_router.include_router(aggregate.router)
api_router.include_router(transfer.router)
