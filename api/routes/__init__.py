"""Every route of the API, under one router mounted at /v1."""

from fastapi import APIRouter, Depends

from api.deps import request_budget
from api.problems import problem_responses
from api.routes import (
    aggregate,
    api_keys,
    audit,
    auth,
    collections,
    documents,
    health,
    queries,
    transfer,
    users,
)

# Any route may answer these; route-specific ones are declared by each router.
api_router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422, 429, 500))
api_router.include_router(health.router)
# Sign-in routes have their own, stricter limits; everything else shares the caller's budget.
# Every route with a body may also meet the body policy (413, 415).
api_router.include_router(auth.router, responses=problem_responses(413, 415))
metered = APIRouter(
    dependencies=[Depends(request_budget)], responses=problem_responses(409, 412, 413, 415, 504)
)
metered.include_router(users.router)
metered.include_router(api_keys.router)
metered.include_router(audit.router)
metered.include_router(collections.router)
metered.include_router(queries.router)
metered.include_router(documents.router)
metered.include_router(documents.bulk_router)
metered.include_router(aggregate.router)
metered.include_router(transfer.router)
api_router.include_router(metered)
