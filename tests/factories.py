"""Small async factories for the objects tests need: accounts, tokens, admins."""

import itertools
from dataclasses import dataclass

from httpx import AsyncClient

from api.bootstrap import ensure_admin

PASSWORD = "correct horse battery"
_numbers = itertools.count(1)


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_numbers)}@example.com"


async def register(
    client: AsyncClient, email: str | None = None, password: str = PASSWORD
) -> Account:
    email = email or unique_email()
    response = await client.post("/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user"]["id"], email, password, body["access_token"], body["refresh_token"])


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> Account:
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    me = await client.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    return Account(me.json()["id"], email, password, body["access_token"], body["refresh_token"])


async def admin(client: AsyncClient) -> Account:
    email = unique_email("admin")
    await ensure_admin(email, PASSWORD)
    return await login(client, email)
