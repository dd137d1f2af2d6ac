"""User administration: `/v1/users` and `/v1/users/{id}`, for admins only."""

import pytest
from bson import ObjectId
from httpx import AsyncClient

from documents import User
from tests.factories import PASSWORD, Account, admin, patch_user, register

PROBLEM = "application/problem+json"
PUBLIC_KEYS = {"id", "email", "name", "roles", "disabled", "created"}


async def test_admin_walks_every_user_exactly_once_in_pages(client: AsyncClient) -> None:
    boss = await admin(client)
    others = [await register(client) for _ in range(4)]
    expected = [boss.id, *(account.id for account in others)]
    seen: list[str] = []
    pages: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/users", params=params, headers=boss.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) - {"total"} == {"items", "next_cursor"}
        assert all(set(item) == PUBLIC_KEYS for item in body["items"])
        seen += [item["id"] for item in body["items"]]
        pages.append(len(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"
    assert pages == [2, 2, 1]
    assert seen == expected  # oldest first, each once


async def test_user_list_default_page_holds_everyone(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    response = await client.get("/v1/users", headers=boss.headers)
    assert response.status_code == 200
    body = response.json()
    assert [item["email"] for item in body["items"]] == [boss.email, account.email]
    assert body["next_cursor"] is None
    assert "password_hash" not in response.text


async def test_tampered_cursor_is_a_bad_request(client: AsyncClient) -> None:
    boss = await admin(client)
    for _ in range(2):
        await register(client)
    first = await client.get("/v1/users", params={"limit": 1}, headers=boss.headers)
    cursor = first.json()["next_cursor"]
    assert cursor
    payload, signature = cursor.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (f"{payload}.{flipped}", f"{payload[:-2]}xy.{signature}", "garbage", "a.b.c"):
        response = await client.get(
            "/v1/users", params={"limit": 1, "cursor": bad}, headers=boss.headers
        )
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 400


@pytest.mark.parametrize("limit", [0, 1001, -1])
async def test_user_list_limit_out_of_range_is_invalid(client: AsyncClient, limit: int) -> None:
    boss = await admin(client)
    response = await client.get("/v1/users", params={"limit": limit}, headers=boss.headers)
    assert response.status_code == 422
    assert ["query", "limit"] in [error["loc"] for error in response.json()["errors"]]


async def test_non_admin_cannot_use_user_administration(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    calls = [
        client.get("/v1/users", headers=account.headers),
        client.get(f"/v1/users/{boss.id}", headers=account.headers),
        client.patch(f"/v1/users/{account.id}", json={"roles": ["admin"]}, headers=account.headers),
        client.delete(f"/v1/users/{boss.id}", headers=account.headers),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 403
    stored = await User.get(ObjectId(account.id))
    assert stored is not None and stored.roles == []


async def test_anonymous_cannot_use_user_administration(client: AsyncClient) -> None:
    boss = await admin(client)
    for response in (
        await client.get("/v1/users"),
        await client.get(f"/v1/users/{boss.id}"),
        await client.delete(f"/v1/users/{boss.id}"),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401


async def test_admin_reads_one_user(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    response = await client.get(f"/v1/users/{account.id}", headers=boss.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_KEYS
    assert (body["id"], body["email"], body["roles"]) == (account.id, account.email, [])


@pytest.mark.parametrize("user_id", [str(ObjectId()), "not-an-id", "123", "zz" * 12])
async def test_missing_or_malformed_user_id_is_not_found(client: AsyncClient, user_id: str) -> None:
    boss = await admin(client)
    for method in ("GET", "PATCH", "DELETE"):
        body = {"name": "x"} if method == "PATCH" else None
        response = await client.request(
            method, f"/v1/users/{user_id}", headers=boss.headers, json=body
        )
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 404


async def test_admin_changes_roles_and_name(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    body = await patch_user(client, boss, account.id, roles=["editor", "viewer"], name="Eve")
    assert (body["roles"], body["name"], body["disabled"]) == (["editor", "viewer"], "Eve", False)
    again = await client.get(f"/v1/users/{account.id}", headers=boss.headers)
    assert again.json() == body
    me = await client.get("/v1/auth/me", headers=account.headers)
    assert me.json()["roles"] == ["editor", "viewer"]


async def test_admin_disables_a_user(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    body = await patch_user(client, boss, account.id, disabled=True)
    assert body["disabled"] is True
    again = await client.get(f"/v1/users/{account.id}", headers=boss.headers)
    assert again.json()["disabled"] is True


@pytest.mark.parametrize(
    "change",
    [{"roles": ["Not A Role"]}, {"password_hash": "x"}, {"email": "x@example.com"}],
    ids=str,
)
async def test_admin_update_refuses_invalid_or_unknown_fields(
    client: AsyncClient, change: dict
) -> None:
    boss = await admin(client)
    account = await register(client)
    response = await client.patch(f"/v1/users/{account.id}", json=change, headers=boss.headers)
    assert response.status_code == 422
    assert response.json()["errors"]
    assert (
        await client.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    ).status_code == 200


async def test_admin_update_refuses_a_string_for_disabled(client: AsyncClient) -> None:
    # Validation is strict (PRODUCT.md, Conventions): "yes" is not a boolean.
    boss = await admin(client)
    account = await register(client)
    response = await client.patch(
        f"/v1/users/{account.id}", json={"disabled": "yes"}, headers=boss.headers
    )
    assert response.status_code == 422, response.text
    assert ["body", "disabled"] in [error["loc"] for error in response.json()["errors"]]
    me = await client.get("/v1/auth/me", headers=account.headers)
    assert me.status_code == 200
    assert me.json()["disabled"] is False


async def assert_self_lockout_refused(
    client: AsyncClient, boss: Account, response_status: int
) -> None:
    assert response_status == 409
    me = await client.get("/v1/auth/me", headers=boss.headers)
    assert me.status_code == 200
    assert "admin" in me.json()["roles"] and me.json()["disabled"] is False


async def test_admin_cannot_drop_own_admin_role(client: AsyncClient) -> None:
    boss = await admin(client)
    response = await client.patch(
        f"/v1/users/{boss.id}", json={"roles": ["editor"]}, headers=boss.headers
    )
    assert response.json()["status"] == 409
    await assert_self_lockout_refused(client, boss, response.status_code)


async def test_admin_cannot_disable_self(client: AsyncClient) -> None:
    boss = await admin(client)
    response = await client.patch(
        f"/v1/users/{boss.id}", json={"disabled": True}, headers=boss.headers
    )
    assert response.json()["status"] == 409
    await assert_self_lockout_refused(client, boss, response.status_code)


async def test_admin_cannot_delete_self(client: AsyncClient) -> None:
    boss = await admin(client)
    response = await client.delete(f"/v1/users/{boss.id}", headers=boss.headers)
    assert response.json()["status"] == 409
    await assert_self_lockout_refused(client, boss, response.status_code)


async def test_admin_may_rename_self_and_keep_admin(client: AsyncClient) -> None:
    boss = await admin(client)
    body = await patch_user(client, boss, boss.id, name="Chief", roles=["admin", "editor"])
    assert (body["name"], body["roles"]) == ("Chief", ["admin", "editor"])


async def test_admin_deletes_a_user(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    response = await client.delete(f"/v1/users/{account.id}", headers=boss.headers)
    assert response.status_code == 204
    assert response.content == b""
    gone = await client.get(f"/v1/users/{account.id}", headers=boss.headers)
    assert gone.status_code == 404
    me = await client.get("/v1/auth/me", headers=account.headers)
    assert me.status_code == 401
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refreshed.status_code == 401
    login = await client.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert login.status_code == 401


async def test_deleted_users_email_can_register_again(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    assert (await client.delete(f"/v1/users/{account.id}", headers=boss.headers)).status_code == 204
    again = await register(client, account.email)
    assert again.id != account.id


async def test_role_removed_by_admin_applies_to_the_next_request(client: AsyncClient) -> None:
    boss = await admin(client)
    deputy = await register(client)
    await patch_user(client, boss, deputy.id, roles=["admin"])
    assert (await client.get("/v1/users", headers=deputy.headers)).status_code == 200
    await patch_user(client, boss, deputy.id, roles=[])
    assert (await client.get("/v1/users", headers=deputy.headers)).status_code == 403


async def test_refreshed_tokens_carry_the_current_roles(client: AsyncClient) -> None:
    boss = await admin(client)
    deputy = await register(client)
    await patch_user(client, boss, deputy.id, roles=["admin"])
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": deputy.refresh_token})
    token = refreshed.json()["access_token"]
    users = await client.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert users.status_code == 200
