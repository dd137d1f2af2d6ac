"""Documents over HTTP: create, read, replace, merge-patch and delete under a collection's rules."""

import re
from datetime import datetime

import pytest
from bson import ObjectId
from httpx import AsyncClient, Response

from tests.factories import Account, admin, create_collection, register

PROBLEM = "application/problem+json"
SYSTEM_KEYS = {"_id", "_owner", "_created", "_updated", "_version"}
URL = "/v1/collections/books/documents"
BOOKS = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "available": {"type": "boolean"},
        "status": {"type": "string", "default": "draft"},
        "published": {"type": "string", "format": "date-time"},
        "isbn": {"type": "string"},
        "secret": {"type": "string", "writeOnly": True},
        "meta": {
            "type": "object",
            "properties": {"pages": {"type": "integer"}, "lang": {"type": "string"}},
        },
    },
}
OPEN = {"type": "object", "additionalProperties": True, "properties": {"title": {"type": "string"}}}
RESERVED = {
    "_id": {"_id": "5f" + "0" * 22},
    "_owner": {"_owner": "someone"},
    "_version": {"_version": 7},
    "$set": {"$set": {"title": "x"}},
    "nested-$gt": {"meta": {"$gt": 1}},
    "dotted": {"meta.pages": 3},
    "__proto__": {"__proto__": {"admin": True}},
}
UNIQUE_ISBN = [{"fields": ["isbn"], "unique": True}]


async def _setup(client: AsyncClient) -> tuple[Account, Account]:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS, indexes=UNIQUE_ISBN)
    return boss, await register(client)


async def _create(client: AsyncClient, account: Account, fields: dict) -> dict:
    response = await client.post(URL, json=fields, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


async def _get(client: AsyncClient, account: Account, doc: dict) -> Response:
    return await client.get(f"{URL}/{doc['_id']}", headers=account.headers)


async def _all(client: AsyncClient, boss: Account) -> list[dict]:
    response = await client.get(URL, headers=boss.headers)
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


def _problem(response: Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict = response.json()
    assert body["status"] == status
    return body


def _fields(document: dict) -> dict:
    return {key: value for key, value in document.items() if key not in SYSTEM_KEYS}


def _is_utc(text: str) -> bool:
    return text.endswith("Z") and datetime.fromisoformat(text.replace("Z", "+00:00")) is not None


async def test_create_returns_201_location_etag_and_system_fields(client: AsyncClient) -> None:
    _, user = await _setup(client)
    response = await client.post(URL, json={"title": "Dune", "year": 1965}, headers=user.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"[0-9a-f]{24}", body["_id"])
    assert response.headers["location"] == f"{URL}/{body['_id']}"
    assert response.headers["etag"]
    assert body["_owner"] == user.id
    assert body["_version"] == 1
    assert _is_utc(body["_created"]) and _is_utc(body["_updated"])
    assert body["_created"] == body["_updated"]
    assert _fields(body) == {"title": "Dune", "year": 1965, "status": "draft"}


@pytest.mark.parametrize("schema", [BOOKS, OPEN], ids=["closed", "open"])
@pytest.mark.parametrize("extra", list(RESERVED.values()), ids=list(RESERVED))
async def test_reserved_keys_in_body_are_refused_and_nothing_stored(
    client: AsyncClient, schema: dict, extra: dict
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", schema)
    response = await client.post(URL, json={"title": "Dune", **extra}, headers=boss.headers)
    body = _problem(response, 422)
    assert body["errors"] and all(error["loc"][0] == "body" for error in body["errors"])
    assert await _all(client, boss) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("year", "1999"), ("available", "yes"), ("year", 1.5), ("available", 1), ("title", 5)],
)
async def test_validation_is_strict(client: AsyncClient, field: str, value: object) -> None:
    boss, user = await _setup(client)
    response = await client.post(URL, json={"title": "t", field: value}, headers=user.headers)
    body = _problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["body", field]]
    assert all(isinstance(error["msg"], str) and error["msg"] for error in body["errors"])
    assert await _all(client, boss) == []


async def test_unknown_field_is_refused_by_default(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    response = await client.post(URL, json={"title": "t", "colour": "red"}, headers=user.headers)
    body = _problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["body", "colour"]]
    assert await _all(client, boss) == []


async def test_missing_required_field_is_refused(client: AsyncClient) -> None:
    _, user = await _setup(client)
    body = _problem(await client.post(URL, json={"year": 1}, headers=user.headers), 422)
    assert [error["loc"] for error in body["errors"]] == [["body", "title"]]


async def test_defaults_are_filled_in_and_stored(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "Dune"})
    assert doc["status"] == "draft"
    assert (await _get(client, user, doc)).json()["status"] == "draft"
    given = await _create(client, user, {"title": "Emma", "status": "final"})
    assert given["status"] == "final"


