"""Keyset cursors over HTTP: complete, ordered walks; tamper-evident and bound to their query."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.factories import Account, admin, create_collection, register

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "score": {"type": "number"},
    },
    "required": ["title", "year", "score"],
}
COUNT = 299  # 13 pages of 23: the last page is full, and must still end the walk
PAGE = 23
SORTS = ["_id", "-_id", "year,title", "-year,title", "-score", "year,-score"]


def make_docs(count: int, prefix: str = "t") -> list[dict[str, Any]]:
    # Few distinct years, unique titles, scores with many ties (so `_id` must break them).
    return [
        {
            "title": f"{prefix}{(i * 7919) % 1000:04d}",
            "year": 2000 + i % 5,
            "score": (i * 37) % 41 / 2,
        }
        for i in range(count)
    ]


async def new_collection(client: AsyncClient, boss: Account, rules: dict[str, list[str]]) -> str:
    name = f"cur_{uuid.uuid4().hex[:12]}"
    await create_collection(client, boss, name, SCHEMA, rules=rules)
    return name


async def insert(client: AsyncClient, who: Account, name: str, docs: list[dict]) -> list[dict]:
    """Bulk-inserts `docs` and returns them with their `_id`s."""
    stored = []
    for start in range(0, len(docs), 1000):
        chunk = docs[start : start + 1000]
        response = await client.post(
            f"/v1/collections/{name}/bulk",
            json={"ordered": True, "operations": [{"insert": doc} for doc in chunk]},
            headers=who.headers,
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["status"] for r in results] == [201] * len(chunk), results
        stored += [{**doc, "_id": r["_id"]} for doc, r in zip(chunk, results, strict=True)]
    return stored


def sort_key(sort: str) -> Callable[[dict], tuple]:
    """Python's idea of the order `sort` asks for, with `_id` breaking ties as a last key."""
    keys = [(part.lstrip("-"), part.startswith("-")) for part in sort.split(",")]
    if "_id" not in [path for path, _ in keys]:
        keys.append(("_id", False))

    def key(doc: dict) -> tuple:
        parts: list[Any] = []
        for path, descending in keys:
            value = doc[path]
            if descending:
                value = -value if isinstance(value, int | float) else _Reversed(value)
            parts.append(value)
        return tuple(parts)

    return key


class _Reversed:
    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: "_Reversed") -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


async def page(
    client: AsyncClient, how: str, name: str, who: Account | None, **options: Any
) -> Response:
    headers = who.headers if who is not None else {}
    if how == "post":
        options = {k: v for k, v in options.items() if v is not None}
        return await client.post(f"/v1/collections/{name}/query", json=options, headers=headers)
    params = {k: json.dumps(v) if k == "filter" else v for k, v in options.items() if v is not None}
    return await client.get(f"/v1/collections/{name}/documents", params=params, headers=headers)


async def walk(
    client: AsyncClient,
    how: str,
    name: str,
    who: Account | None,
    between: Callable[[int], Any] | None = None,
    **options: Any,
) -> list[dict]:
    """Every page of a query, following next_cursor; `between(n)` runs after page n."""
    items: list[dict] = []
    cursor = None
    for number in range(1, 200):
        response = await page(client, how, name, who, cursor=cursor, **options)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["items"], f"page {number} is empty: a cursor led nowhere"
        assert len(body["items"]) <= options.get("limit", 50)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert isinstance(cursor, str)
        assert len(body["items"]) == options.get("limit", 50)
        if between is not None:
            await between(number)
    raise AssertionError("the walk never ended")


@pytest.fixture
async def shelf(client: AsyncClient) -> tuple[Account, str, list[dict]]:
    boss = await admin(client)
    user = await register(client)
    name = await new_collection(
        client, boss, {"list": ["public"], "read": ["public"], "create": ["authenticated"]}
    )
    stored = await insert(client, user, name, make_docs(COUNT))
    return user, name, stored


@pytest.mark.parametrize("sort", SORTS)
async def test_walk_returns_each_document_once_in_order(
    client: AsyncClient, shelf: Any, sort: str
) -> None:
    user, name, stored = shelf
    want = [doc["_id"] for doc in sorted(stored, key=sort_key(sort))]
    for how in ("get", "post"):
        items = await walk(client, how, name, user, sort=sort, limit=PAGE)
        ids = [item["_id"] for item in items]
        assert len(ids) == len(set(ids)) == COUNT, f"{how} {sort}: repeats or gaps"
        assert ids == want, f"{how} {sort}: out of order"


async def test_filtered_walk_and_uneven_last_page(client: AsyncClient, shelf: Any) -> None:
    _, name, stored = shelf
    filter_ = {"year": {"$in": [2001, 2003]}, "score": {"$gte": 5}}
    chosen = [d for d in stored if d["year"] in (2001, 2003) and d["score"] >= 5]
    want = [doc["_id"] for doc in sorted(chosen, key=sort_key("-score"))]
    assert len(want) % PAGE != 0
    for how in ("get", "post"):
        items = await walk(client, how, name, None, filter=filter_, sort="-score", limit=PAGE)
        assert [item["_id"] for item in items] == want


