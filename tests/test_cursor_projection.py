"""Cursors stay correct when the client projects fields the sort does not name."""

import pytest
from httpx import AsyncClient

from tests.factories import admin, create_collection, register

PEOPLE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "profile": {
            "type": "object",
            "properties": {"age": {"type": "integer"}, "city": {"type": "string"}},
        },
    },
}


@pytest.mark.parametrize("fields", ["name", "profile", "name,profile.city"])
async def test_walk_sorted_by_a_nested_field_with_a_projection(
    client: AsyncClient, fields: str
) -> None:
    boss = await admin(client)
    await create_collection(client, boss, "people", PEOPLE, rules={"list": ["public"]})
    writer = await register(client)
    for age in (3, 0, 4, 1, 2):
        document = {"name": f"n{age}", "profile": {"age": age, "city": "x"}}
        created = await client.post(
            "/v1/collections/people/documents", json=document, headers=writer.headers
        )
        assert created.status_code == 201
    ids: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, str | int] = {"fields": fields, "sort": "profile.age", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/v1/collections/people/documents", params=params)
        assert page.status_code == 200, page.text
        ids += [item["_id"] for item in page.json()["items"]]
        if "profile" not in fields:
            assert all("profile" not in item for item in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    listing = await client.get(
        "/v1/collections/people/documents", params={"sort": "profile.age", "fields": "name"}
    )
    names = [item["name"] for item in listing.json()["items"]]
    assert names == ["n0", "n1", "n2", "n3", "n4"]
    assert ids == [item["_id"] for item in listing.json()["items"]]


async def test_sort_by_a_field_of_several_types_is_refused(client: AsyncClient) -> None:
    boss = await admin(client)
    schema = {"type": "object", "properties": {"v": {"type": ["integer", "string"]}}}
    await create_collection(client, boss, "mixed", schema, rules={"list": ["public"]})
    response = await client.get("/v1/collections/mixed/documents", params={"sort": "v"})
    assert response.status_code == 400
    assert "several types" in response.json()["detail"]
