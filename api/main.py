"""The FastAPI app: routes, error handling, middleware, and the lifespan that owns the client."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from api import passwords
from api.database import connect, server_traits
from api.middleware import BodyPolicyMiddleware, RequestContextMiddleware
from api.openapi_links import install_links
from api.problems import install_problem_handlers
from api.routes import api_router, metrics
from api.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.mongodb_url is None:
            raise RuntimeError(
                "CABINET_MONGODB_URL is not set; start the service with python -m api"
            )
        app.state.mongo = await connect(settings.mongodb_url, settings.database)
        app.state.traits = await server_traits(app.state.mongo)
        await passwords.prepare()
        try:
            yield
        finally:
            await app.state.mongo.close()

    app = FastAPI(
        title="Cabinet",
        summary="A document-store API on MongoDB",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(api_router, prefix="/v1")
    app.include_router(metrics.router)
    install_links(app)
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
    app.add_middleware(RequestContextMiddleware)
    return app
