"""Streaming export: NDJSON and CSV under the list rule, with filters, and files that re-import."""

import csv
import io
import json

from httpx import AsyncClient, Response

from tests.factories import Account, admin, create_collection, register

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "price": {"type": "number"},
        "available": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "secret": {"type": "string", "writeOnly": True},
    },
    "required": ["title"],
}
SYSTEM_HEADER = ["_id", "_owner", "_created", "_updated", "_version"]


async def insert(client: AsyncClient, who: Account, document: dict, name: str = "books") -> dict:
    response = await client.post(
        f"/v1/collections/{name}/documents", json=document, headers=who.headers
    )
    assert response.status_code == 201, response.text
    created: dict = response.json()
    return created


async def export(client: AsyncClient, who: Account, name: str = "books", **params: str) -> Response:
    return await client.get(f"/v1/collections/{name}/export", params=params, headers=who.headers)


def lines_of(response: Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def rows_of(response: Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text, newline="")))


async def everything(client: AsyncClient, boss: Account, name: str) -> list[dict]:
    response = await client.get(
        f"/v1/collections/{name}/documents", params={"limit": 1000}, headers=boss.headers
    )
    items: list[dict] = response.json()["items"]
    return items


async def test_ndjson_export_streams_every_document_as_a_line(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA)
    first = await insert(client, boss, {"title": "Dune", "year": 1965, "tags": ["sf"]})
    second = await insert(client, boss, {"title": "Emma"})
    response = await export(client, boss)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == 'attachment; filename="books.ndjson"'
    assert lines_of(response) == [first, second]


async def test_csv_export_has_the_system_and_schema_columns(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA)
    doc = await insert(
        client,
        boss,
        {
            "title": 'Dune, "the" novel',
            "year": 1965,
            "price": 9.5,
            "available": False,
            "tags": ["sf", "classic"],
            "address": {"city": "Arrakeen"},
            "secret": "s3",
        },
    )
    await insert(client, boss, {"title": "Emma", "available": True})
    response = await export(client, boss, format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="books.csv"'
    header, dune, emma = rows_of(response)
    assert header == [*SYSTEM_HEADER, *SCHEMA["properties"]]
    system = [doc[key] for key in SYSTEM_HEADER]
    assert dune == [
        *map(str, system),
        'Dune, "the" novel',
        "1965",
        "9.5",
        "false",
        '["sf","classic"]',
        '{"city":"Arrakeen"}',
        "s3",
    ]
    assert emma[5:] == ["Emma", "", "", "true", "", "", ""]


async def test_each_user_exports_only_their_own_documents(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA)
    alice, bob = await register(client), await register(client)
    await insert(client, alice, {"title": "Alice's"})
    await insert(client, bob, {"title": "Bob's"})
    for who, title in ((alice, "Alice's"), (bob, "Bob's")):
        ndjson = await export(client, who)
        assert [(d["title"], d["_owner"]) for d in lines_of(ndjson)] == [(title, who.id)]
        rows = rows_of(await export(client, who, format="csv"))
        assert [row[5] for row in rows[1:]] == [title]
    assert len(lines_of(await export(client, boss))) == 2


async def test_anonymous_export_of_an_owner_rule_collection_is_refused(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA)
    response = await client.get("/v1/collections/books/export")
    assert response.status_code == 401


async def test_write_only_fields_are_hidden_from_non_admins(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA, rules={"list": ["authenticated"]})
    user = await register(client)
    await insert(client, user, {"title": "Dune", "secret": "s3"})
    [seen] = lines_of(await export(client, user))
    assert "secret" not in seen
    header, row = rows_of(await export(client, user, format="csv"))
    assert "secret" not in header and len(row) == len(header)
    [full] = lines_of(await export(client, boss))
    assert full["secret"] == "s3"


async def test_filter_narrows_the_export(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA)
    for year in (1950, 1965, 1990):
        await insert(client, boss, {"title": f"Book {year}", "year": year})
    response = await export(client, boss, filter=json.dumps({"year": {"$gte": 1960}}))
    assert [d["year"] for d in lines_of(response)] == [1965, 1990]


async def test_bad_filter_is_refused_with_400(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA, rules={"list": ["authenticated"]})
    user = await register(client)
    for bad in ('{"$where": "1"}', '{"colour": "red"}', "not json", '{"secret": "s3"}'):
        response = await export(client, user, filter=bad)
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == "application/problem+json"


async def test_export_reads_past_one_batch(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA)
    body = "".join(json.dumps({"title": f"t{n}", "year": n}) + "\n" for n in range(2300))
    imported = await client.post(
        "/v1/collections/books/import",
        content=body,
        headers={"Content-Type": "application/x-ndjson", **boss.headers},
    )
    assert imported.json()["inserted"] == 2300
    years = [d["year"] for d in lines_of(await export(client, boss))]
    assert sorted(years) == list(range(2300))
    assert len(rows_of(await export(client, boss, format="csv"))) == 2301


async def _round_trip(client: AsyncClient, file_format: str, content_type: str) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", SCHEMA, rules={"list": ["authenticated"]})
    await create_collection(client, boss, "copies", SCHEMA)
    alice, bob = await register(client), await register(client)
    await insert(
        client,
        alice,
        {
            "title": "Dune\nwith a newline, and a comma",
            "year": 1965,
            "price": 9.5,
            "available": True,
            "tags": ["sf"],
            "address": {"city": "Arrakeen"},
            "secret": "s3",
        },
    )
    await insert(client, bob, {"title": "Emma", "available": False, "price": 2})
    exported = await export(client, boss, format=file_format)
    assert exported.status_code == 200
    imported = await client.post(
        "/v1/collections/copies/import",
        content=exported.content,
        headers={"Content-Type": content_type, **boss.headers},
    )
    assert imported.json() == {"inserted": 2, "updated": 0, "failed": 0, "errors": []}

    def comparable(docs: list[dict]) -> list[dict]:
        return [{k: v for k, v in doc.items() if k not in ("_created", "_updated")} for doc in docs]

    originals = await everything(client, boss, "books")
    copies = await everything(client, boss, "copies")
    assert comparable(copies) == comparable(originals)
    assert {d["_owner"] for d in copies} == {alice.id, bob.id}


async def test_exported_ndjson_reimports_as_the_same_documents(client: AsyncClient) -> None:
    await _round_trip(client, "ndjson", "application/x-ndjson")


async def test_exported_csv_reimports_as_the_same_documents(client: AsyncClient) -> None:
    await _round_trip(client, "csv", "text/csv")