async def test_date_time_round_trips(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "Dune", "published": "2026-01-31T12:00:00Z"})
    assert doc["published"] == "2026-01-31T12:00:00Z"
    assert (await _get(client, user, doc)).json()["published"] == "2026-01-31T12:00:00Z"
    patched = await client.patch(f"{URL}/{doc['_id']}", json={"year": 1}, headers=user.headers)
    assert patched.json()["published"] == "2026-01-31T12:00:00Z"
    response = await client.post(
        URL, json={"title": "t", "published": "31/01/2026"}, headers=user.headers
    )
    assert [e["loc"] for e in _problem(response, 422)["errors"]] == [["body", "published"]]


async def test_get_returns_document_with_etag(client: AsyncClient) -> None:
    _, user = await _setup(client)
    created = await client.post(URL, json={"title": "Dune"}, headers=user.headers)
    response = await _get(client, user, created.json())
    assert response.status_code == 200
    assert response.json() == created.json()
    assert response.headers["etag"] == created.headers["etag"]


async def test_if_none_match_answers_304_until_changed(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "Dune"})
    url = f"{URL}/{doc['_id']}"
    tag = (await client.get(url, headers=user.headers)).headers["etag"]
    same = await client.get(url, headers={**user.headers, "If-None-Match": tag})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == tag
    await client.patch(url, json={"year": 1}, headers=user.headers)
    changed = await client.get(url, headers={**user.headers, "If-None-Match": tag})
    assert changed.status_code == 200 and changed.json()["year"] == 1
    assert changed.headers["etag"] != tag


@pytest.mark.parametrize("doc_id", ["nope", "123", str(ObjectId()), "0" * 24])
async def test_malformed_or_unknown_id_is_404(client: AsyncClient, doc_id: str) -> None:
    _, user = await _setup(client)
    await _create(client, user, {"title": "Dune"})
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {"title": "x"} if method in ("PUT", "PATCH") else None
        response = await client.request(method, f"{URL}/{doc_id}", json=body, headers=user.headers)
        _problem(response, 404)


