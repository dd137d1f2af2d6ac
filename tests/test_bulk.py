"""Bulk writes over HTTP: `POST /v1/collections/{c}/bulk`, a result per operation, in order."""

import re
from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.factories import Account, admin, before_first_bulk_write, create_collection, register

PROBLEM = "application/problem+json"
BULK = "/v1/collections/books/bulk"
URL = "/v1/collections/books/documents"
BOOKS = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "isbn": {"type": "string"},
    },
}


async def _setup(client: AsyncClient) -> tuple[Account, Account]:
    boss = await admin(client)
    await create_collection(
        client, boss, "books", BOOKS, indexes=[{"fields": ["isbn"], "unique": True}]
    )
    return boss, await register(client)


async def _create(client: AsyncClient, account: Account, fields: dict) -> dict:
    response = await client.post(URL, json=fields, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


async def _bulk(
    client: AsyncClient, account: Account, operations: list, ordered: bool | None = None
) -> Response:
    body: dict = {"operations": operations}
    if ordered is not None:
        body["ordered"] = ordered
    return await client.post(BULK, json=body, headers=account.headers)


def _results(response: Response) -> list[dict]:
    assert response.status_code == 200, response.text
    results: list[dict] = response.json()["results"]
    return results


async def _titles(client: AsyncClient, boss: Account) -> list[str]:
    response = await client.get(URL, params={"sort": "title"}, headers=boss.headers)
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


def _problem(response: Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict = response.json()
    return body


async def test_mixed_operations_report_in_order(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    keep = await _create(client, user, {"title": "Keep", "year": 1})
    gone = await _create(client, user, {"title": "Gone"})
    results = _results(
        await _bulk(
            client,
            user,
            [
                {"insert": {"title": "New"}},
                {"update": {"id": keep["_id"], "patch": {"year": 2}}},
                {"delete": {"id": gone["_id"]}},
            ],
        )
    )
    assert [r["status"] for r in results] == [201, 200, 204]
    assert re.fullmatch(r"[0-9a-f]{24}", results[0]["_id"])
    assert [r["_id"] for r in results[1:]] == [keep["_id"], gone["_id"]]
    assert all("error" not in r for r in results)
    assert await _titles(client, boss) == ["Keep", "New"]
    updated = (await client.get(f"{URL}/{keep['_id']}", headers=user.headers)).json()
    assert updated["year"] == 2 and updated["_version"] == 2
    gone_now = await client.get(f"{URL}/{gone['_id']}", headers=user.headers)
    assert gone_now.status_code == 404


def _mixed_batch(doc_id: str) -> list[dict]:
    """An insert, an invalid insert (no title), another insert, and a delete of `doc_id`."""
    return [
        {"insert": {"title": "A"}},
        {"insert": {"year": 1}},
        {"insert": {"title": "C"}},
        {"delete": {"id": doc_id}},
    ]


async def test_ordered_batch_stops_at_first_failure(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    doc = await _create(client, user, {"title": "Old"})
    operations = _mixed_batch(doc["_id"])
    results = _results(await _bulk(client, user, operations, ordered=True))
    assert [r["status"] for r in results] == [201, 422, 424, 424]
    assert all("_id" not in r and r["error"] for r in results[2:])
    assert await _titles(client, boss) == ["A", "Old"]


async def test_batches_are_ordered_by_default(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    results = _results(await _bulk(client, user, [{"insert": {}}, {"insert": {"title": "B"}}]))
    assert [r["status"] for r in results] == [422, 424]
    assert await _titles(client, boss) == []


async def test_unordered_batch_continues_past_failures(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    doc = await _create(client, user, {"title": "Old"})
    operations = _mixed_batch(doc["_id"])
    results = _results(await _bulk(client, user, operations, ordered=False))
    assert [r["status"] for r in results] == [201, 422, 201, 204]
    assert await _titles(client, boss) == ["A", "C"]


async def test_invalid_operation_names_its_position(client: AsyncClient) -> None:
    _, user = await _setup(client)
    operations = [{"insert": {"title": "A"}}, {"insert": {"title": "B", "year": "1999"}}]
    results = _results(await _bulk(client, user, operations, ordered=False))
    assert [r["status"] for r in results] == [201, 422]
    errors = results[1]["error"]["errors"]
    assert errors and all(e["loc"][:2] == ["operations", 1] for e in errors)
    assert errors[0]["loc"][-1] == "year" and errors[0]["msg"]


@pytest.mark.parametrize(("ordered", "third"), [(True, 424), (False, 201)])
async def test_unique_conflict_within_batch_is_409(
    client: AsyncClient, ordered: bool, third: int
) -> None:
    boss, user = await _setup(client)
    operations = [
        {"insert": {"title": "A", "isbn": "1"}},
        {"insert": {"title": "B", "isbn": "1"}},
        {"insert": {"title": "C", "isbn": "2"}},
    ]
    results = _results(await _bulk(client, user, operations, ordered=ordered))
    assert [r["status"] for r in results] == [201, 409, third]
    assert results[1]["error"]
    assert await _titles(client, boss) == (["A"] if ordered else ["A", "C"])


async def test_unique_conflict_with_stored_document_is_409(client: AsyncClient) -> None:
    _, user = await _setup(client)
    await _create(client, user, {"title": "A", "isbn": "1"})
    other = await _create(client, user, {"title": "B"})
    operations = [{"update": {"id": other["_id"], "patch": {"isbn": "1"}}}]
    assert [r["status"] for r in _results(await _bulk(client, user, operations))] == [409]
    stored = (await client.get(f"{URL}/{other['_id']}", headers=user.headers)).json()
    assert "isbn" not in stored and stored["_version"] == 1


async def test_update_with_stale_if_version_is_412(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "A"})
    operations = [
        {"update": {"id": doc["_id"], "patch": {"year": 1}, "if_version": 2}},
        {"update": {"id": doc["_id"], "patch": {"year": 2}, "if_version": 1}},
    ]
    results = _results(await _bulk(client, user, operations, ordered=False))
    assert [r["status"] for r in results] == [412, 200]
    stored = (await client.get(f"{URL}/{doc['_id']}", headers=user.headers)).json()
    assert stored["year"] == 2 and stored["_version"] == 2


async def test_other_users_documents_are_404(client: AsyncClient) -> None:
    _, owner = await _setup(client)
    doc = await _create(client, owner, {"title": "Mine"})
    other = await register(client)
    operations = [
        {"update": {"id": doc["_id"], "patch": {"year": 1}}},
        {"delete": {"id": doc["_id"]}},
        {"delete": {"id": "nope"}},
    ]
    results = _results(await _bulk(client, other, operations, ordered=False))
    assert [r["status"] for r in results] == [404, 404, 404]
    stored = (await client.get(f"{URL}/{doc['_id']}", headers=owner.headers)).json()
    assert stored == doc


async def test_more_than_1000_operations_is_422(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    operations = [{"insert": {"title": f"t{i}"}} for i in range(1001)]
    body = _problem(await _bulk(client, user, operations), 422)
    assert any(e["loc"][:2] == ["body", "operations"] for e in body["errors"])
    assert await _titles(client, boss) == []


async def test_exactly_1000_operations_are_accepted(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    operations = [{"insert": {"title": f"t{i:04}"}} for i in range(1000)]
    results = _results(await _bulk(client, user, operations))
    assert [r["status"] for r in results] == [201] * 1000
    listed = await client.get(URL, params={"limit": 1000}, headers=boss.headers)
    assert len(listed.json()["items"]) == 1000


@pytest.mark.parametrize(
    "operation",
    [
        {"insert": {"title": "A"}, "delete": {"id": "5f" + "0" * 22}},
        {"upsert": {"title": "A"}},
        {},
        {"update": {"id": "5f" + "0" * 22}},
    ],
    ids=["two-keys", "unknown-kind", "empty", "update-without-patch"],
)
async def test_malformed_operation_is_422(client: AsyncClient, operation: dict) -> None:
    boss, user = await _setup(client)
    body = _problem(await _bulk(client, user, [{"insert": {"title": "B"}}, operation]), 422)
    assert body["errors"]
    assert await _titles(client, boss) == []


async def test_bulk_inserted_documents_carry_system_fields(client: AsyncClient) -> None:
    _, user = await _setup(client)
    operations: list[dict[str, Any]] = [
        {"insert": {"title": "A"}},
        {"insert": {"title": "B", "year": 3}},
    ]
    results = _results(await _bulk(client, user, operations))
    for result, operation in zip(results, operations, strict=True):
        response = await client.get(f"{URL}/{result['_id']}", headers=user.headers)
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["_id"] == result["_id"]
        assert doc["_owner"] == user.id and doc["_version"] == 1
        for key in ("_created", "_updated"):
            assert doc[key].endswith("Z")
            datetime.fromisoformat(doc[key].replace("Z", "+00:00"))
        assert {k: v for k, v in doc.items() if not k.startswith("_")} == operation["insert"]
        assert response.headers["etag"]


async def test_anonymous_bulk_insert_needs_authentication(client: AsyncClient) -> None:
    boss, _ = await _setup(client)
    response = await client.post(BULK, json={"operations": [{"insert": {"title": "A"}}]})
    if response.status_code == 200:
        assert [r["status"] for r in response.json()["results"]] == [401]
    else:
        _problem(response, 401)
    assert await _titles(client, boss) == []


async def test_repeated_updates_of_a_document_apply_in_order(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "A"})
    operations = [
        {"update": {"id": doc["_id"], "patch": {"year": 1}, "if_version": 1}},
        {"update": {"id": doc["_id"], "patch": {"isbn": "1"}, "if_version": 2}},
        {"delete": {"id": doc["_id"]}},
    ]
    results = _results(await _bulk(client, user, operations))
    assert [(r["status"], r.get("_version")) for r in results] == [(200, 2), (200, 3), (204, None)]
    assert (await client.get(f"{URL}/{doc['_id']}", headers=user.headers)).status_code == 404


@pytest.mark.parametrize(
    ("ordered", "statuses", "other_year"),
    [(True, [409, 200, 424, 424], 1), (False, [409, 200, 424, 200], 2)],
)
async def test_update_that_lost_a_race_stops_the_later_updates_of_its_document(
    client: AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    ordered: bool,
    statuses: list[int],
    other_year: int,
) -> None:
    _, user = await _setup(client)
    raced = await _create(client, user, {"title": "A"})
    other = await _create(client, user, {"title": "B"})
    rival: list[Response] = []

    async def put() -> None:
        headers = {**user.headers, "If-Match": '"1"'}
        rival.append(
            await client.put(f"{URL}/{raced['_id']}", json={"title": "Theirs"}, headers=headers)
        )

    before_first_bulk_write(monkeypatch, put)
    operations = [
        {"update": {"id": raced["_id"], "patch": {"year": 1}, "if_version": 1}},
        {"update": {"id": other["_id"], "patch": {"year": 1}}},
        # Planned on version 2 as the bulk would have made it; the rival made another version 2.
        {"update": {"id": raced["_id"], "patch": {"year": 2}, "if_version": 2}},
        {"update": {"id": other["_id"], "patch": {"year": 2}}},
    ]
    results = _results(await _bulk(client, user, operations, ordered=ordered))
    monkeypatch.undo()
    assert [r.status_code for r in rival] == [200]
    assert [r["status"] for r in results] == statuses
    assert all(r["error"]["detail"] for r in results if r["status"] >= 400)
    stored = (await client.get(f"{URL}/{raced['_id']}", headers=user.headers)).json()
    assert stored["title"] == "Theirs" and "year" not in stored and stored["_version"] == 2
    stored = (await client.get(f"{URL}/{other['_id']}", headers=user.headers)).json()
    assert stored["year"] == other_year


async def test_updates_after_a_failed_write_of_their_document_are_not_attempted(
    client: AsyncClient,
) -> None:
    _, user = await _setup(client)
    await _create(client, user, {"title": "A", "isbn": "1"})
    doc = await _create(client, user, {"title": "B"})
    operations = [
        {"update": {"id": doc["_id"], "patch": {"isbn": "1"}}},
        {"update": {"id": doc["_id"], "patch": {"year": 2}}},
    ]
    results = _results(await _bulk(client, user, operations, ordered=False))
    assert [r["status"] for r in results] == [409, 424]
    stored = (await client.get(f"{URL}/{doc['_id']}", headers=user.headers)).json()
    assert stored == doc
