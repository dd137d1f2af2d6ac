"""API keys: issued by admins, shown once, stored hashed, acting with their roles until revoked."""

import hashlib
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from api.main import create_app
from api.settings import Settings
from tests.factories import Account, admin, another_app, create_collection, register

NOTES = {"type": "object", "properties": {"text": {"type": "string"}}}


async def _issue(client: AsyncClient, boss: Account, **body: object) -> dict:
    response = await client.post(
        "/v1/api-keys", json={"name": "loader", **body}, headers=boss.headers
    )
    assert response.status_code == 201, response.text
    issued: dict = response.json()
    return issued


async def test_key_is_shown_once_and_stored_only_as_a_hash(
    client: AsyncClient, app: FastAPI
) -> None:
    boss = await admin(client)
    issued = await _issue(client, boss, roles=["importer"])
    assert set(issued) == {"id", "name", "roles", "key", "created", "expires_at"}
    assert issued["roles"] == ["importer"] and issued["expires_at"] is None
    listed = (await client.get("/v1/api-keys", headers=boss.headers)).json()
    assert [item["id"] for item in listed["items"]] == [issued["id"]]
    assert "key" not in listed["items"][0]
    database = app.state.mongo[app.state.settings.database]
    stored = await database["api_keys"].find_one({})
    assert issued["key"] not in str(stored)
    assert stored["key_hash"] == hashlib.sha256(issued["key"].encode()).hexdigest()


async def test_only_admins_manage_keys(client: AsyncClient) -> None:
    user = await register(client)
    forbidden = await client.post("/v1/api-keys", json={"name": "x"}, headers=user.headers)
    anonymous = await client.get("/v1/api-keys")
    assert (forbidden.status_code, anonymous.status_code) == (403, 401)


async def test_key_writes_record_the_key_as_owner(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "notes", NOTES)
    issued = await _issue(client, boss)
    created = await client.post(
        "/v1/collections/notes/documents",
        json={"text": "from a job"},
        headers={"X-API-Key": issued["key"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["_owner"] == issued["id"]


async def test_key_carries_its_roles(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "notes", NOTES, rules={"list": ["role:auditor"]})
    auditor = await _issue(client, boss, roles=["auditor"])
    plain = await _issue(client, boss, roles=[])
    allowed = await client.get(
        "/v1/collections/notes/documents", headers={"X-API-Key": auditor["key"]}
    )
    refused = await client.get(
        "/v1/collections/notes/documents", headers={"X-API-Key": plain["key"]}
    )
    assert (allowed.status_code, refused.status_code) == (200, 403)


async def test_admin_key_may_administer(client: AsyncClient) -> None:
    boss = await admin(client)
    issued = await _issue(client, boss, roles=["admin"])
    response = await client.get("/v1/collections", headers={"X-API-Key": issued["key"]})
    assert response.status_code == 200


async def test_revoked_key_is_refused_at_once(client: AsyncClient) -> None:
    boss = await admin(client)
    issued = await _issue(client, boss, roles=["admin"])
    headers = {"X-API-Key": issued["key"]}
    assert (await client.get("/v1/collections", headers=headers)).status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{issued['id']}", headers=boss.headers)
    assert revoked.status_code == 204
    after = await client.get("/v1/collections", headers=headers)
    assert after.status_code == 401
    assert after.headers["content-type"].startswith("application/problem+json")
    assert "WWW-Authenticate" in after.headers


async def test_expired_key_is_refused(client: AsyncClient, app: FastAPI) -> None:
    boss = await admin(client)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    issued = await _issue(client, boss, roles=["admin"], expires_at=soon)
    database = app.state.mongo[app.state.settings.database]
    # Moving the expiry into the past stands in for waiting an hour.
    await database["api_keys"].replace_one(
        {"name": "loader"},
        {
            **(await database["api_keys"].find_one({"name": "loader"})),
            "expires_at": datetime.now(UTC) - timedelta(seconds=1),
        },
    )
    response = await client.get("/v1/collections", headers={"X-API-Key": issued["key"]})
    assert response.status_code == 401


async def test_expiry_in_the_past_is_refused_at_creation(client: AsyncClient) -> None:
    boss = await admin(client)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await client.post(
        "/v1/api-keys", json={"name": "old", "expires_at": past}, headers=boss.headers
    )
    assert response.status_code == 422


async def test_unknown_key_is_refused(client: AsyncClient) -> None:
    response = await client.get("/v1/collections", headers={"X-API-Key": "cab_not-a-key"})
    assert response.status_code == 401


async def test_key_cannot_use_account_routes(client: AsyncClient) -> None:
    boss = await admin(client)
    issued = await _issue(client, boss, roles=["admin"])
    response = await client.get("/v1/auth/me", headers={"X-API-Key": issued["key"]})
    assert response.status_code == 403


async def test_revoking_an_unknown_key_is_not_found(client: AsyncClient) -> None:
    boss = await admin(client)
    missing = await client.delete("/v1/api-keys/" + "0" * 24, headers=boss.headers)
    malformed = await client.delete("/v1/api-keys/nope", headers=boss.headers)
    assert (missing.status_code, malformed.status_code) == (404, 404)


async def test_guessing_keys_from_one_address_is_throttled(
    app: FastAPI, settings: Settings
) -> None:
    application = create_app(settings.model_copy(update={"login_rate": "3/hour"}))
    async with another_app(application, restore=app) as http:
        statuses = [
            (await http.get("/v1/collections", headers={"X-API-Key": f"cab_guess{n}"})).status_code
            for n in range(5)
        ]
    assert statuses == [401, 401, 401, 429, 429]
