"""Liveness and readiness probes."""

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.database import ping
from api.problems import Problem
from api.routes.common import COMMON, V1

router = APIRouter(prefix=f"{V1}/health", tags=["health"], responses=COMMON)


class Health(BaseModel):
    status: str


@router.get("")
async def live() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/ready", responses={503: {"description": "The database does not answer"}})
async def ready(request: Request) -> Health:
    """The database answers."""
    if not await ping(request.app.state.mongo):
        raise Problem(503, "The database is not reachable")
    return Health(status="ready")