async def test_a_cursor_may_change_limit_but_nothing_else(client: AsyncClient, shelf: Any) -> None:
    user, name, _ = shelf
    filter_ = {"year": {"$gte": 2001}}
    first = await page(client, "get", name, user, filter=filter_, sort="year,title", limit=5)
    cursor = first.json()["next_cursor"]
    assert cursor
    later = await page(client, "post", name, user, filter=filter_, sort="year,title", cursor=cursor)
    assert later.status_code == 200, later.text  # GET and POST cursors are interchangeable
    assert later.json()["items"][0]["_id"] not in {i["_id"] for i in first.json()["items"]}

    refusals: dict[str, dict[str, Any]] = {
        "other filter": {"filter": {"year": {"$gte": 2002}}, "sort": "year,title"},
        "no filter": {"sort": "year,title"},
        "other sort": {"filter": filter_, "sort": "-year,title"},
        "no sort": {"filter": filter_},
    }
    for label, options in refusals.items():
        response = await page(client, "get", name, user, cursor=cursor, **options)
        assert response.status_code == 400, f"{label}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json")


def flip(text: str, position: int) -> str:
    replacement = "A" if text[position] != "A" else "B"
    return text[:position] + replacement + text[position + 1 :]


async def test_tampered_and_garbage_cursors_are_400(client: AsyncClient, shelf: Any) -> None:
    user, name, _ = shelf
    response = await page(client, "get", name, user, sort="-score", limit=PAGE)
    cursor = response.json()["next_cursor"]
    assert cursor
    assert (await page(client, "get", name, user, sort="-score", cursor=cursor)).status_code == 200
    dot = cursor.index(".")
    bad = [
        flip(cursor, 0),
        flip(cursor, dot // 2),
        flip(cursor, dot + 2),
        cursor[:-3],
        cursor + "AAAA",
        cursor.replace(".", ""),
        cursor[dot + 1 :] + "." + cursor[:dot],
        "garbage",
        "a.b",
        "....",
        "%%%",
        "eyJ2IjpbXSwicSI6IngifQ.AAAA",
    ]
    for how in ("get", "post"):
        for forged in bad:
            response = await page(client, how, name, user, sort="-score", cursor=forged)
            assert response.status_code == 400, f"{how} {forged!r}: {response.text}"
            assert "cursor" in response.json()["detail"].lower()


async def test_cursor_of_another_user_on_owner_collection_is_400(client: AsyncClient) -> None:
    boss = await admin(client)
    alice, bob = await register(client), await register(client)
    name = await new_collection(client, boss, {"list": ["owner"], "read": ["owner"]})
    await insert(client, alice, name, make_docs(30, "a"))
    await insert(client, bob, name, make_docs(30, "b"))
    first = await page(client, "get", name, alice, sort="title", limit=10)
    cursor = first.json()["next_cursor"]
    assert cursor
    for how in ("get", "post"):
        stolen = await page(client, how, name, bob, sort="title", limit=10, cursor=cursor)
        assert stolen.status_code == 400, stolen.text
        anonymous = await page(client, how, name, None, sort="title", limit=10, cursor=cursor)
        assert anonymous.status_code == 401, anonymous.text
    own = await walk(client, "get", name, bob, sort="title", limit=10)
    assert {item["title"][0] for item in own} == {"b"} and len(own) == 30
    alice_walk = await walk(client, "post", name, alice, sort="title", limit=7)
    assert len({item["_id"] for item in alice_walk}) == 30


@pytest.mark.parametrize(("sort", "behind"), [("-_id", None), ("year,title", 1990)])
async def test_inserts_behind_the_cursor_cause_no_repeats(
    client: AsyncClient, shelf: Any, sort: str, behind: int | None
) -> None:
    """New documents that sort before the cursor position are not seen; nothing repeats."""
    user, name, stored = shelf
    added: list[dict] = []

    async def meanwhile(number: int) -> None:
        if number in (2, 5):
            docs = make_docs(12, f"n{number}")
            if behind is not None:
                docs = [{**doc, "year": behind} for doc in docs]
            added.extend(await insert(client, user, name, docs))

    want = [doc["_id"] for doc in sorted(stored, key=sort_key(sort))]
    items = await walk(client, "get", name, user, between=meanwhile, sort=sort, limit=PAGE)
    ids = [item["_id"] for item in items]
    assert len(added) == 24
    assert len(ids) == len(set(ids)), "a document came twice"
    assert ids == want
    everything = await walk(client, "post", name, user, sort=sort, limit=PAGE)
    assert len(everything) == COUNT + 24
