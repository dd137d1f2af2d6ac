"""Concurrent writes to one document: nothing lost, and If-Match lets only one writer win."""

import asyncio

from httpx import AsyncClient, Response

from tests.factories import Account, admin, create_collection, register

URL = "/v1/collections/posts/documents"
FIELDS = [f"f{i}" for i in range(20)]
POSTS = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "likes": {"type": "integer"},
        "stars": {"type": "integer", "maximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "labels": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "stats": {"type": "object", "properties": {"views": {"type": "integer"}}},
        **{name: {"type": "integer"} for name in FIELDS},
    },
}


async def _setup(client: AsyncClient, fields: dict) -> tuple[Account, str]:
    boss = await admin(client)
    await create_collection(client, boss, "posts", POSTS)
    user = await register(client)
    response = await client.post(URL, json=fields, headers=user.headers)
    assert response.status_code == 201, response.text
    return user, f"{URL}/{response.json()['_id']}"


async def _increments(
    client: AsyncClient, user: Account, url: str, field: str, times: int
) -> list[Response]:
    """`times` increments of `field` by one, all sent at once."""
    body = {"inc": {field: 1}}
    return await asyncio.gather(
        *(client.post(f"{url}/ops", json=body, headers=user.headers) for _ in range(times))
    )


async def test_hundred_concurrent_increments_all_land(client: AsyncClient) -> None:
    user, url = await _setup(client, {"title": "hot"})
    responses = await _increments(client, user, url, "likes", 100)
    assert [r.status_code for r in responses] == [200] * 100
    seen = sorted(r.json()["likes"] for r in responses)
    assert seen == list(range(1, 101))  # each increment saw its own result
    final = (await client.get(url, headers=user.headers)).json()
    assert final["likes"] == 100
    assert final["_version"] == 101


async def test_concurrent_increments_inside_an_absent_object_all_land(client: AsyncClient) -> None:
    user, url = await _setup(client, {"title": "new"})
    responses = await _increments(client, user, url, "stats.views", 50)
    assert [r.status_code for r in responses] == [200] * 50
    final = (await client.get(url, headers=user.headers)).json()
    assert final["stats"] == {"views": 50} and final["_version"] == 51


async def test_concurrent_increments_and_pushes_all_land(client: AsyncClient) -> None:
    # Increments go out unread, pushes read and plan first: neither may lose the other's change.
    user, url = await _setup(client, {"likes": 0, "tags": []})
    bodies = [{"inc": {"likes": 1}}] * 30 + [{"push": {"tags": f"t{i}"}} for i in range(3)]
    responses = await asyncio.gather(
        *(client.post(f"{url}/ops", json=body, headers=user.headers) for body in bodies)
    )
    assert [r.status_code for r in responses] == [200] * len(bodies)
    final = (await client.get(url, headers=user.headers)).json()
    assert final["likes"] == 30 and sorted(final["tags"]) == ["t0", "t1", "t2"]
    assert final["_version"] == 1 + len(bodies)


async def test_concurrent_patches_with_same_if_match_only_one_wins(client: AsyncClient) -> None:
    user, url = await _setup(client, {"title": "v1"})
    tag = (await client.get(url, headers=user.headers)).headers["etag"]
    headers = {**user.headers, "If-Match": tag}
    first, second = await asyncio.gather(
        client.patch(url, json={"title": "first"}, headers=headers),
        client.patch(url, json={"title": "second"}, headers=headers),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 412], (first.text, second.text)
    winner = first if first.status_code == 200 else second
    loser = second if winner is first else first
    assert loser.headers["content-type"].startswith("application/problem+json")
    final = (await client.get(url, headers=user.headers)).json()
    assert final["_version"] == 2
    assert final["title"] == winner.json()["title"]


async def test_concurrent_patches_without_if_match_all_land(client: AsyncClient) -> None:
    user, url = await _setup(client, {"title": "base"})
    responses = await asyncio.gather(
        *(client.patch(url, json={name: i}, headers=user.headers) for i, name in enumerate(FIELDS))
    )
    assert [r.status_code for r in responses] == [200] * len(FIELDS), [
        r.text for r in responses if r.status_code != 200
    ]
    assert sorted(r.json()["_version"] for r in responses) == list(range(2, 22))
    final = (await client.get(url, headers=user.headers)).json()
    assert {name: final.get(name) for name in FIELDS} == {n: i for i, n in enumerate(FIELDS)}
    assert final["title"] == "base"
    assert final["_version"] == 21


async def test_concurrent_increments_stop_exactly_at_maximum(client: AsyncClient) -> None:
    user, url = await _setup(client, {"stars": 0})
    responses = await asyncio.gather(
        *(
            client.post(f"{url}/ops", json={"inc": {"stars": 1}}, headers=user.headers)
            for _ in range(20)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 10 + [422] * 10
    final = (await client.get(url, headers=user.headers)).json()
    assert final["stars"] == 10 and final["_version"] == 11


async def test_concurrent_pushes_stop_exactly_at_max_items(client: AsyncClient) -> None:
    user, url = await _setup(client, {"tags": []})
    responses = await asyncio.gather(
        *(
            client.post(f"{url}/ops", json={"push": {"tags": f"t{i}"}}, headers=user.headers)
            for i in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 3 + [422] * 7
    final = (await client.get(url, headers=user.headers)).json()
    winners = {r.json()["tags"][-1] for r in responses if r.status_code == 200}
    assert len(final["tags"]) == 3 and set(final["tags"]) == winners


async def test_concurrent_pushes_of_one_item_keep_it_unique(client: AsyncClient) -> None:
    user, url = await _setup(client, {"labels": ["a"]})
    responses = await asyncio.gather(
        *(
            client.post(f"{url}/ops", json={"push": {"labels": "x"}}, headers=user.headers)
            for _ in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [422] * 9
    final = (await client.get(url, headers=user.headers)).json()
    assert final["labels"] == ["a", "x"] and final["_version"] == 2