async def test_put_replaces_the_whole_document(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "Dune", "year": 1965, "meta": {"pages": 412}})
    response = await client.put(
        f"{URL}/{doc['_id']}", json={"title": "Dune II"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert _fields(body) == {"title": "Dune II", "status": "draft"}
    assert body["_version"] == 2 and body["_id"] == doc["_id"]
    assert body["_created"] == doc["_created"] and body["_owner"] == user.id
    assert response.headers["etag"] != ""
    assert (await _get(client, user, doc)).json() == body


async def test_patch_merges_and_null_removes(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(
        client, user, {"title": "Dune", "year": 1965, "meta": {"pages": 412, "lang": "en"}}
    )
    response = await client.patch(
        f"{URL}/{doc['_id']}",
        json={"year": None, "meta": {"lang": "fr"}, "available": True},
        headers={**user.headers, "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "year" not in body
    assert body["meta"] == {"pages": 412, "lang": "fr"}
    assert body["title"] == "Dune" and body["available"] is True
    assert body["_version"] == 2
    assert (await _get(client, user, doc)).json() == body


async def test_patch_is_validated_on_the_merged_result(client: AsyncClient) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "Dune", "year": 1965})
    url = f"{URL}/{doc['_id']}"
    for patch, loc in (({"title": None}, ["body", "title"]), ({"year": "x"}, ["body", "year"])):
        body = _problem(await client.patch(url, json=patch, headers=user.headers), 422)
        assert [error["loc"] for error in body["errors"]] == [loc]
    assert (await client.get(url, headers=user.headers)).json() == doc


@pytest.mark.parametrize(
    ("method", "body", "ok"),
    [
        ("PUT", {"title": "New"}, 200),
        ("PATCH", {"year": 2}, 200),
        ("POST", {"inc": {"year": 1}}, 200),
        ("DELETE", None, 204),
    ],
)
async def test_if_match_guards_every_write(
    client: AsyncClient, method: str, body: dict | None, ok: int
) -> None:
    _, user = await _setup(client)
    doc = await _create(client, user, {"title": "Dune", "year": 1})
    url = f"{URL}/{doc['_id']}" + ("/ops" if method == "POST" else "")
    current = (await _get(client, user, doc)).headers["etag"]
    await client.patch(f"{URL}/{doc['_id']}", json={"year": 5}, headers=user.headers)
    stale = await client.request(
        method, url, json=body, headers={**user.headers, "If-Match": current}
    )
    _problem(stale, 412)
    after = await _get(client, user, doc)
    assert after.json()["_version"] == 2 and after.json()["year"] == 5
    fresh = await client.request(
        method, url, json=body, headers={**user.headers, "If-Match": after.headers["etag"]}
    )
    assert fresh.status_code == ok, fresh.text
    if ok == 200:
        assert fresh.json()["_version"] == 3
        assert fresh.headers["etag"] not in (current, after.headers["etag"])


async def test_delete_then_gone(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    doc = await _create(client, user, {"title": "Dune"})
    response = await client.delete(f"{URL}/{doc['_id']}", headers=user.headers)
    assert response.status_code == 204 and response.content == b""
    _problem(await _get(client, user, doc), 404)
    _problem(await client.delete(f"{URL}/{doc['_id']}", headers=user.headers), 404)
    assert await _all(client, boss) == []


async def test_unique_violation_on_create_and_patch_conflicts(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    first = await _create(client, user, {"title": "A", "isbn": "111"})
    _problem(await client.post(URL, json={"title": "B", "isbn": "111"}, headers=user.headers), 409)
    second = await _create(client, user, {"title": "B"})  # absent values don't collide
    third = await _create(client, user, {"title": "C"})
    assert third["_id"] != second["_id"]
    clash = await client.patch(f"{URL}/{second['_id']}", json={"isbn": "111"}, headers=user.headers)
    _problem(clash, 409)
    assert "isbn" not in (await _get(client, user, second)).json()
    assert [d["_id"] for d in await _all(client, boss)] == [
        first["_id"],
        second["_id"],
        third["_id"],
    ]


async def test_write_only_field_is_hidden_from_owner_but_shown_to_admin(
    client: AsyncClient,
) -> None:
    boss, user = await _setup(client)
    created = await client.post(URL, json={"title": "Dune", "secret": "s3"}, headers=user.headers)
    assert created.status_code == 201 and "secret" not in created.json()
    doc = created.json()
    read = await _get(client, user, doc)
    assert read.status_code == 200 and "secret" not in read.json() and "s3" not in read.text
    patched = await client.patch(f"{URL}/{doc['_id']}", json={"year": 1}, headers=user.headers)
    assert patched.status_code == 200 and "secret" not in patched.json()
    as_admin = await _get(client, boss, doc)
    assert as_admin.status_code == 200 and as_admin.json()["secret"] == "s3"


@pytest.mark.parametrize("schema", [BOOKS, OPEN], ids=["closed", "open"])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_system_fields_cannot_be_rewritten(
    client: AsyncClient, schema: dict, method: str
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", schema)
    doc = await _create(client, boss, {"title": "Dune"})
    for extra in (
        {"_owner": "5f" + "0" * 22},
        {"_version": 99},
        {"_created": "2000-01-01T00:00:00Z"},
    ):
        response = await client.request(
            method, f"{URL}/{doc['_id']}", json={"title": "X", **extra}, headers=boss.headers
        )
        assert _problem(response, 422)["errors"]
    assert (await _get(client, boss, doc)).json() == doc


async def test_write_only_field_is_hidden_in_lists_and_unfilterable(client: AsyncClient) -> None:
    boss, user = await _setup(client)
    await _create(client, user, {"title": "Dune", "secret": "s3"})
    listed = await client.get(URL, headers=user.headers)
    assert listed.status_code == 200 and listed.json()["items"][0]["title"] == "Dune"
    assert "secret" not in listed.json()["items"][0] and "s3" not in listed.text
    query = await client.get(URL, params={"filter": '{"secret": "s3"}'}, headers=user.headers)
    _problem(query, 400)
    by_admin = await client.get(URL, params={"filter": '{"secret": "s3"}'}, headers=boss.headers)
    assert [item["secret"] for item in by_admin.json()["items"]] == ["s3"]


async def test_writer_without_read_access_gets_only_system_fields(client: AsyncClient) -> None:
    boss = await admin(client)
    rules = {"create": ["public"], "read": ["owner"], "update": ["public"]}
    await create_collection(client, boss, "books", BOOKS, rules=rules)
    created = await client.post(URL, json={"title": "A"})
    assert created.status_code == 201, created.text
    doc = created.json()
    assert set(doc) == SYSTEM_KEYS and doc["_owner"] is None and doc["_version"] == 1
    for method, body in (("PATCH", {"year": 2}), ("PUT", {"title": "B", "year": 3})):
        response = await client.request(method, f"{URL}/{doc['_id']}", json=body)
        assert response.status_code == 200, response.text
        assert set(response.json()) == SYSTEM_KEYS
    ops = await client.post(f"{URL}/{doc['_id']}/ops", json={"inc": {"year": 1}})
    assert ops.status_code == 200 and set(ops.json()) == SYSTEM_KEYS
    stored = (await _get(client, boss, doc)).json()
    assert stored["title"] == "B" and stored["year"] == 4 and stored["_version"] == 4
