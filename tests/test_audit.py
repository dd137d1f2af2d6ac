"""The audit log: each security-relevant event leaves an entry (who, what, when, from where),
readable by admins only, a page at a time, filterable by action, and free of secrets."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient

from tests.factories import PASSWORD, Account, admin, create_collection, patch_user, register

ADDRESS = "127.0.0.1"  # httpx's in-process transport reports this client address
NOTES = {"type": "object", "properties": {"text": {"type": "string"}}}


async def entries(client: AsyncClient, boss: Account, action: str) -> list[dict]:
    response = await client.get("/v1/audit", params={"action": action}, headers=boss.headers)
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    assert all(item["action"] == action for item in items)
    return items


async def only_entry(client: AsyncClient, boss: Account, action: str) -> dict:
    found = await entries(client, boss, action)
    assert len(found) == 1, found
    entry = found[0]
    assert entry["address"] == ADDRESS
    at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - at < timedelta(minutes=1)
    return entry


async def test_successful_login_is_audited(client: AsyncClient) -> None:
    boss = await admin(client)  # signs in once
    entry = await only_entry(client, boss, "login.ok")
    assert entry["actor"] == boss.id


async def test_failed_login_is_audited(client: AsyncClient) -> None:
    user = await register(client)
    await client.post("/v1/auth/login", json={"email": user.email, "password": "wrong password"})
    boss = await admin(client)
    entry = await only_entry(client, boss, "login.failed")
    assert entry["actor"] == user.id
    assert entry["detail"] == {"email": user.email}


async def test_failed_login_of_an_unknown_email_is_audited_without_an_actor(
    client: AsyncClient,
) -> None:
    await client.post("/v1/auth/login", json={"email": "ghost@example.com", "password": "x" * 8})
    entry = await only_entry(client, await admin(client), "login.failed")
    assert entry["actor"] is None


async def test_refresh_token_reuse_is_audited(client: AsyncClient) -> None:
    user = await register(client)
    first = await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert replay.status_code == 401
    entry = await only_entry(client, await admin(client), "refresh.reuse")
    assert entry["actor"] == user.id


async def test_password_change_is_audited(client: AsyncClient) -> None:
    user = await register(client)
    changed = await client.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
        headers=user.headers,
    )
    assert changed.status_code == 204
    entry = await only_entry(client, await admin(client), "password.change")
    assert entry["actor"] == entry["target"] == user.id


async def test_role_and_disable_changes_are_audited(client: AsyncClient) -> None:
    boss, user = await admin(client), await register(client)
    await patch_user(client, boss, user.id, roles=["editor"])
    await patch_user(client, boss, user.id, disabled=True)
    found = await entries(client, boss, "user.update")
    assert [entry["detail"] for entry in found] == [{"disabled": True}, {"roles": ["editor"]}]
    assert {(entry["actor"], entry["target"]) for entry in found} == {(boss.id, user.id)}


async def test_user_deletion_is_audited(client: AsyncClient) -> None:
    boss, user = await admin(client), await register(client)
    deleted = await client.delete(f"/v1/users/{user.id}", headers=boss.headers)
    assert deleted.status_code == 204
    entry = await only_entry(client, boss, "user.delete")
    assert (entry["actor"], entry["target"]) == (boss.id, user.id)


async def test_api_key_creation_and_revocation_are_audited(client: AsyncClient) -> None:
    boss = await admin(client)
    created = await client.post(
        "/v1/api-keys", json={"name": "importer", "roles": ["loader"]}, headers=boss.headers
    )
    key_id = created.json()["id"]
    revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=boss.headers)
    assert revoked.status_code == 204
    issued = await only_entry(client, boss, "apikey.create")
    assert (issued["actor"], issued["target"]) == (boss.id, key_id)
    assert issued["detail"] == {"name": "importer", "roles": ["loader"]}
    gone = await only_entry(client, boss, "apikey.revoke")
    assert (gone["actor"], gone["target"]) == (boss.id, key_id)


async def test_collection_definition_changes_are_audited(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "notes", NOTES)
    changed = await client.patch(
        "/v1/collections/notes", json={"rules": {"list": ["public"]}}, headers=boss.headers
    )
    assert changed.status_code == 200
    dropped = await client.delete("/v1/collections/notes", headers=boss.headers)
    assert dropped.status_code == 204
    for action in ("collection.create", "collection.update", "collection.delete"):
        entry = await only_entry(client, boss, action)
        assert (entry["actor"], entry["target"]) == (boss.id, "notes")
    update = await only_entry(client, boss, "collection.update")
    assert update["detail"] == {"changed": ["rules"], "version": 2}


async def test_audit_entries_hold_no_password_or_token(client: AsyncClient) -> None:
    user = await register(client)
    await client.post("/v1/auth/login", json={"email": user.email, "password": "wrong password"})
    await client.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
        headers=user.headers,
    )
    await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    boss = await admin(client)
    key = await client.post("/v1/api-keys", json={"name": "job"}, headers=boss.headers)
    log = await client.get("/v1/audit", params={"limit": 1000}, headers=boss.headers)
    text = json.dumps(log.json())
    actions = {item["action"] for item in log.json()["items"]}
    assert actions == {
        "login.failed",
        "password.change",
        "refresh.reuse",
        "login.ok",
        "apikey.create",
    }
    for secret in (
        PASSWORD,
        "wrong password",
        "another long password",
        user.refresh_token,
        user.access_token,
        boss.access_token,
        key.json()["key"],
    ):
        assert secret not in text


async def test_audit_log_is_paginated_newest_first(client: AsyncClient) -> None:
    boss = await admin(client)
    for n in range(5):
        await client.post(
            "/v1/auth/login", json={"email": f"x{n}@example.com", "password": "x" * 8}
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict = {"limit": 2, "action": "login.failed"}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/v1/audit", params=params, headers=boss.headers)
        assert page.status_code == 200, page.text
        seen += [item["detail"]["email"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"x{n}@example.com" for n in reversed(range(5))]


async def test_audit_cursor_of_another_filter_is_a_400(client: AsyncClient) -> None:
    boss = await admin(client)
    for n in range(3):
        await client.post(
            "/v1/auth/login", json={"email": f"y{n}@example.com", "password": "x" * 8}
        )
    page = await client.get(
        "/v1/audit", params={"limit": 1, "action": "login.failed"}, headers=boss.headers
    )
    cursor = page.json()["next_cursor"]
    other = await client.get(
        "/v1/audit", params={"cursor": cursor, "action": "login.ok"}, headers=boss.headers
    )
    assert other.status_code == 400
    assert other.json()["detail"] == "Invalid cursor"


async def test_audit_log_is_forbidden_to_non_admins(client: AsyncClient) -> None:
    user = await register(client)
    response = await client.get("/v1/audit", headers=user.headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "Administrator role required"


async def test_audit_log_needs_credentials(client: AsyncClient) -> None:
    response = await client.get("/v1/audit")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("action", ["LOGIN", "login ok", "$where", "x" * 65])
async def test_malformed_action_filter_is_a_422(client: AsyncClient, action: str) -> None:
    boss = await admin(client)
    response = await client.get("/v1/audit", params={"action": action}, headers=boss.headers)
    assert response.status_code == 422
