"""Array operators on date-time items: compared with the stored dates, not their text."""

import os
from typing import Any

import pytest
from httpx import AsyncClient, Response
from pymongo.asynchronous.collection import AsyncCollection

from tests.factories import Account, admin, create_collection

URL = "/v1/collections/events/documents"
ON_STAND_IN = not os.environ.get("CABINET_TEST_MONGODB_URL")
# docs/embedded-database.md: the stand-in stores a pushed date as text, and a date inside an
# array neither matches a filter's date nor is removed by $pull.
DATES_IN_ARRAYS = "the embedded stand-in does not compare dates inside arrays"
WHEN = "2026-01-31T12:00:00Z"
WHEN_AGAIN = "2026-01-31T13:00:00.000+01:00"  # the same instant, written another way
DATES = {"type": "string", "format": "date-time"}
EVENTS = {
    "type": "object",
    "properties": {
        "when": {"type": "array", "items": DATES, "uniqueItems": True},
        "full": {"type": "array", "items": DATES, "maxItems": 1},
    },
}


async def _setup(client: AsyncClient, fields: dict) -> tuple[Account, str]:
    boss = await admin(client)
    await create_collection(client, boss, "events", EVENTS)
    created = await client.post(URL, json=fields, headers=boss.headers)
    assert created.status_code == 201, created.text
    return boss, created.json()["_id"]


async def _ops(client: AsyncClient, who: Account, doc_id: str, body: dict) -> Response:
    return await client.post(f"{URL}/{doc_id}/ops", json=body, headers=who.headers)


async def _stored(client: AsyncClient, who: Account, doc_id: str) -> dict:
    body: dict = (await client.get(f"{URL}/{doc_id}", headers=who.headers)).json()
    return body


@pytest.mark.parametrize(
    "field",
    [
        "when",
        pytest.param(
            "full", marks=pytest.mark.xfail(ON_STAND_IN, reason=DATES_IN_ARRAYS, strict=True)
        ),
    ],
)
async def test_add_to_set_of_a_date_already_there_changes_nothing(
    client: AsyncClient, field: str
) -> None:
    boss, doc_id = await _setup(client, {field: [WHEN]})
    response = await _ops(client, boss, doc_id, {"add_to_set": {field: WHEN_AGAIN}})
    assert response.status_code == 200, response.text
    assert response.json()[field] == ["2026-01-31T12:00:00Z"]


@pytest.mark.xfail(ON_STAND_IN, reason=DATES_IN_ARRAYS, strict=True)
async def test_pull_of_a_date_removes_it(client: AsyncClient) -> None:
    boss, doc_id = await _setup(client, {"when": [WHEN, "2026-02-01T00:00:00Z"]})
    response = await _ops(client, boss, doc_id, {"pull": {"when": WHEN_AGAIN}})
    assert response.status_code == 200, response.text
    assert (await _stored(client, boss, doc_id))["when"] == ["2026-02-01T00:00:00Z"]


@pytest.mark.xfail(ON_STAND_IN, reason=DATES_IN_ARRAYS, strict=True)
async def test_a_push_racing_another_of_the_same_date_keeps_the_items_unique(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss, doc_id = await _setup(client, {"when": []})
    real = AsyncCollection.find_one_and_update
    rivals: list[Response] = []
    raced = False

    async def racing(self: AsyncCollection, *args: Any, **kwargs: Any) -> Any:
        # Another client's push of the same instant lands between our read and our update.
        nonlocal raced
        if not raced:
            raced = True
            rivals.append(await _ops(client, boss, doc_id, {"push": {"when": WHEN}}))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "find_one_and_update", racing)
    ours = await _ops(client, boss, doc_id, {"push": {"when": WHEN_AGAIN}})
    monkeypatch.undo()
    assert [rival.status_code for rival in rivals] == [200]
    assert ours.status_code in (409, 422), ours.text
    assert (await _stored(client, boss, doc_id))["when"] == ["2026-01-31T12:00:00Z"]
