"""Atomic field operators over HTTP: `POST /v1/collections/{c}/documents/{id}/ops`."""

from typing import Any

import pytest
from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient, Response
from pymongo.asynchronous.collection import AsyncCollection

from api.value_checks import INT64_MAX, INT64_MIN
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
        "count": {"type": "integer"},
        "stock": {"type": "integer", "minimum": 0},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "mass": {"type": "number", "maximum": 1e30},
        "box": {
            "type": "object",
            "required": ["label"],
            "properties": {"label": {"type": "string"}, "qty": {"type": "integer"}},
        },
    },
}


async def _setup(client: AsyncClient, fields: dict) -> tuple[Account, dict]:
    boss = await admin(client)
    await create_collection(client, boss, "posts", POSTS)
    user = await register(client)
    response = await client.post(URL, json=fields, headers=user.headers)
    assert response.status_code == 201, response.text
    return user, response.json()


async def _setup_more(client: AsyncClient, user: Account, fields: dict) -> tuple[Account, dict]:
    """Another document in the posts collection `_setup` made."""
    response = await client.post(URL, json=fields, headers=user.headers)
    assert response.status_code == 201, response.text
    return user, response.json()


async def _ops(client: AsyncClient, account: Account, doc: dict, body: object) -> Response:
    return await client.post(f"{URL}/{doc['_id']}/ops", json=body, headers=account.headers)


async def _read(client: AsyncClient, account: Account, doc: dict) -> dict:
    response = await client.get(f"{URL}/{doc['_id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def _storage(app: FastAPI) -> AsyncCollection:
    """Where the posts are stored, to reach them behind the API's back."""
    collection: AsyncCollection = app.state.mongo[app.state.settings.database]["c_posts"]
    return collection


@pytest.fixture
def storage_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The reads (`find_one` is a `find`) and updates made on the posts' storage, in order."""
    calls: list[str] = []
    for method in ("find", "find_one_and_update", "update_one", "replace_one", "aggregate"):
        real = getattr(AsyncCollection, method)

        def spy(
            self: AsyncCollection, *args: Any, _real: Any = real, _name: str = method, **kw: Any
        ) -> Any:
            if self.name == "c_posts":
                calls.append(_name)
            return _real(self, *args, **kw)

        monkeypatch.setattr(AsyncCollection, method, spy)
    return calls


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


# --- increments sent without reading the document first -----------------------------------------


async def test_increments_alone_are_one_update_without_a_read(
    client: AsyncClient, storage_calls: list[str]
) -> None:
    user, doc = await _setup(client, {"likes": 1})
    storage_calls.clear()
    response = await _ops(client, user, doc, {"inc": {"likes": 2, "stats.views": 1}})
    assert response.status_code == 200, response.text
    assert storage_calls == ["find_one_and_update"]
    body = response.json()
    assert (body["likes"], body["stats"], body["_version"]) == (3, {"views": 1}, 2)
    assert response.headers["etag"] == '"2"'
    assert await _read(client, user, doc) == body


@pytest.mark.parametrize(
    ("fields", "ops", "headers"),
    [
        ({"level": 1}, {"inc": {"level": 1}}, {}),  # an enum needs the version
        ({"tags": []}, {"push": {"tags": "a"}}, {}),
        ({"likes": 1}, {"inc": {"likes": 1}}, {"If-Match": '"1"'}),
    ],
)
async def test_operations_that_need_the_stored_document_read_it_first(
    client: AsyncClient, storage_calls: list[str], fields: dict, ops: dict, headers: dict
) -> None:
    user, doc = await _setup(client, fields)
    storage_calls.clear()
    response = await client.post(
        f"{URL}/{doc['_id']}/ops", json=ops, headers={**user.headers, **headers}
    )
    assert response.status_code == 200, response.text
    assert storage_calls == ["find", "find_one_and_update"]
    assert response.json()["_version"] == 2


async def test_inc_on_an_enum_field_stays_within_the_enum(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"level": 1})
    assert (await _ops(client, user, doc, {"inc": {"level": 2}})).json()["level"] == 3
    _problem(await _ops(client, user, doc, {"inc": {"level": 1}}), 422)
    stored = await _read(client, user, doc)
    assert (stored["level"], stored["_version"]) == (3, 2)


async def test_inc_down_to_minimum_lands_and_past_it_is_refused(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"stock": 1})
    assert (await _ops(client, user, doc, {"inc": {"stock": -1}})).json()["stock"] == 0
    _problem(await _ops(client, user, doc, {"inc": {"stock": -1}}), 422)
    stored = await _read(client, user, doc)
    assert (stored["stock"], stored["_version"]) == (0, 2)


async def test_inc_creating_a_field_outside_its_bounds_is_refused(client: AsyncClient) -> None:
    user, doc = await _setup(client, {"name": "a"})
    for ops in ({"inc": {"stock": -1}}, {"inc": {"likes": 11}}):
        _problem(await _ops(client, user, doc, ops), 422)
    assert await _read(client, user, doc) == doc
    created = await _ops(client, user, doc, {"inc": {"likes": 10}})
    assert created.status_code == 200 and created.json()["likes"] == 10


@pytest.mark.parametrize(("start", "step"), [(INT64_MAX - 1, 1), (INT64_MIN + 1, -1)])
async def test_inc_past_64_bits_is_refused_and_value_unchanged(
    client: AsyncClient, start: int, step: int
) -> None:
    user, doc = await _setup(client, {"count": start})
    problem = _problem(await _ops(client, user, doc, {"inc": {"count": 2 * step}}), 422)
    assert ["body", "inc", "count"] in [error["loc"] for error in problem["errors"]]
    assert await _read(client, user, doc) == doc
    # Right at the limit, past what the unread guard admits: the read path lands it.
    edge = await _ops(client, user, doc, {"inc": {"count": step}})
    assert edge.status_code == 200, edge.text
    assert edge.json()["count"] == start + step


