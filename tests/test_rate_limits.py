"""The shared request budget: per caller, per address when anonymous, by size for batches,
kept in MongoDB so that every API process counts against the same limit.

An hourly window keeps the tests clear of a window boundary falling between two requests.
"""

import json
from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from api.main import create_app
from api.settings import Settings
from tests.factories import Account, admin, another_app, create_collection, register

BUDGET = 5
NOTES = {"type": "object", "properties": {"text": {"type": "string"}}}
PUBLIC = {"list": ["public"], "read": ["public"], "create": ["public"]}
NDJSON = {"Content-Type": "application/x-ndjson"}


def limited_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"rate_limit": f"{BUDGET}/hour"}))


@pytest.fixture
async def limited(app: FastAPI, settings: Settings) -> AsyncIterator[AsyncClient]:
    async with another_app(limited_app(settings), app) as http:
        yield http


@pytest.fixture
async def notes(client: AsyncClient) -> Account:
    """A public collection; its admin is set up through the session app, outside the budget."""
    boss = await admin(client)
    await create_collection(client, boss, "notes", NOTES, rules=PUBLIC)
    return boss


def assert_rate_limited(response: Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 3600


async def spend(http: AsyncClient, headers: dict[str, str], times: int = BUDGET) -> None:
    for _ in range(times):
        response = await http.get("/v1/collections/notes/documents", headers=headers)
        assert response.status_code == 200, response.text


async def test_request_past_the_budget_is_refused_with_retry_after(
    client: AsyncClient, limited: AsyncClient, notes: Account
) -> None:
    user = await register(client)
    await spend(limited, user.headers)
    assert_rate_limited(await limited.get("/v1/collections/notes/documents", headers=user.headers))


async def test_every_route_but_sign_in_and_health_counts_even_when_it_finds_nothing(
    client: AsyncClient, limited: AsyncClient, notes: Account
) -> None:
    user = await register(client)
    for _ in range(3):
        assert (await limited.get("/v1/health")).status_code == 200
    answers = [
        await limited.get("/v1/collections/nowhere/documents", headers=user.headers),
        await limited.get("/v1/collections/nowhere", headers=user.headers),
        await limited.get("/v1/auth/me", headers=user.headers),
        await limited.get("/v1/collections/notes/documents/nothing", headers=user.headers),
    ]
    assert [a.status_code for a in answers] == [404, 403, 200, 404]
    await spend(limited, user.headers, BUDGET - len(answers))
    assert_rate_limited(await limited.get("/v1/collections/notes/documents", headers=user.headers))


async def test_budget_is_per_caller(
    client: AsyncClient, limited: AsyncClient, notes: Account
) -> None:
    spender, bystander = await register(client), await register(client)
    await spend(limited, spender.headers)
    assert_rate_limited(
        await limited.get("/v1/collections/notes/documents", headers=spender.headers)
    )
    await spend(limited, bystander.headers)


async def test_anonymous_budget_is_keyed_on_the_client_address(
    app: FastAPI, client: AsyncClient, settings: Settings, notes: Account
) -> None:
    application = limited_app(settings)
    async with another_app(application, app) as limited:
        await spend(limited, {})
        assert_rate_limited(await limited.get("/v1/collections/notes/documents"))
        # Another address has a budget of its own; so has a signed-in caller at this address.
        transport = ASGITransport(app=application, client=("203.0.113.9", 4000))
        async with AsyncClient(transport=transport, base_url="http://cabinet.test") as elsewhere:
            await spend(elsewhere, {})
        await spend(limited, (await register(client)).headers)


async def test_spoofed_forwarded_for_does_not_buy_a_new_budget(
    limited: AsyncClient, notes: Account
) -> None:
    for n in range(BUDGET):
        await spend(limited, {"X-Forwarded-For": f"198.51.100.{n}"}, times=1)
    assert_rate_limited(
        await limited.get(
            "/v1/collections/notes/documents", headers={"X-Forwarded-For": "198.51.100.200"}
        )
    )


async def test_bulk_request_counts_each_operation(
    client: AsyncClient, limited: AsyncClient, notes: Account
) -> None:
    user = await register(client)
    operations = [{"insert": {"text": str(n)}} for n in range(BUDGET)]
    bulk = await limited.post(
        "/v1/collections/notes/bulk", json={"operations": operations}, headers=user.headers
    )
    assert bulk.status_code == 200, bulk.text
    assert [result["status"] for result in bulk.json()["results"]] == [201] * BUDGET
    assert_rate_limited(await limited.get("/v1/collections/notes/documents", headers=user.headers))


async def test_bulk_request_larger_than_the_budget_is_refused_whole(
    client: AsyncClient, limited: AsyncClient, notes: Account
) -> None:
    user = await register(client)
    operations = [{"insert": {"text": str(n)}} for n in range(BUDGET + 1)]
    assert_rate_limited(
        await limited.post(
            "/v1/collections/notes/bulk", json={"operations": operations}, headers=user.headers
        )
    )
    listed = await client.get("/v1/collections/notes/documents", headers=user.headers)
    assert listed.json()["items"] == []


async def test_import_counts_each_row(
    client: AsyncClient, limited: AsyncClient, notes: Account
) -> None:
    user = await register(client)
    rows = "".join(json.dumps({"text": str(n)}) + "\n" for n in range(BUDGET))
    imported = await limited.post(
        "/v1/collections/notes/import", content=rows, headers={**NDJSON, **user.headers}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["inserted"] == BUDGET
    assert_rate_limited(await limited.get("/v1/collections/notes/documents", headers=user.headers))


async def test_import_past_the_budget_is_refused(
    client: AsyncClient, limited: AsyncClient, notes: Account
) -> None:
    user = await register(client)
    rows = "".join(json.dumps({"text": str(n)}) + "\n" for n in range(BUDGET * 3))
    refused = await limited.post(
        "/v1/collections/notes/import", content=rows, headers={**NDJSON, **user.headers}
    )
    assert_rate_limited(refused)


async def test_import_stopped_by_the_budget_says_what_it_wrote(
    app: FastAPI, client: AsyncClient, settings: Settings, notes: Account
) -> None:
    # Rows are counted a batch (1,000) at a time, before the batch is written: the second batch
    # would take the caller past 1,500, so only the first is written.
    user = await register(client)
    rows = "".join(json.dumps({"text": str(n)}) + "\n" for n in range(2500))
    budget = settings.model_copy(update={"rate_limit": "1500/hour"})
    async with another_app(create_app(budget), app) as http:
        refused = await http.post(
            "/v1/collections/notes/import", content=rows, headers={**NDJSON, **user.headers}
        )
    assert_rate_limited(refused)
    assert refused.json()["detail"] == (
        "The request budget is spent; "
        "the import stopped after writing 1000 records (1000 inserted, 0 updated)"
    )
    stored = app.state.mongo[settings.database]["c_notes"]
    assert await stored.count_documents({}) == 1000


async def test_budget_is_shared_by_app_instances_through_mongodb(
    app: FastAPI, client: AsyncClient, settings: Settings, notes: Account
) -> None:
    user = await register(client)
    first, second = limited_app(settings), limited_app(settings)
    async with another_app(first, app) as one, LifespanManager(second):
        transport = ASGITransport(app=second, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://cabinet.test") as two:
            for n in range(BUDGET):
                await spend(one if n % 2 else two, user.headers, times=1)
            assert_rate_limited(
                await one.get("/v1/collections/notes/documents", headers=user.headers)
            )
            assert_rate_limited(
                await two.get("/v1/collections/notes/documents", headers=user.headers)
            )
        counters = app.state.mongo[settings.database]["rate_limits"]
        stored = await counters.find_one({"_id": {"$regex": f"^caller:{user.id}:"}})
    assert stored is not None
    assert stored["hits"] == BUDGET + 2
