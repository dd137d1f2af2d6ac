"""Liveness and readiness probes."""

from fastapi import FastAPI
from httpx import AsyncClient
from pymongo import AsyncMongoClient

from api.embedded import free_port
from api.main import create_app
from api.settings import Settings
from tests.factories import another_app


async def test_live_answers_ok(client: AsyncClient) -> None:
    response = await client.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_answers_when_the_database_does(client: AsyncClient) -> None:
    response = await client.get("/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_ready_is_a_503_problem_when_the_database_does_not_answer(
    app: FastAPI, settings: Settings
) -> None:
    application = create_app(settings)
    async with another_app(application, restore=app) as http:
        reachable = application.state.mongo
        unreachable: AsyncMongoClient = AsyncMongoClient(
            f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
            serverSelectionTimeoutMS=200,
        )
        application.state.mongo = unreachable
        try:
            response = await http.get("/v1/health/ready")
            live = await http.get("/v1/health")
        finally:
            application.state.mongo = reachable
            await unreachable.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert (body["status"], body["title"]) == (503, "Service Unavailable")
    assert "127.0.0.1" not in body["detail"] and "Timeout" not in body["detail"]
    # Liveness does not depend on the database.
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