@pytest.mark.parametrize("value", ["many", [1], {"n": 1}])
async def test_inc_on_a_non_number_stored_behind_the_api_is_refused(
    app: FastAPI, client: AsyncClient, value: object
) -> None:
    user, doc = await _setup(client, {"likes": 1, "count": 1})
    storage = _storage(app)
    await storage.update_one({"_id": ObjectId(doc["_id"])}, {"$set": {"count": value}})
    before = await storage.find_one({"_id": ObjectId(doc["_id"])})
    problem = _problem(await _ops(client, user, doc, {"inc": {"likes": 1, "count": 1}}), 422)
    assert ["body", "inc", "count"] in [error["loc"] for error in problem["errors"]]
    assert await storage.find_one({"_id": ObjectId(doc["_id"])}) == before


@pytest.mark.parametrize(
    ("types", "value"), [(["integer", "boolean"], True), (["number", "null"], None)]
)
async def test_inc_on_a_boolean_or_null_the_schema_allows_is_refused(
    client: AsyncClient, types: list[str], value: object
) -> None:
    boss = await admin(client)
    properties = {"n": {"type": types}, "m": {"type": "integer"}}
    await create_collection(client, boss, "posts", {"type": "object", "properties": properties})
    doc = (await client.post(URL, json={"n": value, "m": 1}, headers=boss.headers)).json()
    problem = _problem(await _ops(client, boss, doc, {"inc": {"n": 1, "m": 1}}), 422)
    assert ["body", "inc", "n"] in [error["loc"] for error in problem["errors"]]
    assert await _read(client, boss, doc) == doc


async def test_inc_below_a_null_parent_is_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    meta = {"type": ["object", "null"], "properties": {"n": {"type": "integer"}}}
    await create_collection(client, boss, "posts", {"type": "object", "properties": {"meta": meta}})
    doc = (await client.post(URL, json={"meta": None}, headers=boss.headers)).json()
    problem = _problem(await _ops(client, boss, doc, {"inc": {"meta.n": 1}}), 422)
    assert ["body", "inc", "meta.n"] in [error["loc"] for error in problem["errors"]]
    assert await _read(client, boss, doc) == doc


async def test_inc_below_an_absent_parent_with_required_fields_is_refused(
    client: AsyncClient,
) -> None:
    user, doc = await _setup(client, {"name": "a"})
    _problem(await _ops(client, user, doc, {"inc": {"box.qty": 1}}), 422)
    assert await _read(client, user, doc) == doc
    _, boxed = await _setup_more(client, user, {"box": {"label": "b"}})
    response = await _ops(client, user, boxed, {"inc": {"box.qty": 2}})
    assert response.status_code == 200, response.text
    assert response.json()["box"] == {"label": "b", "qty": 2}


async def test_inc_onto_a_unique_value_taken_is_a_conflict(client: AsyncClient) -> None:
    boss = await admin(client)
    indexes = [{"fields": ["count"], "unique": True}]
    await create_collection(client, boss, "posts", POSTS, indexes=indexes)
    user = await register(client)
    _, first = await _setup_more(client, user, {"count": 1})
    await _setup_more(client, user, {"count": 2})
    # On MongoDB the detail names the unique value; the stand-in's findAndModify swallows the
    # duplicate-key error, so there the retries run out instead.
    _problem(await _ops(client, user, first, {"inc": {"count": 1}}), 409)
    assert await _read(client, user, first) == first


async def test_ops_change_only_the_document_named(client: AsyncClient) -> None:
    owner, doc = await _setup(client, {"likes": 1, "tags": ["a"]})
    other, theirs = await _setup_more(client, await register(client), {"likes": 1, "tags": ["a"]})
    for ops, headers in (
        ({"inc": {"likes": 1}}, {}),
        ({"inc": {"likes": 1}}, {"If-Match": '"2"'}),
        ({"add_to_set": {"tags": "b"}}, {}),
    ):
        url = f"{URL}/{theirs['_id']}/ops"
        response = await client.post(url, json=ops, headers={**other.headers, **headers})
        assert response.status_code == 200, response.text
    assert await _read(client, owner, doc) == doc
    changed = await _read(client, other, theirs)
    assert (changed["likes"], changed["tags"], changed["_version"]) == (3, ["a", "b"], 4)


async def test_a_document_out_of_reach_is_404_before_invalid_operations(
    client: AsyncClient,
) -> None:
    owner, doc = await _setup(client, {"likes": 1})
    other = await register(client)
    for bad in ({"inc": {"likes": "1"}}, [1], "inc"):
        for account, doc_id in ((other, doc["_id"]), (owner, "5f" + "0" * 22), (owner, "nope")):
            response = await client.post(f"{URL}/{doc_id}/ops", json=bad, headers=account.headers)
            assert _problem(response, 404)["detail"] == "Document not found"
        _problem(await _ops(client, owner, doc, bad), 422)


async def test_inc_under_a_bound_beyond_64_bits_lands_on_the_read_path_too(
    client: AsyncClient,
) -> None:
    # The guard's `maximum - delta` is a whole number past int64: it must go out as a double.
    user, doc = await _setup(client, {"mass": 5.0})
    for if_match in (False, True):
        headers = user.headers | ({"If-Match": f'"{doc["_version"]}"'} if if_match else {})
        response = await client.post(
            f"{URL}/{doc['_id']}/ops", json={"inc": {"mass": 2.0}}, headers=headers
        )
        assert response.status_code == 200, response.text
        doc = response.json()
    assert doc["mass"] == 9.0
