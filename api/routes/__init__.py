"""Every route of the API, mounted at /v1."""

from fastapi import FastAPI

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
COMMON = problem_responses(400, 401, 403, 404, 422, 429, 500)
# Sign-in routes have their own, stricter limits; everything else shares the caller's budget,
# counted when it first asks who is calling (api.deps.caller). Every route with a body may also
# meet the body policy (413, 415).
SIGN_IN = {**COMMON, **problem_responses(413, 415)}
METERED = {**COMMON, **problem_responses(409, 412, 413, 415, 504)}


# The order the docs page lists them in (routes are matched in another order, below).
TAGS = [
    {"name": name}
    for name in (
        "health",
        "auth",
        "users",
        "api keys",
        "audit",
        "collections",
        "documents",
        "aggregation",
        "import and export",
    )
]


def include_routes(app: FastAPI) -> None:
    """Each router straight on the app, the busiest first: a request's path is tried against
    every route before its own (no two routes share a path and a method, so the order changes
    no match), and every level of nesting is walked again."""
    for router in (
        documents.router,  # a 405 names every route's methods at the path, whatever the order
        queries.router,
        documents.bulk_router,
        aggregate.router,
        transfer.router,
        collections.router,
        users.router,
        api_keys.router,
        audit.router,
    ):
        app.include_router(router, prefix="/v1", responses=METERED)
    app.include_router(auth.router, prefix="/v1", responses=SIGN_IN)
    app.include_router(health.router, prefix="/v1", responses=COMMON)
