"""Atomic field operators over HTTP: `POST /v1/collections/{c}/documents/{id}/ops`."""

import pytest
from httpx import AsyncClient, Response

from tests.factories import Account, admin, create_collection, register

PROBLEM = "application/problem+json"
URL = "/v1/collections/posts/documents"
POSTS = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "likes": {"type": "integer", "maximum": 10},
        "score": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "stats": {"type": "object", "properties": {"views": {"type": "integer"}}},
    },
}


async def _setup(client: AsyncClient, fields: dict) -> tuple[Account, dict]:
    boss = await admin(client)
    await create_collection(client, boss, "posts", POSTS)
    user = await register(client)
    response = await client.post(URL, json=fields, headers=user.headers)
    assert response.status_code == 201, response.text
    return user, response.json()


async def _ops(client: AsyncClient, account: Account, doc: dict, body: dict) -> Response:
    return await client.post(f"{URL}/{doc['_id']}/ops", json=body, headers=account.headers)


async def _read(client: AsyncClient, account: Account, doc: dict) -> dict:
    response = await client.get(f"{URL}/{doc['_id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def _problem(response: Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict = response.json()
    return body


async def test_inc_adds_to_existing_and_absent_fields(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"name": "a", "likes": 1})
    response = await _ops(client, user, doc, {"inc": {"likes": 2, "score": 0.5}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["likes"] == 3 and body["score"] == 0.5
    assert body["_version"] == 2
    assert response.headers["etag"]
    again = (await _ops(client, user, doc, {"inc": {"likes": -4, "score": 1}})).json()
    assert again["likes"] == -1 and again["score"] == 1.5 and again["_version"] == 3
    assert again["_updated"].endswith("Z") and again["_updated"] >= doc["_updated"]
    assert again["_created"] == doc["_created"] and again["_owner"] == user.id
    assert await _read(client, user, doc) == again


async def test_inc_reaches_nested_object_fields(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"stats": {"views": 4}})
    response = await _ops(client, user, doc, {"inc": {"stats.views": 3}})
    assert response.status_code == 200, response.text
    assert response.json()["stats"] == {"views": 7}


async def test_push_appends_items(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"tags": ["a"]})
    response = await _ops(client, user, doc, {"push": {"tags": "a"}})
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["a", "a"]
    assert (await _read(client, user, doc))["tags"] == ["a", "a"]


async def test_pull_removes_every_matching_item(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"tags": ["a", "b", "a"]})
    response = await _ops(client, user, doc, {"pull": {"tags": "a"}})
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["b"] and response.json()["_version"] == 2
    assert (await _read(client, user, doc))["tags"] == ["b"]


async def test_add_to_set_adds_only_missing_items(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"tags": ["a"]})
    first = await _ops(client, user, doc, {"add_to_set": {"tags": "b"}})
    assert first.status_code == 200 and first.json()["tags"] == ["a", "b"]
    second = await _ops(client, user, doc, {"add_to_set": {"tags": "a"}})
    assert second.status_code == 200, second.text
    assert second.json()["tags"] == ["a", "b"]
    assert (await _read(client, user, doc))["tags"] == ["a", "b"]


async def test_several_operators_in_one_request_apply_together(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"likes": 0, "tags": ["x"]})
    response = await _ops(
        client, user, doc, {"inc": {"likes": 1}, "push": {"tags": "y"}, "pull": {}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["likes"] == 1 and body["tags"] == ["x", "y"] and body["_version"] == 2


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"inc": {"name": 1}}, ["body", "inc", "name"]),
        ({"inc": {"likes": "1"}}, ["body", "inc", "likes"]),
        ({"inc": {"likes": 1.5}}, ["body", "inc", "likes"]),
        ({"push": {"likes": 1}}, ["body", "push", "likes"]),
        ({"inc": {"nope": 1}}, ["body", "inc", "nope"]),
        ({"push": {"unknown": "x"}}, ["body", "push", "unknown"]),
        ({"inc": {"_version": 5}}, ["body", "inc", "_version"]),
        ({"rename": {"name": "x"}}, ["body", "rename"]),
    ],
)
async def test_invalid_operations_are_refused(client: AsyncClient, body: dict, loc: list) -> None:
    user, doc = await _setup(client, {"name": "a", "likes": 1})
    problem = _problem(await _ops(client, user, doc, body), 422)
    assert loc in [error["loc"] for error in problem["errors"]]
    assert await _read(client, user, doc) == doc


async def test_inc_on_a_stored_string_is_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    loose = {"type": "object", "properties": {"n": {"type": ["integer", "string"]}}}
    await create_collection(client, boss, "posts", loose)
    created = await client.post(URL, json={"n": "text"}, headers=boss.headers)
    doc = created.json()
    problem = _problem(await _ops(client, boss, doc, {"inc": {"n": 1}}), 422)
    assert ["body", "inc", "n"] in [error["loc"] for error in problem["errors"]]
    assert await _read(client, boss, doc) == doc


async def test_inc_past_maximum_is_refused_and_value_unchanged(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"likes": 9})
    problem = _problem(await _ops(client, user, doc, {"inc": {"likes": 2}}), 422)
    assert problem["errors"]
    stored = await _read(client, user, doc)
    assert stored["likes"] == 9 and stored["_version"] == 1
    exact = await _ops(client, user, doc, {"inc": {"likes": 1}})
    assert exact.status_code == 200 and exact.json()["likes"] == 10


async def test_push_past_max_items_is_refused_and_array_unchanged(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"tags": ["a", "b", "c"]})
    for body in ({"push": {"tags": "d"}}, {"add_to_set": {"tags": "d"}}):
        _problem(await _ops(client, user, doc, body), 422)
    stored = await _read(client, user, doc)
    assert stored["tags"] == ["a", "b", "c"] and stored["_version"] == 1
    # Adding an item already present leaves a full array as it is.
    same = await _ops(client, user, doc, {"add_to_set": {"tags": "a"}})
    assert same.status_code == 200 and same.json()["tags"] == ["a", "b", "c"]


async def test_ops_on_another_users_document_is_404(client: AsyncClient) -> None:
    owner, doc = await _setup(client, {"likes": 1})
    other = await register(client)
    _problem(await _ops(client, other, doc, {"inc": {"likes": 1}}), 404)
    assert (await _read(client, owner, doc))["likes"] == 1


async def test_ops_on_missing_document_is_404(client: AsyncClient) -> None:
    user, _ = await _setup(client, {"likes": 1})
    for doc_id in ("nope", "5f" + "0" * 22):
        _problem(await _ops(client, user, {"_id": doc_id}, {"inc": {"likes": 1}}), 404)
