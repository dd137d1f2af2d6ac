from httpx import AsyncClient

from tests.factories import admin, register


async def test_register_then_read_me(client: AsyncClient) -> None:
    account = await register(client, "Alice@Example.com")
    response = await client.get("/v1/auth/me", headers=account.headers)
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"


async def test_admin_lists_users(client: AsyncClient) -> None:
    boss = await admin(client)
    await register(client)
    response = await client.get("/v1/users", headers=boss.headers)
    assert response.status_code == 200
    assert len(response.json()["items"]) == 2
