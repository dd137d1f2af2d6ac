"""The first admin: created from settings once, never duplicated, its password never overwritten."""

from pathlib import Path

from httpx import AsyncClient

from api.bootstrap import (
    CREDENTIALS_FILE,
    DEVELOPMENT_ADMIN_EMAIL,
    ensure_admin,
    ensure_first_admin,
)
from api.settings import Settings
from documents import User
from tests.factories import PASSWORD, login, register

BOSS = "boss@example.com"


def with_admin(
    settings: Settings, email: str | None, password: str | None, **more: object
) -> Settings:
    return settings.model_copy(update={"admin_email": email, "admin_password": password, **more})


async def test_configured_admin_is_created_and_can_list_users(
    client: AsyncClient, settings: Settings
) -> None:
    account = await ensure_first_admin(with_admin(settings, BOSS, PASSWORD))
    assert account is not None
    assert (account.email, account.created) == (BOSS, True)
    boss = await login(client, BOSS)
    response = await client.get("/v1/users", headers=boss.headers)
    assert response.status_code == 200
    assert [(user["email"], user["roles"]) for user in response.json()["items"]] == [
        (BOSS, ["admin"])
    ]


async def test_configured_admin_is_not_duplicated_nor_its_password_overwritten(
    client: AsyncClient, settings: Settings
) -> None:
    await ensure_first_admin(with_admin(settings, BOSS, PASSWORD))
    again = await ensure_first_admin(with_admin(settings, BOSS, "a different password"))
    assert again is not None
    assert (again.created, again.password) == (False, None)
    assert await User.find(User.email == BOSS).count() == 1
    assert (await login(client, BOSS, PASSWORD)).email == BOSS
    refused = await client.post(
        "/v1/auth/login", json={"email": BOSS, "password": "a different password"}
    )
    assert refused.status_code == 401


async def test_admin_email_is_lower_cased(client: AsyncClient) -> None:
    await ensure_admin("Boss@Example.COM", PASSWORD)
    await ensure_admin("BOSS@example.com", PASSWORD)
    assert await User.find(User.email == BOSS).count() == 1
    assert await User.count() == 1
    assert (await login(client, BOSS)).email == BOSS


async def test_existing_member_named_as_admin_gains_the_role_and_keeps_the_password(
    client: AsyncClient,
) -> None:
    member = await register(client, "promoted@example.com")
    account = await ensure_admin("promoted@example.com", "ignored password")
    assert account.created is False
    me = await client.get("/v1/auth/me", headers=member.headers)
    assert me.json()["roles"] == ["admin"]
    assert (await login(client, member.email, PASSWORD)).id == member.id


async def test_development_generates_an_admin_when_none_is_configured(
    client: AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    dev = with_admin(settings, None, None, env="development", data_dir=tmp_path)
    account = await ensure_first_admin(dev)
    assert account is not None and account.created and account.password
    assert account.email == DEVELOPMENT_ADMIN_EMAIL
    credentials = (tmp_path / CREDENTIALS_FILE).read_text()
    assert account.password in credentials
    assert (await login(client, account.email, account.password)).email == account.email
    assert await ensure_first_admin(dev) is None
    assert await User.count() == 1


async def test_production_without_configured_admin_creates_none(
    client: AsyncClient, settings: Settings
) -> None:
    production = with_admin(settings, None, None, env="production")
    assert await ensure_first_admin(production) is None
    assert await User.count() == 0
