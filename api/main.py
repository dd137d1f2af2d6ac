"""The FastAPI app: routes, error handling, middleware, and the lifespan that owns the client."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.cors import CORSMiddleware

from api import passwords
from api.access_log import AccessLog
from api.collector import tuned_for_serving
from api.database import connect, server_traits
from api.metrics import watch_loop_lag
from api.middleware import BodyPolicyMiddleware, RequestContextMiddleware
from api.openapi_document import amend_openapi, declare_path_parameters, order_path_parameters
from api.openapi_links import add_links
from api.openapi_security import add_security
from api.problems import install_problem_handlers
from api.routes import TAGS, include_routes, metrics
from api.settings import Settings, get_settings
from api.watched_cache import WatchedCache
from documents.collections import CollectionDef
from documents.sessions import Session

# FastAPI's telemetry left out (the `opentelemetry` setting).
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
# A cached copy is dropped by its change event; this only bounds a copy whose event never came.
HOT_DOCUMENT_MAX_AGE = 10.0


def watch_hot_documents(app: FastAPI) -> list[asyncio.Task]:
    """Caches for what every request reads (definitions, sessions), each kept by its stream."""
    tasks = []
    for name, model, size in (
        ("definitions", CollectionDef, 1_000),
        ("sessions", Session, 10_000),
    ):
        collection = model.get_pymongo_collection()
        cache = WatchedCache(collection.name, max_entries=size, max_age=HOT_DOCUMENT_MAX_AGE)
        setattr(app.state, name, cache)
        tasks.append(asyncio.create_task(cache.watch(collection), name=f"watch-{name}"))
    return tasks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    access_log = AccessLog(logging.getLogger("cabinet"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.mongodb_url is None:
            raise RuntimeError(
                "CABINET_MONGODB_URL is not set; start the service with python -m api"
            )
        app.state.mongo = await connect(settings.mongodb_url, settings.database)
        app.state.traits = await server_traits(app.state.mongo)
        await passwords.prepare()
        watchers = [
            *watch_hot_documents(app),
            asyncio.create_task(watch_loop_lag()),
            asyncio.create_task(access_log.keep_flushing(), name="access-log"),
        ]
        try:
            with tuned_for_serving():
                yield
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await app.state.mongo.close()

    app = FastAPI(
        title="Cabinet",
        summary="A document-store API on MongoDB",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
        openapi_tags=TAGS,
        openapi_url="/v1/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.settings = settings
    app.state.access_log = access_log
    install_problem_handlers(app)
    include_routes(app)
    app.include_router(metrics.router)
    amend_openapi(
        app,
        lambda document: add_security(document, app.routes),
        add_links,
        declare_path_parameters,
        order_path_parameters,
    )
    app.add_middleware(BodyPolicyMiddleware, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # outside the body policy, so its 413/415 reach browsers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "X-API-Key",
                "X-Request-ID",
            ],
            expose_headers=["ETag", "Location", "X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware, access_log=access_log)
    return app
