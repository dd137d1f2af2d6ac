"""OWASP API Security Top 10 (2023), continued: API6 sensitive business flows, API8 security
misconfiguration and API9 inventory (API1 to API5 are in test_attacks_owasp.py)."""

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from api.main import create_app
from api.settings import Settings
from tests.factories import admin, another_app, register

# API6: unrestricted access to sensitive business flows


async def test_api6_closed_sign_up_is_a_403(app: FastAPI, settings: Settings) -> None:
    closed = create_app(settings.model_copy(update={"signup": "closed"}))
    async with another_app(closed, app) as http:
        response = await http.post(
            "/v1/auth/register", json={"email": "new@example.com", "password": "long enough pass"}
        )
    assert response.status_code == 403
    assert response.json()["detail"] == "Sign-up is closed"


async def test_api6_password_guessing_is_throttled(client: AsyncClient) -> None:
    user = await register(client)
    statuses = [
        (
            await client.post(
                "/v1/auth/login", json={"email": user.email, "password": f"guess {n:04}"}
            )
        ).status_code
        for n in range(11)
    ]
    assert statuses == [401] * 10 + [429]


# API8: security misconfiguration


async def test_api8_security_headers_on_api_responses(client: AsyncClient) -> None:
    response = await client.get("/v1/health")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_api8_docs_page_keeps_its_scripts(client: AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response.headers


async def test_api8_token_responses_are_not_cached(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "cache@example.com", "password": "long enough pass"}
    )
    assert response.headers["Cache-Control"] == "no-store"


async def test_api8_cors_answers_only_listed_origins(app: FastAPI, settings: Settings) -> None:
    listed = create_app(settings.model_copy(update={"cors_origins": ["https://app.example"]}))
    preflight = {"Access-Control-Request-Method": "GET"}
    async with another_app(listed, app) as http:
        good = await http.options(
            "/v1/health", headers={**preflight, "Origin": "https://app.example"}
        )
        evil = await http.options(
            "/v1/health", headers={**preflight, "Origin": "https://evil.example"}
        )
    assert good.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Origin" not in evil.headers


async def test_api8_no_cors_headers_without_configured_origins(client: AsyncClient) -> None:
    response = await client.get("/v1/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    "weak",
    [{"secret_key": None}, {"secret_key": "short"}, {"cors_origins": ["*"]}],
)
def test_api8_production_refuses_weak_settings(weak: dict) -> None:
    strong = {"env": "production", "secret_key": "s" * 48, "cors_origins": []}
    with pytest.raises(ValueError, match="production"):
        Settings(_env_file=None, **{**strong, **weak})


async def test_api8_errors_carry_no_stack_trace_or_database_message(
    client: AsyncClient,
) -> None:
    response = await client.get(
        "/v1/users", params={"cursor": "{"}, headers=(await admin(client)).headers
    )
    assert response.status_code == 400
    assert set(response.json()) == {"type", "title", "status", "detail"}
    assert "Traceback" not in response.text


# API9: improper inventory management


async def test_api9_openapi_lists_every_route(app: FastAPI, client: AsyncClient) -> None:
    documented = {
        (method.upper(), path)
        for path, methods in (await client.get("/v1/openapi.json")).json()["paths"].items()
        for method in methods
    }
    # Included routers are resolved lazily; their effective routes carry the full paths.
    contexts: list[Any] = [
        context
        for route in app.routes
        for context in (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
    ]
    served = {
        (method, context.path)
        for context in contexts
        if context.path.startswith("/v1/") and context.path != "/v1/openapi.json"
        for method in (context.methods or set()) - {"HEAD"}
    }
    assert len(served) > 30
    assert served == documented


async def test_api9_every_documented_operation_lists_its_error_responses(
    client: AsyncClient,
) -> None:
    spec = (await client.get("/v1/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            assert {"400", "401", "422", "429", "500"} <= codes, (method, path)
            problem = operation["responses"]["422"]["content"]
            assert "application/problem+json" in problem, (method, path)


async def test_every_operation_documents_its_path_parameters_in_path_order(
    client: AsyncClient,
) -> None:
    spec = (await client.get("/v1/openapi.json")).json()
    checked = 0
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            declared = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            assert [p["name"] for p in declared] == re.findall(r"{(\w+)}", path), (method, path)
            # Declared by FastAPI, or by Cabinet where a guard reads it from the request.
            assert all(p["required"] and p["schema"]["type"] == "string" for p in declared)
            named = declared
            checked += len(named) > 1
    assert checked >= 5  # the document routes: read, replace, patch, delete, ops


async def test_api9_undocumented_paths_are_a_404(client: AsyncClient) -> None:
    for path in ("/v0/users", "/v1/admin", "/v1/debug", "/v1/.env", "/v1/users/me/../../admin"):
        response = await client.get(path)
        assert response.status_code == 404, path
    assert json.loads(response.text)["status"] == 404


async def test_openapi_names_the_sign_in_schemes_wherever_the_caller_counts(
    client: AsyncClient,
) -> None:
    document = (await client.get("/v1/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/v1/auth/token"
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    secured = {
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]
    }
    documented = {(m, p) for p, operations in document["paths"].items() for m in operations}
    public = {
        ("get", "/v1/health"),
        ("get", "/v1/health/ready"),
        *(("post", f"/v1/auth/{name}") for name in ("register", "login", "token", "refresh")),
        ("post", "/v1/auth/logout"),
    }
    assert public < documented
    assert secured == documented - public
