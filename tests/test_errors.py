"""Errors are RFC 9457 problems; every response carries a request id and the security headers."""

import logging

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from api.main import create_app
from api.settings import Settings
from tests.factories import another_app, register, unique_email

PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail"}
SECRET_INTERNALS = "mongodb://root:hunter2@db.internal"


def assert_problem(response: Response, status: int, title: str) -> dict:
    """Asserts an RFC 9457 problem; `title` is the status phrase (422's differs between Pythons)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict = response.json()
    assert set(body) - {"errors"} == PROBLEM_KEYS
    assert body["status"] == status
    assert body["title"] == title or (status == 422 and body["title"] == "Unprocessable Entity")
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_unknown_route_is_a_404_problem(client: AsyncClient) -> None:
    assert_problem(await client.get("/v1/no-such-thing"), 404, "Not Found")
    assert_problem(await client.get("/elsewhere"), 404, "Not Found")


async def test_wrong_method_is_a_405_problem(client: AsyncClient) -> None:
    response = await client.delete("/v1/health")
    assert_problem(response, 405, "Method Not Allowed")
    assert "GET" in response.headers["Allow"]


async def test_405_allows_every_method_served_at_the_path(client: AsyncClient) -> None:
    # The list (GET) and the create (POST) are two routes on one path.
    response = await client.delete("/v1/collections/anything/documents")
    assert_problem(response, 405, "Method Not Allowed")
    assert response.headers["Allow"] == "GET, POST"
    response = await client.post("/v1/collections/anything/documents/some-id")
    assert response.headers["Allow"] == "DELETE, GET, PATCH, PUT"


async def test_405_allows_the_same_behind_a_root_path(app: FastAPI) -> None:
    transport = ASGITransport(app=app, root_path="/api")
    async with AsyncClient(transport=transport, base_url="http://cabinet.test") as behind:
        response = await behind.delete("/api/v1/collections/anything/documents")
    assert_problem(response, 405, "Method Not Allowed")
    assert response.headers["Allow"] == "GET, POST"


async def test_malformed_json_is_a_400_problem(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/login",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(response, 400, "Bad Request")
    assert "errors" not in body


async def test_validation_failure_lists_where_and_what(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": "short", "roles": []}
    )
    body = assert_problem(response, 422, "Unprocessable Content")
    locations = [error["loc"] for error in body["errors"]]
    assert all(set(error) == {"loc", "msg"} for error in body["errors"])
    assert all(isinstance(error["msg"], str) and error["msg"] for error in body["errors"])
    assert sorted(locations) == [["body", "email"], ["body", "password"], ["body", "roles"]]


@pytest.mark.parametrize("password", ["Zq9#xY7", "S3cr3t!" * 40])
async def test_validation_failure_does_not_echo_the_password(
    client: AsyncClient, password: str
) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": unique_email(), "password": password}
    )
    assert_problem(response, 422, "Unprocessable Content")
    assert password not in response.text
    assert password[:7] not in response.text


async def test_missing_body_is_a_422_problem(client: AsyncClient) -> None:
    response = await client.post("/v1/auth/login")
    body = assert_problem(response, 422, "Unprocessable Content")
    assert body["errors"]


async def test_unexpected_error_is_a_logged_500_problem(
    app: FastAPI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broken = create_app(settings)

    @broken.get("/v1/explode")
    async def explode() -> None:
        raise RuntimeError(f"cannot reach {SECRET_INTERNALS}")

    caplog.set_level(logging.INFO)
    async with another_app(broken, restore=app) as http:
        response = await http.get("/v1/explode", headers={"X-Request-ID": "trace-500"})
    body = assert_problem(response, 500, "Internal Server Error")
    assert "errors" not in body
    for leak in ("Traceback", "RuntimeError", SECRET_INTERNALS, "explode", 'File "'):
        assert leak not in response.text
    assert response.headers["X-Request-ID"] == "trace-500"
    logged = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR and getattr(record, "request_id", None) == "trace-500"
    ]
    assert logged, [record.getMessage() for record in caplog.records]
    assert logged[0].exc_info is not None


async def test_every_response_carries_a_request_id(client: AsyncClient) -> None:
    account = await register(client)
    responses = [
        await client.get("/v1/health"),
        await client.get("/v1/auth/me", headers=account.headers),
        await client.get("/v1/auth/me"),
        await client.get("/v1/missing"),
        await client.post("/v1/auth/login", json={}),
    ]
    ids = [response.headers.get("X-Request-ID") for response in responses]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)


async def test_client_request_id_is_echoed(client: AsyncClient) -> None:
    for request_id in ("abc-123", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"):
        response = await client.get("/v1/health", headers={"X-Request-ID": request_id})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == request_id
    missing = await client.get("/v1/missing", headers={"X-Request-ID": "trace-404"})
    assert missing.headers["X-Request-ID"] == "trace-404"


@pytest.mark.parametrize("request_id", ["bad id\n", "bad id", "x" * 500, "<script>"])
async def test_invalid_client_request_id_is_replaced(client: AsyncClient, request_id: str) -> None:
    response = await client.get("/v1/health", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    replaced = response.headers["X-Request-ID"]
    assert replaced and replaced != request_id
    assert replaced.isascii() and replaced.isprintable() and " " not in replaced


async def test_security_headers_are_set(client: AsyncClient) -> None:
    for response in (await client.get("/v1/health"), await client.get("/v1/missing")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_request_the_database_refuses_is_a_400_without_its_message(
    app: FastAPI, settings: Settings
) -> None:
    from pymongo.errors import DuplicateKeyError, OperationFailure

    application = create_app(settings)

    @application.get("/v1/refused")
    async def refused() -> None:
        raise OperationFailure("$project mixes inclusion and exclusion (secret detail)", 31254)

    @application.get("/v1/duplicate")
    async def duplicate() -> None:
        raise DuplicateKeyError("E11000 duplicate key (secret detail)", 11000)

    async with another_app(application, restore=app) as http:
        refused_response = await http.get("/v1/refused")
        duplicate_response = await http.get("/v1/duplicate")
    assert refused_response.status_code == 400
    assert duplicate_response.status_code == 409
    for response in (refused_response, duplicate_response):
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "secret detail" not in response.text
