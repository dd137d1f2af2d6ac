"""Upsert imports meeting what is stored: concurrent edits, and keys the server rounds."""

import pytest
from httpx import AsyncClient, Response

from tests.factories import Account, admin, before_first_bulk_write, create_collection

ITEMS = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "n": {"type": "integer"},
    },
}
URL = "/v1/collections/items/documents"


async def _items(client: AsyncClient) -> Account:
    boss = await admin(client)
    indexes = [{"fields": ["sku"], "unique": True}, {"fields": ["at"], "unique": True}]
    await create_collection(client, boss, "items", ITEMS, indexes=indexes)
    return boss


async def _upsert(client: AsyncClient, boss: Account, key: str, body: bytes) -> dict:
    response = await client.post(
        "/v1/collections/items/import",
        params={"mode": "upsert", "key": key},
        content=body,
        headers={**boss.headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    report: dict = response.json()
    return report


async def _create(client: AsyncClient, boss: Account, fields: dict) -> dict:
    response = await client.post(URL, json=fields, headers=boss.headers)
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


async def _stored(client: AsyncClient, boss: Account) -> list[dict]:
    response = await client.get(URL, params={"sort": "n"}, headers=boss.headers)
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


async def test_upsert_row_whose_document_changed_meanwhile_fails(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await _items(client)
    raced = await _create(client, boss, {"sku": "a", "n": 1})
    await _create(client, boss, {"sku": "b", "n": 2})
    rival: list[Response] = []

    async def patch() -> None:
        # From version 1 to 2: the very version number the import's replace would make.
        rival.append(
            await client.patch(f"{URL}/{raced['_id']}", json={"n": 9}, headers=boss.headers)
        )

    before_first_bulk_write(monkeypatch, patch)
    report = await _upsert(client, boss, "sku", b'{"sku": "a", "n": 3}\n{"sku": "b", "n": 4}\n')
    monkeypatch.undo()
    assert [r.status_code for r in rival] == [200]
    assert {k: report[k] for k in ("inserted", "updated", "failed")} == {
        "inserted": 0,
        "updated": 1,
        "failed": 1,
    }
    assert [error["line"] for error in report["errors"]] == [1]
    assert "changed" in report["errors"][0]["detail"]
    assert [(d["sku"], d["n"], d["_version"]) for d in await _stored(client, boss)] == [
        ("b", 4, 2),
        ("a", 9, 2),
    ]


async def test_upsert_on_a_date_time_key_with_microseconds_updates_its_document(
    client: AsyncClient,
) -> None:
    boss = await _items(client)
    line = b'{"at": "2026-01-31T12:00:00.123456Z", "n": 1}\n'
    first = await _upsert(client, boss, "at", line)
    assert (first["inserted"], first["updated"], first["failed"]) == (1, 0, 0)
    again = await _upsert(client, boss, "at", line.replace(b'"n": 1', b'"n": 2'))
    assert (again["inserted"], again["updated"], again["failed"]) == (0, 1, 0), again
    stored = await _stored(client, boss)
    assert [(d["at"], d["n"], d["_version"]) for d in stored] == [
        ("2026-01-31T12:00:00.123Z", 2, 2)
    ]


async def test_date_time_keys_equal_to_the_millisecond_are_one_key_within_a_file(
    client: AsyncClient,
) -> None:
    boss = await _items(client)
    body = (
        b'{"at": "2026-01-31T12:00:00.123456Z", "n": 1}\n'
        b'{"at": "2026-01-31T12:00:00.123999Z", "n": 2}\n'
    )
    report = await _upsert(client, boss, "at", body)
    assert (report["inserted"], report["updated"], report["failed"]) == (1, 1, 0), report
    assert [(d["n"], d["_version"]) for d in await _stored(client, boss)] == [(2, 2)]
