"""Streaming import: NDJSON, CSV and JSON arrays, per-row errors, upserts, limits and rules."""

import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from api.main import create_app
from api.settings import Settings
from tests.factories import Account, admin, another_app, create_collection, register

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}
BOOKS = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "title": {"type": "string", "minLength": 1},
        "year": {"type": "integer"},
        "price": {"type": "number"},
        "available": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "note": {"type": ["string", "integer"]},
    },
    "required": ["title"],
}
NOT_ARRAY = '{"not": "array"}'
UNIQUE_SKU = [{"fields": ["sku"], "unique": True}, {"fields": ["year"]}]


async def books(client: AsyncClient, boss: Account, rules: dict | None = None) -> None:
    await create_collection(client, boss, "books", BOOKS, rules=rules, indexes=UNIQUE_SKU)


def ndjson(*records: object) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


async def send(
    client: AsyncClient,
    body: str | bytes,
    who: Account | None,
    headers: dict[str, str] = NDJSON,
    **params: str,
) -> Response:
    auth = who.headers if who is not None else {}
    return await client.post(
        "/v1/collections/books/import", content=body, params=params, headers={**headers, **auth}
    )


async def stored(client: AsyncClient, boss: Account) -> list[dict]:
    response = await client.get(
        "/v1/collections/books/documents", params={"limit": 1000}, headers=boss.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


def report(inserted: int = 0, updated: int = 0, errors: list | None = None) -> dict:
    errors = errors or []
    return {"inserted": inserted, "updated": updated, "failed": len(errors), "errors": errors}


# Happy paths


async def test_ndjson_import_inserts_every_record(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = ndjson(*({"title": f"Book {n}", "year": 2000 + n} for n in range(3)))
    response = await send(client, body, boss)
    assert response.status_code == 200, response.text
    assert response.json() == report(inserted=3)
    docs = await stored(client, boss)
    assert [(d["title"], d["year"], d["_version"]) for d in docs] == [
        ("Book 0", 2000, 1),
        ("Book 1", 2001, 1),
        ("Book 2", 2002, 1),
    ]
    assert {d["_owner"] for d in docs} == {boss.id}


async def test_csv_import_inserts_rows(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = "title,year\r\nDune,1965\r\nEmma,1815\r\n"
    response = await send(client, body, boss, CSV)
    assert response.status_code == 200, response.text
    assert response.json() == report(inserted=2)
    assert sorted((d["title"], d["year"]) for d in await stored(client, boss)) == [
        ("Dune", 1965),
        ("Emma", 1815),
    ]


async def test_json_array_import_inserts_items(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = json.dumps([{"title": "Dune", "price": 9.5}, {"title": "Emma", "price": 3}])
    response = await send(client, body, boss, JSON)
    assert response.status_code == 200, response.text
    assert response.json() == report(inserted=2)
    assert sorted(d["price"] for d in await stored(client, boss)) == [3, 9.5]


async def test_format_parameter_reads_a_body_without_content_type(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    response = await send(client, ndjson({"title": "Dune"}), boss, {}, format="ndjson")
    assert response.status_code == 200, response.text
    assert response.json() == report(inserted=1)


async def test_streamed_body_of_several_batches_is_imported(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)

    async def lines() -> AsyncIterator[bytes]:
        for n in range(2500):
            yield (json.dumps({"title": f"Book {n}", "year": n}) + "\n").encode()

    response = await client.post(
        "/v1/collections/books/import", content=lines(), headers={**NDJSON, **boss.headers}
    )
    assert response.status_code == 200, response.text
    assert response.json() == report(inserted=2500)


# Per-row errors


async def test_ndjson_errors_name_their_lines_counting_blank_ones(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = (
        '{"title": "one"}\n'
        "\n"
        "{not json\n"
        "[1, 2]\n"
        '{"title": ""}\n'
        '{"title": "six", "$where": 1}\n'
        '{"title": "seven"}'
    )
    response = await send(client, body, boss)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["inserted"], result["updated"], result["failed"]) == (2, 0, 4)
    assert [error["line"] for error in result["errors"]] == [3, 4, 5, 6]
    details = [error["detail"] for error in result["errors"]]
    assert details[0] == "The line is not valid JSON"
    assert details[1] == "The record is not a JSON object"
    assert details[2].startswith("The record does not fit the schema: title:")
    assert "$where" in details[3]


async def test_csv_row_errors_count_a_quoted_newline_row_by_its_first_line(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = 'title,year\nfirst,1\n"two\nline title",2\nthird,x\n\nfifth,5\n,6\n'
    response = await send(client, body, boss, CSV)
    assert response.status_code == 200, response.text
    assert response.json() == report(
        inserted=3,
        errors=[
            {"line": 5, "detail": 'column "year": "x" is not an integer'},
            {"line": 8, "detail": "The record does not fit the schema: title: Field required"},
        ],
    )
    titles = sorted(d["title"] for d in await stored(client, boss))
    assert titles == ["fifth", "first", "two\nline title"]


async def test_csv_cells_convert_by_the_schema_types(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = (
        "title,year,price,available,tags,address.city,note,sku\n"
        'Dune,1965,9.5,TRUE,"[""sf"",""classic""]",Arrakeen,42,007\n'
        "Emma,-3,2,0,[],Highbury,hello,\n"
        "Solo,,1e2,False,,,,\n"
    )
    response = await send(client, body, boss, CSV)
    assert response.status_code == 200, response.text
    assert response.json() == report(inserted=3)
    docs = {d["title"]: d for d in await stored(client, boss)}
    dune, emma, solo = docs["Dune"], docs["Emma"], docs["Solo"]
    assert (dune["year"], dune["price"], dune["available"]) == (1965, 9.5, True)
    assert (dune["tags"], dune["address"], dune["note"], dune["sku"]) == (
        ["sf", "classic"],
        {"city": "Arrakeen"},
        42,
        "007",
    )
    assert (emma["year"], emma["price"], emma["available"], emma["tags"], emma["note"]) == (
        -3,
        2,
        False,
        [],
        "hello",
    )
    assert "sku" not in emma
    assert solo["price"] == 100.0 and solo["available"] is False
    assert not {"year", "tags", "address", "note", "sku"} & set(solo)


async def test_csv_bad_cells_fail_their_row_naming_each_cell(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = (
        "title,year,price,available,tags\n"
        "a,1.5,,,\n"
        "b,,cheap,,\n"
        "c,,,yes,\n"
        'd,,,,"{""not"": ""array""}"\n'
        "e, 7,1,,[oops\n"
    )
    response = await send(client, body, boss, CSV)
    assert response.status_code == 200, response.text
    assert response.json() == report(
        errors=[
            {"line": 2, "detail": 'column "year": "1.5" is not an integer'},
            {"line": 3, "detail": 'column "price": "cheap" is not a number'},
            {"line": 4, "detail": 'column "available": "yes" is not a boolean (true/false/1/0)'},
            {
                "line": 5,
                "detail": f'column "tags": {json.dumps(NOT_ARRAY)} is not a JSON array',
            },
            {
                "line": 6,
                "detail": 'column "year": " 7" is not an integer; '
                'column "tags": "[oops" is not a JSON array',
            },
        ]
    )


async def test_csv_row_with_the_wrong_number_of_cells_fails(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    response = await send(client, "title,year\na,1,extra\nb,2\n", boss, CSV)
    assert response.json() == report(
        inserted=1, errors=[{"line": 2, "detail": "The row has 3 cells; the header has 2"}]
    )


async def test_unknown_csv_column_refuses_the_whole_import(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    response = await send(client, "title,colour\nDune,red\n", boss, CSV)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == 'line 1: unknown column "colour"'
    assert await stored(client, boss) == []


async def test_csv_column_of_an_open_object_keeps_its_text(client: AsyncClient) -> None:
    boss = await admin(client)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    await create_collection(
        client, boss, "books", {**schema, "additionalProperties": True}, indexes=[]
    )
    response = await send(client, "n,colour\n1,red\n", boss, CSV)
    assert response.json() == report(inserted=1)
    [doc] = await stored(client, boss)
    assert (doc["n"], doc["colour"]) == (1, "red")


async def test_json_array_items_that_are_not_objects_fail_at_their_position(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = json.dumps([{"title": "a"}, 7, {"title": "c"}, [1]])
    response = await send(client, body, boss, JSON)
    assert response.json() == report(
        inserted=2,
        errors=[
            {"line": 2, "detail": "The record is not a JSON object"},
            {"line": 4, "detail": "The record is not a JSON object"},
        ],
    )


async def test_malformed_json_array_stops_and_keeps_what_came_before(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    good = json.dumps([{"title": f"t{n}"} for n in range(3)])[:-1]

    async def chunks() -> AsyncIterator[bytes]:
        yield good.encode()
        yield b', {"title": oops}, {"title": "never read"}]'

    response = await client.post(
        "/v1/collections/books/import", content=chunks(), headers={**JSON, **boss.headers}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["inserted"], result["failed"]) == (3, 1)
    assert result["errors"][0]["line"] == 4
    assert result["errors"][0]["detail"].startswith("The JSON array is malformed here")
    assert len(await stored(client, boss)) == 3


async def test_json_array_item_nested_past_mongodb_depth_stops_the_import(
    client: AsyncClient,
) -> None:
    # 200 KB of brackets: built item by item, the parser's memory grows with the square of the
    # depth, and this one took gigabytes before the depth was bounded.
    boss = await admin(client)
    await books(client, boss)
    deep = "[" * 100_000 + "]" * 100_000
    body = f'[{{"title": "kept"}}, {{"title": "deep", "extra": {deep}}}, {{"title": "after"}}]'
    response = await send(client, body, boss, JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["inserted"], result["failed"]) == (1, 1)
    assert result["errors"] == [{"line": 2, "detail": "A record nests more than 100 levels deep"}]


async def test_json_array_items_as_deep_as_mongodb_allows_are_read(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    # The record itself is one level, so its field may hold 99 more.
    nested = "[" * 99 + "]" * 99
    body = f'[{{"title": "deep", "year": 1}}, {{"title": "x", "tags": {nested}}}, 5, "s", null]'
    response = await send(client, body, boss, JSON)
    result = response.json()
    assert [error["line"] for error in result["errors"]] == [2, 3, 4, 5]
    assert "levels deep" not in result["errors"][0]["detail"]


@pytest.mark.parametrize("bad", ['{"title": tru}', '{"title": NaN}', '{"title": "x"'])
async def test_a_syntax_error_late_in_one_piece_keeps_the_records_before_it(
    client: AsyncClient, bad: str
) -> None:
    # The whole body arrives at once, so the parser meets the error in the piece that holds
    # the good records too.
    boss = await admin(client)
    await books(client, boss)
    body = "[" + ", ".join([*(json.dumps({"title": f"t{n}"}) for n in range(3)), bad])
    response = await send(client, body + "]", boss, JSON)
    result = response.json()
    assert (result["inserted"], result["failed"]) == (3, 1), result
    assert result["errors"][0]["line"] == 4
    assert result["errors"][0]["detail"].startswith("The JSON array is malformed here")
    assert len(await stored(client, boss)) == 3


async def test_json_body_that_is_not_an_array_is_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    response = await send(client, json.dumps({"title": "Dune"}), boss, JSON)
    assert response.status_code == 400
    assert response.json()["detail"] == "The body should be a JSON array of objects"


async def test_only_the_first_hundred_errors_are_listed_but_all_are_counted(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = ndjson(*({"title": ""} for _ in range(150)), {"title": "good"})
    response = await send(client, body, boss)
    result = response.json()
    assert (result["inserted"], result["failed"], len(result["errors"])) == (1, 150, 100)
    assert [error["line"] for error in result["errors"]] == list(range(1, 101))


async def test_unique_conflicts_in_insert_mode_fail_their_rows(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    await send(client, ndjson({"title": "old", "sku": "a"}), boss)
    body = ndjson(
        {"title": "x", "sku": "a"}, {"title": "y", "sku": "b"}, {"title": "z", "sku": "b"}
    )
    response = await send(client, body, boss)
    duplicate = "duplicate value for a unique field"
    assert response.json() == report(
        inserted=1, errors=[{"line": 1, "detail": duplicate}, {"line": 3, "detail": duplicate}]
    )


# System fields


async def test_admin_import_keeps_id_and_owner(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    oid = "65f0a1b2c3d4e5f6a7b8c9d0"
    body = ndjson(
        {"_id": oid, "_owner": "someone-else", "title": "kept"},
        {"_id": "not-an-id", "title": "bad id"},
        {"_owner": 5, "title": "bad owner"},
    )
    response = await send(client, body, boss)
    assert response.json() == report(
        inserted=1,
        errors=[
            {"line": 2, "detail": "_id should be a 24-hex ObjectId string"},
            {"line": 3, "detail": "_owner should be a string or null"},
        ],
    )
    [doc] = await stored(client, boss)
    assert (doc["_id"], doc["_owner"], doc["title"]) == (oid, "someone-else", "kept")


async def test_admin_api_key_keeps_owner(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    created = await client.post(
        "/v1/api-keys", json={"name": "loader", "roles": ["admin"]}, headers=boss.headers
    )
    assert created.status_code == 201, created.text
    response = await client.post(
        "/v1/collections/books/import",
        content=ndjson({"_owner": "u1", "title": "keyed"}),
        headers={**NDJSON, "X-API-Key": created.json()["key"]},
    )
    assert response.json() == report(inserted=1)
    assert [d["_owner"] for d in await stored(client, boss)] == ["u1"]


async def test_non_admin_rows_with_id_or_owner_are_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    user = await register(client)
    body = ndjson(
        {"_owner": boss.id, "title": "a"},
        {"_id": "65f0a1b2c3d4e5f6a7b8c9d0", "title": "b"},
        {"title": "c"},
    )
    response = await send(client, body, user)
    refused = "Only administrators may import _id and _owner"
    assert response.json() == report(
        inserted=1, errors=[{"line": 1, "detail": refused}, {"line": 2, "detail": refused}]
    )
    assert [(d["title"], d["_owner"]) for d in await stored(client, boss)] == [("c", user.id)]


async def test_system_timestamps_and_version_are_ignored(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    user = await register(client)
    record = {"title": "a", "_created": "2001-01-01T00:00:00Z", "_updated": "x", "_version": 9}
    response = await send(client, ndjson(record), user)
    assert response.json() == report(inserted=1)
    [doc] = await stored(client, boss)
    assert doc["_version"] == 1 and not doc["_created"].startswith("2001")


# Upsert


async def test_upsert_rerun_is_idempotent(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = ndjson(*({"sku": f"s{n}", "title": f"Book {n}"} for n in range(5)))
    first = await send(client, body, boss, mode="upsert", key="sku")
    assert first.json() == report(inserted=5)
    before = {d["sku"]: d for d in await stored(client, boss)}
    second = await send(client, body, boss, mode="upsert", key="sku")
    assert second.json() == report(updated=5)
    after = {d["sku"]: d for d in await stored(client, boss)}
    assert len(after) == 5
    for sku, doc in after.items():
        assert doc["_version"] == 2
        assert doc["_created"] == before[sku]["_created"]
        assert doc["_id"] == before[sku]["_id"]


async def test_upsert_replaces_fields_of_the_matched_document(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    await send(client, ndjson({"sku": "a", "title": "Old", "year": 1}), boss)
    response = await send(
        client, "sku,title\na,New\nb,Other\n", boss, CSV, mode="upsert", key="sku"
    )
    assert response.json() == report(inserted=1, updated=1)
    docs = {d["sku"]: d for d in await stored(client, boss)}
    assert docs["a"]["title"] == "New" and "year" not in docs["a"]


async def test_upsert_key_repeated_in_one_file_updates_the_earlier_row(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await books(client, boss)
    body = ndjson({"sku": "a", "title": "first"}, {"sku": "a", "title": "second"})
    response = await send(client, body, boss, mode="upsert", key="sku")
    assert response.json() == report(inserted=1, updated=1)
    [doc] = await stored(client, boss)
    assert (doc["title"], doc["_version"]) == ("second", 2)


async def test_upsert_row_without_the_key_fails(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    response = await send(client, ndjson({"title": "no sku"}), boss, mode="upsert", key="sku")
    assert response.json() == report(
        errors=[{"line": 1, "detail": "The record has no single value for the key 'sku'"}]
    )


async def test_upsert_without_key_is_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    response = await send(client, ndjson({"title": "a"}), boss, mode="upsert")
    assert response.status_code == 400
    assert "key" in response.json()["detail"]


async def test_upsert_key_without_a_unique_index_is_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    for key in ("year", "title"):
        response = await send(client, ndjson({"title": "a"}), boss, mode="upsert", key=key)
        assert response.status_code == 400
        assert (
            response.json()["detail"]
            == f"key '{key}' is not a field with a unique index of its own"
        )


async def test_upsert_by_a_user_matches_only_their_own_documents(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    alice, bob = await register(client), await register(client)
    await send(client, ndjson({"sku": "a", "title": "Alice's"}), alice)
    response = await send(
        client, ndjson({"sku": "a", "title": "Bob's"}), bob, mode="upsert", key="sku"
    )
    assert response.json() == report(
        errors=[{"line": 1, "detail": "duplicate value for a unique field"}]
    )
    [doc] = await stored(client, boss)
    assert (doc["title"], doc["_owner"]) == ("Alice's", alice.id)


# Limits and content types


async def test_body_over_the_import_limit_is_refused_with_413(
    app: FastAPI, settings: Settings
) -> None:
    application = create_app(settings.model_copy(update={"import_max_bytes": 60_000}))
    async with another_app(application, restore=app) as http:
        boss = await admin(http)
        await books(http, boss)
        declared = await send(http, "x" * 60_001, boss)
        assert declared.status_code == 413
        detail = "The body is larger than the import limit of 60000 bytes"
        assert declared.json()["detail"] == detail

        async def lines() -> AsyncIterator[bytes]:
            for n in range(2000):  # 45 bytes each: the limit falls inside the second batch
                yield (json.dumps({"title": f"{n:030d}"}) + "\n").encode()

        streamed = await http.post(
            "/v1/collections/books/import", content=lines(), headers={**NDJSON, **boss.headers}
        )
        assert streamed.status_code == 413
        assert streamed.headers["content-type"] == "application/problem+json"
        assert streamed.json()["detail"] == (
            f"{detail}; the import stopped after writing 1000 records (1000 inserted, 0 updated)"
        )
        assert len(await stored(http, boss)) == 1000


async def test_mismatched_content_type_is_refused_with_415(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    for headers, params in (
        (CSV, {"format": "ndjson"}),
        ({"Content-Type": "text/plain"}, {}),
        ({}, {}),
    ):
        response = await send(client, ndjson({"title": "a"}), boss, headers, **params)
        assert response.status_code == 415, (headers, params)
        assert response.headers["content-type"] == "application/problem+json"


# Permissions


async def test_anonymous_import_is_refused_with_401(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss)
    response = await send(client, ndjson({"title": "a"}), None)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


async def test_create_rule_holder_may_import(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss, rules={"create": ["role:editor"]})
    editor = await register(client)
    await client.patch(f"/v1/users/{editor.id}", json={"roles": ["editor"]}, headers=boss.headers)
    response = await send(client, ndjson({"title": "a"}), editor)
    assert response.json() == report(inserted=1)


async def test_user_without_the_create_rule_is_refused_with_403(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss, rules={"create": ["role:editor"]})
    user = await register(client)
    response = await send(client, ndjson({"title": "a"}), user)
    assert response.status_code == 403
    assert await stored(client, boss) == []


async def test_upsert_needs_the_update_rule_too(client: AsyncClient) -> None:
    boss = await admin(client)
    await books(client, boss, rules={"create": ["authenticated"], "update": ["role:editor"]})
    user = await register(client)
    response = await send(
        client, ndjson({"sku": "a", "title": "a"}), user, mode="upsert", key="sku"
    )
    assert response.status_code == 403


async def test_json_array_item_larger_than_a_record_stops_the_import(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await books(client, boss)
    first = json.dumps({"title": "kept"}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"[" + first + b', {"title": "'
        for _ in range(17):  # one item of 17 MiB: more than a record may hold
            yield b"x" * 2**20
        yield b'"}]'

    response = await client.post(
        "/v1/collections/books/import", content=chunks(), headers={**JSON, **boss.headers}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["inserted"], result["failed"]) == (1, 1)
    assert result["errors"][0] == {
        "line": 2,
        "detail": f"A record is larger than {16 * 2**20} bytes",
    }
