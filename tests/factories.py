"""Small async factories for the objects tests need: accounts, tokens, admins."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from beanie import init_beanie
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pymongo.asynchronous.collection import AsyncCollection

from api.bootstrap import ensure_admin
from documents import MODELS

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


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def patch_user(client: AsyncClient, boss: Account, user_id: str, **changes: Any) -> dict:
    """An admin's change to another account, which must succeed."""
    response = await client.patch(f"/v1/users/{user_id}", json=changes, headers=boss.headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


@asynccontextmanager
async def another_app(application: FastAPI, restore: FastAPI) -> AsyncIterator[AsyncClient]:
    """Serves a second app (other settings, extra routes) inside its lifespan.

    Beanie binds the models process-wide, so the second lifespan rebinds them to its own client
    and closes it on exit; afterwards they are bound back to the session app's client.
    """
    try:
        async with LifespanManager(application):
            transport = ASGITransport(app=application, raise_app_exceptions=False)
            async with AsyncClient(transport=transport, base_url="http://cabinet.test") as http:
                yield http
    finally:
        database = restore.state.mongo[restore.state.settings.database]
        await init_beanie(database=database, document_models=MODELS)


async def create_collection(
    client: AsyncClient,
    boss: Account,
    name: str,
    schema: dict,
    rules: dict | None = None,
    indexes: list | None = None,
) -> dict:
    """An admin's new collection definition, which must be created."""
    body: dict[str, Any] = {"name": name, "schema": schema}
    if rules is not None:
        body["rules"] = rules
    if indexes is not None:
        body["indexes"] = indexes
    response = await client.post("/v1/collections", json=body, headers=boss.headers)
    assert response.status_code == 201, response.text
    created: dict = response.json()
    return created


POLL_STEP = 0.02
POLL_STEPS = 250  # 5 s: far below the app's 10 s cache max_age, far above a change's delivery


async def eventually(condition: Callable[[], bool]) -> bool:
    """Whether `condition` holds within 5 s, checked every 20 ms."""
    for _ in range(POLL_STEPS):
        if condition():
            return True
        await asyncio.sleep(POLL_STEP)
    return condition()


async def eventually_async(condition: Callable[[], Awaitable[bool]]) -> bool:
    for _ in range(POLL_STEPS):
        if await condition():
            return True
        await asyncio.sleep(POLL_STEP)
    return await condition()


def before_first_bulk_write(
    monkeypatch: pytest.MonkeyPatch, rival: Callable[[], Awaitable[None]]
) -> None:
    """Runs `rival` once, when a bulk write or an import has read its documents and is about to
    write them: the moment another client's write must land to race it, whatever the server."""
    write = AsyncCollection.bulk_write
    waiting = [rival]

    async def racing(self: AsyncCollection, *args: Any, **kwargs: Any) -> Any:
        while waiting:
            await waiting.pop()()
        return await write(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "bulk_write", racing)
