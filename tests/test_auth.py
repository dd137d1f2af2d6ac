"""Sign-up and the signed-in user's own account: `/v1/auth/register` and `/v1/auth/me`."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from api.main import create_app
from api.settings import Settings
from documents import Session, User
from tests.factories import PASSWORD, another_app, register, unique_email

PROBLEM = "application/problem+json"
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def assert_problem(response_json: dict, status: int) -> None:
    assert set(response_json) >= {"type", "title", "status", "detail"}
    assert response_json["status"] == status
    assert isinstance(response_json["detail"], str) and response_json["detail"]


async def test_register_returns_the_user_and_a_token_pair(
    client: AsyncClient, settings: Settings
) -> None:
    response = await client.post(
        "/v1/auth/register",
        json={"email": "alice@example.com", "password": PASSWORD, "name": "Alice"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl
    assert body["access_token"] and body["refresh_token"]
    user = body["user"]
    assert set(user) == {"id", "email", "name", "roles", "disabled", "created"}
    assert OBJECT_ID.match(user["id"])
    assert (user["email"], user["name"], user["roles"], user["disabled"]) == (
        "alice@example.com",
        "Alice",
        [],
        False,
    )
    assert user["created"].endswith("Z")
    created = datetime.fromisoformat(user["created"])
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)
    me = await client.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json() == user


async def test_register_response_is_not_cached(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"


async def test_register_lower_cases_the_email(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "Bob.Smith@Example.COM", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert response.json()["user"]["email"] == "bob.smith@example.com"
    login = await client.post(
        "/v1/auth/login", json={"email": "bob.smith@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200


@pytest.mark.parametrize("second", ["carol@example.com", "CAROL@Example.com"])
async def test_register_with_a_taken_email_is_a_conflict(client: AsyncClient, second: str) -> None:
    await register(client, "carol@example.com")
    response = await client.post(
        "/v1/auth/register", json={"email": second, "password": "another password"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert_problem(response.json(), 409)
    assert await User.find(User.email == "carol@example.com").count() == 1


@pytest.mark.parametrize("length", [7, 257])
async def test_register_refuses_a_password_of_the_wrong_length(
    client: AsyncClient, length: int
) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": unique_email(), "password": "p" * length}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert_problem(body, 422)
    assert body["errors"] and all(set(error) == {"loc", "msg"} for error in body["errors"])
    assert ["body", "password"] in [error["loc"] for error in body["errors"]]
    assert await User.count() == 0


@pytest.mark.parametrize("length", [8, 256])
async def test_register_accepts_a_password_at_the_length_limits(
    client: AsyncClient, length: int
) -> None:
    email = unique_email()
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": "p" * length}
    )
    assert response.status_code == 201, response.text
    login = await client.post("/v1/auth/login", json={"email": email, "password": "p" * length})
    assert login.status_code == 200


async def test_register_refuses_an_invalid_email(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": PASSWORD}
    )
    assert response.status_code == 422
    assert ["body", "email"] in [error["loc"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    "extra", [{"roles": ["admin"]}, {"disabled": False}, {"password_hash": "x"}], ids=str
)
async def test_register_refuses_privileged_fields(client: AsyncClient, extra: dict) -> None:
    email = unique_email()
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, **extra}
    )
    assert response.status_code == 422
    assert_problem(response.json(), 422)
    assert await User.find(User.email == email).count() == 0


async def test_passwords_are_stored_as_argon2id_hashes(client: AsyncClient) -> None:
    account = await register(client)
    stored = await User.get_pymongo_collection().find_one({"email": account.email})
    assert stored is not None
    assert PASSWORD not in str(stored)
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", stored["password_hash"])
    assert match, stored["password_hash"]
    memory, passes, lanes = map(int, match.groups())
    assert memory >= 19 * 1024 and passes >= 2 and lanes >= 1


async def test_refresh_tokens_are_stored_only_as_hashes(client: AsyncClient) -> None:
    account = await register(client)
    stored = await Session.get_pymongo_collection().find({}).to_list()
    assert len(stored) == 1
    assert account.refresh_token not in str(stored)


async def test_signup_closed_refuses_registration(app: FastAPI, settings: Settings) -> None:
    closed = create_app(settings.model_copy(update={"signup": "closed"}))
    async with another_app(closed, restore=app) as http:
        response = await http.post(
            "/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert_problem(response.json(), 403)
    assert await User.count() == 0


async def test_signup_closed_still_lets_members_sign_in(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    closed = create_app(settings.model_copy(update={"signup": "closed"}))
    async with another_app(closed, restore=app) as http:
        response = await http.post(
            "/v1/auth/login", json={"email": account.email, "password": PASSWORD}
        )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


async def test_me_requires_authentication(client: AsyncClient) -> None:
    response = await client.get("/v1/auth/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(response.json(), 401)


async def test_me_changes_the_name(client: AsyncClient) -> None:
    account = await register(client)
    response = await client.patch("/v1/auth/me", json={"name": "  Dana  "}, headers=account.headers)
    assert response.status_code == 200
    assert response.json()["name"] == "Dana"
    again = await client.get("/v1/auth/me", headers=account.headers)
    assert again.json()["name"] == "Dana"
    assert again.json()["email"] == account.email


@pytest.mark.parametrize(
    "change",
    [
        {"roles": ["admin"]},
        {"disabled": True},
        {"email": "new@example.com"},
        {"name": "x", "roles": []},
    ],
    ids=str,
)
async def test_me_cannot_change_privileged_fields(client: AsyncClient, change: dict) -> None:
    account = await register(client)
    response = await client.patch("/v1/auth/me", json=change, headers=account.headers)
    assert response.status_code == 422
    assert_problem(response.json(), 422)
    me = await client.get("/v1/auth/me", headers=account.headers)
    assert me.status_code == 200
    assert (me.json()["roles"], me.json()["disabled"], me.json()["email"]) == (
        [],
        False,
        account.email,
    )
    assert me.json()["name"] is None
