"""Collection definitions over HTTP: `/v1/collections[/{name}]`, for admins only."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from api.routes import collections as routes
from tests.factories import Account, admin, create_collection, register

PROBLEM = "application/problem+json"
DEFINITION_KEYS = {"id", "name", "schema", "rules", "indexes", "version", "created", "updated"}
DEFAULT_RULES = {
    "list": ["owner"],
    "read": ["owner"],
    "create": ["authenticated"],
    "update": ["owner"],
    "delete": ["owner"],
}
BOOKS: dict[str, Any] = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "isbn": {"type": "string"},
    },
}


ROUTES: list[tuple[str, str, dict | None]] = [
    ("POST", "/v1/collections", {"name": "other", "schema": BOOKS}),
    ("GET", "/v1/collections", None),
    ("GET", "/v1/collections/books", None),
    ("PATCH", "/v1/collections/books", {"rules": {"read": ["public"]}}),
    ("DELETE", "/v1/collections/books", None),
]


def _definition(name: str = "books", **extra: object) -> dict:
    return {"name": name, "schema": BOOKS, **extra}


def _assert_problem(response: Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict = response.json()
    assert body["status"] == status
    return body


def _locs(body: dict) -> list[list]:
    return [error["loc"] for error in body["errors"]]


async def _document(client: AsyncClient, account: Account, name: str, fields: dict) -> dict:
    response = await client.post(
        f"/v1/collections/{name}/documents", json=fields, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


async def test_admin_creates_collection_with_full_definition(client: AsyncClient) -> None:
    boss = await admin(client)
    indexes = [{"fields": ["isbn"], "unique": True}, {"text": ["title"]}]
    response = await client.post(
        "/v1/collections", json=_definition(indexes=indexes), headers=boss.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == DEFINITION_KEYS
    assert len(body["id"]) == 24 and int(body["id"], 16) >= 0
    assert body["name"] == "books"
    assert body["schema"] == BOOKS
    assert body["rules"] == DEFAULT_RULES
    assert body["indexes"][0]["fields"] == ["isbn"] and body["indexes"][0]["unique"] is True
    assert body["indexes"][1]["text"] == ["title"]
    assert body["version"] == 1
    assert body["created"].endswith("Z") and body["updated"].endswith("Z")


async def test_partial_rules_are_merged_with_defaults(client: AsyncClient) -> None:
    boss = await admin(client)
    created = await create_collection(client, boss, "books", BOOKS, rules={"read": ["public"]})
    assert created["rules"] == {**DEFAULT_RULES, "read": ["public"]}
    fetched = await client.get("/v1/collections/books", headers=boss.headers)
    assert fetched.json()["rules"] == {**DEFAULT_RULES, "read": ["public"]}


@pytest.mark.parametrize(
    "rules", [{"share": ["public"]}, {"read": ["everyone"]}, {"read": "public"}]
)
async def test_bad_rules_are_refused(client: AsyncClient, rules: dict) -> None:
    boss = await admin(client)
    response = await client.post(
        "/v1/collections", json=_definition(rules=rules), headers=boss.headers
    )
    body = _assert_problem(response, 422)
    assert all(loc[:2] == ["body", "rules"] for loc in _locs(body))
    assert (await client.get("/v1/collections/books", headers=boss.headers)).status_code == 404


async def test_non_admin_is_forbidden_on_every_collection_route(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    user = await register(client)
    for method, url, body in ROUTES:
        _assert_problem(await client.request(method, url, json=body, headers=user.headers), 403)
    listed = await client.get("/v1/collections", headers=boss.headers)
    assert [item["name"] for item in listed.json()["items"]] == ["books"]
    assert listed.json()["items"][0]["version"] == 1


async def test_anonymous_caller_gets_401_with_challenge(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    for method, url, body in ROUTES:
        response = await client.request(method, url, json=body)
        _assert_problem(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    fetched = await client.get("/v1/collections/books", headers=boss.headers)
    assert fetched.json()["version"] == 1


@pytest.mark.parametrize("name", ["Books", "1x", "a-b", "a" * 64, "", "_x", "books\n"])
async def test_bad_collection_names_are_refused(client: AsyncClient, name: str) -> None:
    boss = await admin(client)
    response = await client.post("/v1/collections", json=_definition(name), headers=boss.headers)
    body = _assert_problem(response, 422)
    assert ["body", "name"] in _locs(body)


async def test_longest_allowed_name_is_accepted(client: AsyncClient) -> None:
    boss = await admin(client)
    created = await create_collection(client, boss, "b" * 63, BOOKS)
    assert created["name"] == "b" * 63


async def test_duplicate_collection_name_conflicts(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    response = await client.post("/v1/collections", json=_definition(), headers=boss.headers)
    _assert_problem(response, 409)
    listed = await client.get("/v1/collections", headers=boss.headers)
    assert [item["name"] for item in listed.json()["items"]] == ["books"]


@pytest.mark.parametrize(
    ("properties", "loc"),
    [
        ({"a": {"type": "string", "oneOf": []}}, ["properties", "a", "oneOf"]),
        ({"_x": {"type": "string"}}, ["properties", "_x"]),
        ({"a.b": {"type": "string"}}, ["properties", "a.b"]),
        ({"$x": {"type": "string"}}, ["properties", "$x"]),
        (
            {"o": {"type": "object", "properties": {"$in": {"type": "string"}}}},
            ["properties", "o", "properties", "$in"],
        ),
    ],
)
async def test_bad_schema_is_refused_naming_the_path(
    client: AsyncClient, properties: dict, loc: list
) -> None:
    boss = await admin(client)
    schema = {"type": "object", "properties": properties}
    response = await client.post(
        "/v1/collections", json={"name": "bad", "schema": schema}, headers=boss.headers
    )
    body = _assert_problem(response, 422)
    assert ["body", "schema", *loc] in _locs(body)
    assert (await client.get("/v1/collections/bad", headers=boss.headers)).status_code == 404


async def test_index_on_unknown_field_is_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    indexes = [{"fields": ["title"]}, {"fields": ["author"], "unique": True}]
    response = await client.post(
        "/v1/collections", json=_definition(indexes=indexes), headers=boss.headers
    )
    body = _assert_problem(response, 422)
    assert _locs(body) == [["body", "indexes", 1]]
    assert "author" in body["errors"][0]["msg"]
    assert (await client.get("/v1/collections/books", headers=boss.headers)).status_code == 404


async def test_two_text_indexes_are_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    indexes = [{"text": ["title"]}, {"text": ["isbn"]}]
    response = await client.post(
        "/v1/collections", json=_definition(indexes=indexes), headers=boss.headers
    )
    body = _assert_problem(response, 422)
    assert ["body", "indexes"] in _locs(body)


HIDDEN_NOTES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "note": {"type": "string", "writeOnly": True},
        "card": {
            "type": "object",
            "writeOnly": True,
            "properties": {"pin": {"type": "string"}},
        },
    },
}


@pytest.mark.parametrize("path", ["note", "card.pin"])
async def test_text_index_over_a_write_only_field_is_refused(
    client: AsyncClient, path: str
) -> None:
    # A search by it would find documents by what only admins may read.
    boss = await admin(client)
    definition = {"name": "notes", "schema": HIDDEN_NOTES, "indexes": [{"text": ["title", path]}]}
    response = await client.post("/v1/collections", json=definition, headers=boss.headers)
    body = _assert_problem(response, 422)
    assert body["errors"] == [
        {"loc": ["body", "indexes", 0], "msg": f"text index field '{path}' is write-only"}
    ]


async def test_a_schema_that_makes_a_text_indexed_field_write_only_is_refused(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS, indexes=[{"text": ["title", "isbn"]}])
    hidden = {
        **BOOKS,
        "properties": {**BOOKS["properties"], "isbn": {"type": "string", "writeOnly": True}},
    }
    response = await client.patch(
        "/v1/collections/books", json={"schema": hidden}, headers=boss.headers
    )
    _assert_problem(response, 422)
    kept = await client.get("/v1/collections/books", headers=boss.headers)
    assert "writeOnly" not in kept.json()["schema"]["properties"]["isbn"]


async def test_list_and_read_collections(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "movies", BOOKS)
    books = await create_collection(client, boss, "books", BOOKS)
    listed = await client.get("/v1/collections", headers=boss.headers)
    assert listed.status_code == 200
    body = listed.json()
    assert [item["name"] for item in body["items"]] == ["books", "movies"]
    assert body["next_cursor"] is None
    assert all(set(item) == DEFINITION_KEYS for item in body["items"])
    one = await client.get("/v1/collections/books", headers=boss.headers)
    assert one.status_code == 200
    assert one.json() == books


async def test_unknown_collection_is_404(client: AsyncClient) -> None:
    boss = await admin(client)
    for method, url, body in [*ROUTES[2:], ("GET", "/v1/collections/books/documents", None)]:
        _assert_problem(await client.request(method, url, json=body, headers=boss.headers), 404)


async def test_schema_change_that_documents_fail_is_refused_naming_them(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    user = await register(client)
    short = await _document(client, user, "books", {"title": "Up"})
    long_ = [await _document(client, user, "books", {"title": f"Long {i}"}) for i in range(2)]
    title = {"type": "string", "maxLength": 3}
    strict = {**BOOKS, "properties": {**BOOKS["properties"], "title": title}}
    response = await client.patch(
        "/v1/collections/books", json={"schema": strict}, headers=boss.headers
    )
    body = _assert_problem(response, 409)
    for doc in long_:
        assert doc["_id"] in body["detail"]
    assert short["_id"] not in body["detail"]
    unchanged = await client.get("/v1/collections/books", headers=boss.headers)
    assert unchanged.json()["schema"] == BOOKS and unchanged.json()["version"] == 1
    still_old = await client.post(
        "/v1/collections/books/documents", json={"title": "Still long"}, headers=user.headers
    )
    assert still_old.status_code == 201, still_old.text


async def test_fitting_change_bumps_version_and_applies_at_once(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    owner, other = await register(client), await register(client)
    doc = await _document(client, owner, "books", {"title": "Dune"})
    url = f"/v1/collections/books/documents/{doc['_id']}"
    assert (await client.get(url, headers=other.headers)).status_code == 404
    wider = {**BOOKS, "properties": {**BOOKS["properties"], "pages": {"type": "integer"}}}
    response = await client.patch(
        "/v1/collections/books",
        json={"schema": wider, "rules": {"read": ["authenticated"]}},
        headers=boss.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert body["schema"] == wider
    assert body["rules"] == {**DEFAULT_RULES, "read": ["authenticated"]}
    seen = await client.get(url, headers=other.headers)
    assert seen.status_code == 200 and seen.json()["title"] == "Dune"
    paged = await client.post(
        "/v1/collections/books/documents", json={"title": "X", "pages": 3}, headers=owner.headers
    )
    assert paged.status_code == 201 and paged.json()["pages"] == 3


async def test_unique_index_over_duplicate_values_conflicts(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    user = await register(client)
    for title in ("A", "B"):
        await _document(client, user, "books", {"title": title, "isbn": "same"})
    response = await client.patch(
        "/v1/collections/books",
        json={"indexes": [{"fields": ["isbn"], "unique": True}]},
        headers=boss.headers,
    )
    _assert_problem(response, 409)
    unchanged = await client.get("/v1/collections/books", headers=boss.headers)
    assert unchanged.json()["indexes"] == [] and unchanged.json()["version"] == 1


async def test_refused_index_change_keeps_the_old_unique_index(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(
        client, boss, "books", BOOKS, indexes=[{"fields": ["title"], "unique": True}]
    )
    user = await register(client)
    for title in ("A", "B"):
        await _document(client, user, "books", {"title": title, "isbn": "same"})
    response = await client.patch(
        "/v1/collections/books",
        json={"indexes": [{"fields": ["isbn"], "unique": True}]},
        headers=boss.headers,
    )
    _assert_problem(response, 409)
    unchanged = (await client.get("/v1/collections/books", headers=boss.headers)).json()
    assert [spec["fields"] for spec in unchanged["indexes"]] == [["title"]]
    clash = await client.post(
        "/v1/collections/books/documents", json={"title": "A"}, headers=user.headers
    )
    _assert_problem(clash, 409)


async def test_unique_index_added_by_patch_is_enforced(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    user = await register(client)
    await _document(client, user, "books", {"title": "A", "isbn": "one"})
    response = await client.patch(
        "/v1/collections/books",
        json={"indexes": [{"fields": ["isbn"], "unique": True}]},
        headers=boss.headers,
    )
    assert response.status_code == 200, response.text
    clash = await client.post(
        "/v1/collections/books/documents", json={"title": "B", "isbn": "one"}, headers=user.headers
    )
    _assert_problem(clash, 409)


async def test_delete_collection_drops_it_and_its_documents(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    doc = await _document(client, boss, "books", {"title": "Dune"})
    response = await client.delete("/v1/collections/books", headers=boss.headers)
    assert response.status_code == 204 and response.content == b""
    _assert_problem(await client.get("/v1/collections/books", headers=boss.headers), 404)
    url = f"/v1/collections/books/documents/{doc['_id']}"
    _assert_problem(await client.get(url, headers=boss.headers), 404)
    await create_collection(client, boss, "books", BOOKS)
    _assert_problem(await client.get(url, headers=boss.headers), 404)
    listed = await client.get("/v1/collections/books/documents", headers=boss.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_schema_change_names_at_most_ten_misfits(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    operations = [{"insert": {"title": f"t{i}", "year": i}} for i in range(12)]
    response = await client.post(
        "/v1/collections/books/bulk", json={"operations": operations}, headers=boss.headers
    )
    ids = {result["_id"] for result in response.json()["results"]}
    assert len(ids) == 12
    narrowed = {**BOOKS, "properties": {"title": {"type": "string"}}}
    refused = await client.patch(
        "/v1/collections/books", json={"schema": narrowed}, headers=boss.headers
    )
    body = _assert_problem(refused, 409)
    named = [error["loc"][0] for error in body["errors"]]
    assert len(named) == 10 and set(named) <= ids
    assert all(error["loc"][1:] == ["year"] for error in body["errors"])


async def test_missing_collection_is_not_revealed_before_authorisation(
    client: AsyncClient,
) -> None:
    user = await register(client)
    for method, url, body in ROUTES[2:]:
        missing = url.replace("books", "missing")
        _assert_problem(await client.request(method, missing, json=body), 401)
        _assert_problem(await client.request(method, missing, json=body, headers=user.headers), 403)


async def test_indexes_change_on_a_collection_with_a_text_index_and_documents(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS, indexes=[{"text": ["title"]}])
    user = await register(client)
    await _document(client, user, "books", {"title": "Dune"})
    response = await client.patch(
        "/v1/collections/books",
        json={"indexes": [{"text": ["title"]}, {"fields": ["year"]}]},
        headers=boss.headers,
    )
    assert response.status_code == 200, response.text
    found = await client.get(
        "/v1/collections/books/documents", params={"q": "dune"}, headers=user.headers
    )
    assert [item["title"] for item in found.json()["items"]] == ["Dune"]


async def _index_keys(app: FastAPI, name: str) -> list[list[tuple[str, int]]]:
    storage = app.state.mongo[app.state.settings.database][f"c_{name}"]
    listed = await storage.index_information()
    return sorted([(path, int(way)) for path, way in info["key"]] for info in listed.values())


async def test_an_owner_index_of_an_older_shape_is_replaced_when_the_indexes_change(
    client: AsyncClient, app: FastAPI
) -> None:
    if not app.state.traits.id_in_compound_index:
        pytest.skip("the server keeps `_owner` alone")
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    owner_id, owner = [("_owner", 1), ("_id", 1)], [("_owner", 1)]
    assert await _index_keys(app, "books") == [[("_id", 1)], owner_id]
    # As a stand-in data directory from before the stand-in took `_owner, _id` has it.
    storage = app.state.mongo[app.state.settings.database]["c_books"]
    for name in await storage.index_information():
        if name != "_id_":
            await storage.drop_index(name)
    await storage.create_index(owner)
    user = await register(client)
    await _document(client, user, "books", {"title": "Dune", "year": 1965})
    response = await client.patch(
        "/v1/collections/books", json={"indexes": [{"fields": ["year"]}]}, headers=boss.headers
    )
    assert response.status_code == 200, response.text
    assert await _index_keys(app, "books") == [[("_id", 1)], owner_id, [("year", 1)]]
    listed = await client.get("/v1/collections/books/documents", headers=user.headers)
    assert [item["title"] for item in listed.json()["items"]] == ["Dune"]


async def test_losing_a_race_to_change_the_indexes_leaves_the_winners_built(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await admin(client)
    pair = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    await create_collection(client, boss, "pairs", pair)
    real = routes.apply_indexes
    raced = False

    async def racing(collection: Any, previous: Any = None) -> None:
        # Another admin's change runs whole while this one is between its read and its write.
        nonlocal raced
        if not raced:
            raced = True
            winner = await client.patch(
                "/v1/collections/pairs",
                json={"indexes": [{"fields": ["b"], "unique": True}]},
                headers=boss.headers,
            )
            assert winner.status_code == 200, winner.text
        await real(collection, previous)

    monkeypatch.setattr(routes, "apply_indexes", racing)
    loser = await client.patch(
        "/v1/collections/pairs",
        json={"indexes": [{"fields": ["a"], "unique": True}]},
        headers=boss.headers,
    )
    monkeypatch.undo()
    _assert_problem(loser, 409)
    documents = "/v1/collections/pairs/documents"
    for status in (201, 409):  # the winner's unique index holds
        response = await client.post(documents, json={"b": "same"}, headers=boss.headers)
        assert response.status_code == status, response.text
    for b in ("one", "two"):  # and the loser's is gone
        response = await client.post(documents, json={"a": "same", "b": b}, headers=boss.headers)
        assert response.status_code == 201, response.text
