"""Every route of the API, mounted at /v1."""

from fastapi import FastAPI

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
    """Every route straight on the app's own router, the busiest first.

    The routers are built with the whole path and their problem responses (api/routes/common.py),
    so their routes are complete as they stand. Included with `include_router`, a router stays
    one route of the app that matches a request against each of its routes twice, once to pick
    the router and once to pick the route (2-4 % of the ops route's CPU, measured with
    `python -m bench.hot_path inc`). On the app's router a path is tried once against each route
    before its own (no two routes share a path and a method, so the order changes no match).
    `app.dependency_overrides` does not reach these routes; nothing here uses it.
    """
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
        auth.router,
        health.router,
    ):
        app.router.routes.extend(router.routes)
