"""The typed OpenAPI document each collection publishes for client generators."""

from httpx import AsyncClient

from tests.factories import admin, create_collection, register

BOOKS = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string", "maxLength": 100},
        "published": {"type": "string", "format": "date-time"},
        "author": {"type": "object", "properties": {"name": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


async def test_collection_openapi_types_documents_with_schema_and_system_fields(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "book_shelf", BOOKS, rules={"list": ["public"]})
    response = await client.get("/v1/collections/book_shelf/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"] == "3.1.0"
    stored = spec["components"]["schemas"]["BookShelf"]
    written = spec["components"]["schemas"]["BookShelfWrite"]
    assert set(stored["properties"]) == {
        "_id", "_owner", "_created", "_updated", "_version", "title", "published", "author", "tags"
    }  # fmt: skip
    assert stored["required"] == ["_id", "_owner", "_created", "_updated", "_version", "title"]
    assert "_id" not in written["properties"]
    assert written["properties"]["published"]["format"] == "date-time"
    # Cabinet's default, made explicit so generated clients refuse unknown fields too.
    assert written["additionalProperties"] is False
    assert written["properties"]["author"]["additionalProperties"] is False
    assert set(spec["paths"]) == {
        "/v1/collections/book_shelf/documents",
        "/v1/collections/book_shelf/documents/{doc_id}",
    }


async def test_every_returned_field_is_declared_in_the_collection_openapi(
    client: AsyncClient,
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    writer = await register(client)
    created = await client.post(
        "/v1/collections/books/documents",
        json={"title": "Dune", "published": "1965-08-01T00:00:00Z", "tags": ["sf"]},
        headers=writer.headers,
    )
    spec = (await client.get("/v1/collections/books/openapi.json", headers=writer.headers)).json()
    declared = spec["components"]["schemas"]["Books"]["properties"]
    assert set(created.json()) <= set(declared)


async def test_collection_openapi_follows_the_list_rule(client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS, rules={"list": ["role:staff"]})
    reader = await register(client)
    anonymous = await client.get("/v1/collections/books/openapi.json")
    signed_in = await client.get("/v1/collections/books/openapi.json", headers=reader.headers)
    assert (anonymous.status_code, signed_in.status_code) == (401, 403)
