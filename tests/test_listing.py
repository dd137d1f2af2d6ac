"""Listing over HTTP: the filter language, sort, fields, limit, totals, q, hidden fields."""

import json
import os
import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.factories import Account, admin, create_collection, register

MOVIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "rating": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "cast": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "lead": {"type": "boolean"}},
            },
        },
        "secret": {"type": "string", "writeOnly": True},
    },
}


def movie(title: str, year: int, rating: float | None, tags: str, *cast: str) -> dict[str, Any]:
    """`cast` entries are names, `*` marking a lead."""
    doc: dict[str, Any] = {"title": title, "year": year, "tags": tags.split()}
    doc["cast"] = [{"name": c.strip("*"), "lead": c.endswith("*")} for c in cast]
    return doc if rating is None else {**doc, "rating": rating}


MOVIES: list[dict[str, Any]] = [
    {**movie("The Matrix", 1999, 8.7, "scifi action", "Keanu*", "Carrie"), "secret": "red pill"},
    movie("Alien", 1979, 8.5, "scifi horror", "Sigourney*"),
    movie("Heat", 1995, 8.3, "crime action drama", "Keanu"),
    movie("the thing", 1982, None, "horror"),
    movie("Zodiac", 2007, 7.7, "crime"),
]
ALL = {movie["title"] for movie in MOVIES}
OPERATOR_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("eq", {"year": {"$eq": 1999}}, {"The Matrix"}),
    ("literal", {"year": 1995}, {"Heat"}),
    ("ne", {"year": {"$ne": 1999}}, ALL - {"The Matrix"}),
    ("gt", {"year": {"$gt": 1995}}, {"The Matrix", "Zodiac"}),
    ("gte", {"year": {"$gte": 1995}}, {"The Matrix", "Zodiac", "Heat"}),
    ("lt", {"year": {"$lt": 1982}}, {"Alien"}),
    ("lte", {"year": {"$lte": 1982}}, {"Alien", "the thing"}),
    ("number range", {"rating": {"$gt": 8, "$lt": 8.6}}, {"Alien", "Heat"}),
    ("in", {"year": {"$in": [1979, 2007, 1900]}}, {"Alien", "Zodiac"}),
    ("nin", {"year": {"$nin": [1979, 2007]}}, {"The Matrix", "Heat", "the thing"}),
    ("exists true", {"rating": {"$exists": True}}, ALL - {"the thing"}),
    ("exists false", {"rating": {"$exists": False}}, {"the thing"}),
    ("regex i", {"title": {"$regex": "^the", "$options": "i"}}, {"The Matrix", "the thing"}),
    ("regex", {"title": {"$regex": "^the"}}, {"the thing"}),
    ("array element", {"tags": "horror"}, {"Alien", "the thing"}),
    ("all", {"tags": {"$all": ["scifi", "action"]}}, {"The Matrix"}),
    ("size", {"tags": {"$size": 1}}, {"the thing", "Zodiac"}),
    (
        "elemMatch objects",
        {"cast": {"$elemMatch": {"name": "Keanu", "lead": True}}},
        {"The Matrix"},
    ),
    ("elemMatch scalars", {"tags": {"$elemMatch": {"$in": ["drama", "x"]}}}, {"Heat"}),
    ("dotted path", {"cast.name": "Keanu"}, {"The Matrix", "Heat"}),
    ("and", {"$and": [{"tags": "scifi"}, {"year": {"$gt": 1980}}]}, {"The Matrix"}),
    ("or", {"$or": [{"year": 1979}, {"title": "Zodiac"}]}, {"Alien", "Zodiac"}),
    ("nor", {"$nor": [{"tags": "crime"}, {"tags": "horror"}]}, {"The Matrix"}),
]
NOT_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("not", {"year": {"$not": {"$gt": 1990}}}, {"Alien", "the thing"}),
    ("not regex", {"title": {"$not": {"$regex": "^[A-Z]"}}}, {"the thing"}),
]
# The embedded stand-in answers "Operator '$not' is not currently implemented"; MongoDB has it.
ON_STAND_IN = not os.environ.get("CABINET_TEST_MONGODB_URL")
SYSTEM_KEYS = {"_id", "_owner", "_created", "_updated", "_version"}


async def new_collection(
    client: AsyncClient,
    boss: Account,
    schema: dict[str, Any],
    rules: dict[str, list[str]] | None = None,
    indexes: list[dict[str, Any]] | None = None,
) -> str:
    name = f"ls_{uuid.uuid4().hex[:12]}"
    await create_collection(client, boss, name, schema, rules=rules, indexes=indexes)
    return name


async def insert_many(client: AsyncClient, who: Account, name: str, docs: list[dict]) -> list[str]:
    operations = [{"insert": doc} for doc in docs]
    response = await client.post(
        f"/v1/collections/{name}/bulk", json={"operations": operations}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [result["status"] for result in results] == [201] * len(docs), results
    return [result["_id"] for result in results]


async def list_via(
    client: AsyncClient, how: str, name: str, who: Account | None, **options: Any
) -> Response:
    """GET …/documents (filter as JSON text) or POST …/query (options in the body)."""
    headers = who.headers if who is not None else {}
    if how == "post":
        return await client.post(f"/v1/collections/{name}/query", json=options, headers=headers)
    params = {k: json.dumps(v) if k == "filter" else v for k, v in options.items()}
    params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    return await client.get(f"/v1/collections/{name}/documents", params=params, headers=headers)


def titles(response: Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


@pytest.fixture
async def movies(client: AsyncClient) -> tuple[Account, Account, str, list[str]]:
    boss = await admin(client)
    user = await register(client)
    name = await new_collection(
        client,
        boss,
        MOVIES_SCHEMA,
        rules={"list": ["public"], "read": ["public"]},
        indexes=[{"text": ["title"]}],
    )
    ids = await insert_many(client, user, name, MOVIES)
    return boss, user, name, ids


HOW = pytest.mark.parametrize("how", ["get", "post"])


async def check_cases(
    client: AsyncClient, movies: Any, how: str, cases: list[tuple[str, dict[str, Any], set[str]]]
) -> None:
    _, user, name, _ = movies
    wrong = []
    for label, filter_, want in cases:
        response = await list_via(client, how, name, user, filter=filter_)
        if response.status_code != 200:
            wrong.append(f"{label} {filter_}: {response.status_code} {response.text}")
            continue
        got = set(titles(response))
        if got != want:
            wrong.append(f"{label} {filter_}: got {sorted(got)}, want {sorted(want)}")
    assert not wrong, "\n".join(wrong)


@HOW
async def test_operators_select_the_right_documents(
    client: AsyncClient, movies: Any, how: str
) -> None:
    await check_cases(client, movies, how, OPERATOR_CASES)


@pytest.mark.xfail(ON_STAND_IN, reason="the embedded stand-in does not implement $not")
@HOW
async def test_not_operator(client: AsyncClient, movies: Any, how: str) -> None:
    await check_cases(client, movies, how, NOT_CASES)


def _deep_and(levels: int) -> dict[str, Any]:
    filter_: dict[str, Any] = {"year": 1999}
    for _ in range(levels):
        filter_ = {"$and": [filter_]}
    return filter_


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("$where", {"$where": "this.year > 0"}, "$where"),
    ("$where on field", {"year": {"$where": "1"}}, "$where"),
    ("$expr", {"$expr": {"$gt": ["$year", 1]}}, "$expr"),
    ("$function", {"year": {"$function": {}}}, "$function"),
    ("unknown field", {"director": "Mann"}, "director"),
    ("string for integer", {"year": "1999"}, "year"),
    ("string in $in", {"year": {"$in": ["1999"]}}, "year"),
    ("too deep", _deep_and(6), "deep"),
    ("long regex", {"title": {"$regex": "a" * 257}}, "regex"),
    ("bad options", {"title": {"$regex": "a", "$options": "x"}}, "options"),
    ("bad _id", {"_id": "not-an-id"}, "_id"),
]


@HOW
async def test_refused_filters_answer_400_naming_the_problem(
    client: AsyncClient, movies: Any, how: str
) -> None:
    _, user, name, _ = movies
    for label, filter_, named in REFUSED:
        response = await list_via(client, how, name, user, filter=filter_)
        assert response.status_code == 400, f"{label}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert named in response.json()["detail"], f"{label}: {response.json()['detail']}"


async def test_limits_of_depth_and_regex_admit_what_fits(client: AsyncClient, movies: Any) -> None:
    _, user, name, _ = movies
    assert titles(await list_via(client, "get", name, user, filter=_deep_and(4))) == ["The Matrix"]
    response = await list_via(client, "post", name, user, filter={"title": {"$regex": "x" * 256}})
    assert titles(response) == []


@pytest.mark.parametrize("text", ["{year: 1999}", "not json", "[1, 2]", '"x"', "{"])
async def test_filter_that_is_not_a_json_object_is_400(
    client: AsyncClient, movies: Any, text: str
) -> None:
    _, user, name, _ = movies
    response = await client.get(
        f"/v1/collections/{name}/documents", params={"filter": text}, headers=user.headers
    )
    assert response.status_code == 400, response.text


@HOW
async def test_id_and_created_filters(client: AsyncClient, movies: Any, how: str) -> None:
    _, user, name, ids = movies
    assert titles(await list_via(client, how, name, user, filter={"_id": ids[2]})) == ["Heat"]
    response = await list_via(client, how, name, user, filter={"_id": {"$in": ids[:2]}})
    assert set(titles(response)) == {"The Matrix", "Alien"}
    everything = (await list_via(client, how, name, user)).json()["items"]
    created = sorted(item["_created"] for item in everything)
    between = {"$gte": created[0], "$lte": created[-1]}
    assert set(titles(await list_via(client, how, name, user, filter={"_created": between}))) == ALL
    early = {"_created": {"$lt": "2000-01-01T00:00:00Z"}}
    assert titles(await list_via(client, how, name, user, filter=early)) == []
    late = {"_created": {"$gt": "2000-01-01T00:00:00+01:00"}}
    assert set(titles(await list_via(client, how, name, user, filter=late))) == ALL
    before = {"_created": {"$lt": created[0]}}
    assert titles(await list_via(client, how, name, user, filter=before)) == []


@HOW
async def test_sort_and_fields(client: AsyncClient, movies: Any, how: str) -> None:
    _, user, name, _ = movies
    extra = [{"title": "Casino", "year": 1995}, {"title": "Apollo 13", "year": 1995}]
    await insert_many(client, user, name, extra)
    response = await list_via(client, how, name, user, sort="-year,title")
    assert titles(response) == [
        "Zodiac", "The Matrix", "Apollo 13", "Casino", "Heat", "the thing", "Alien",
    ]  # fmt: skip
    response = await list_via(client, how, name, user, sort=["year", "-title"])
    if how == "post":
        assert titles(response)[:2] == ["Alien", "the thing"]
        assert titles(response)[2:5] == ["Heat", "Casino", "Apollo 13"]
    response = await list_via(client, how, name, user, fields="title", sort="-year")
    items = response.json()["items"]
    assert items and all(set(item) == SYSTEM_KEYS | {"title"} for item in items), items
    assert [item["title"] for item in items][:2] == ["Zodiac", "The Matrix"]


@HOW
async def test_limit_bounds_and_default(client: AsyncClient, how: str) -> None:
    boss = await admin(client)
    name = await new_collection(client, boss, MOVIES_SCHEMA)
    await insert_many(client, boss, name, [{"title": f"m{i:02d}", "year": i} for i in range(60)])
    for limit in (0, 1001, -1):
        response = await list_via(client, how, name, boss, limit=limit)
        assert response.status_code == 422, f"limit={limit}: {response.text}"
    page = (await list_via(client, how, name, boss)).json()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    assert "total" not in page
    assert len((await list_via(client, how, name, boss, limit=1000)).json()["items"]) == 60
    assert len((await list_via(client, how, name, boss, limit=1)).json()["items"]) == 1


@HOW
async def test_total_only_when_asked(client: AsyncClient, movies: Any, how: str) -> None:
    _, user, name, _ = movies
    page = (await list_via(client, how, name, user, limit=2, total=True)).json()
    assert (len(page["items"]), page["total"]) == (2, 5)
    scifi = {"tags": "scifi"}
    page = (await list_via(client, how, name, user, filter=scifi, limit=1, total=True)).json()
    assert (len(page["items"]), page["total"]) == (1, 2)
    page = (await list_via(client, how, name, user, filter=scifi)).json()
    assert "total" not in page
    page = (await list_via(client, how, name, user, total=False)).json()
    assert "total" not in page


@HOW
async def test_full_text_search(client: AsyncClient, movies: Any, how: str) -> None:
    boss, user, name, _ = movies
    assert titles(await list_via(client, how, name, user, q="matrix")) == ["The Matrix"]
    response = await list_via(client, how, name, user, q="thing", filter={"year": 1982})
    assert titles(response) == ["the thing"]
    plain = await new_collection(client, boss, MOVIES_SCHEMA)
    response = await list_via(client, how, plain, boss, q="matrix")
    assert response.status_code == 400, response.text
    assert "text index" in response.json()["detail"]


@HOW
async def test_write_only_field_hidden_from_non_admins(
    client: AsyncClient, movies: Any, how: str
) -> None:
    boss, user, name, _ = movies
    unknown = (await list_via(client, how, name, user, filter={"nosuch": "x"})).json()["detail"]
    for option in ({"filter": {"secret": "red pill"}}, {"sort": "secret"}, {"fields": "secret"}):
        response = await list_via(client, how, name, user, **option)
        assert response.status_code == 400, f"{option}: {response.text}"
        detail = response.json()["detail"]
        assert "unknown field 'secret'" in detail, detail
        if "filter" in option:
            assert detail == unknown.replace("nosuch", "secret")
    everything = (await list_via(client, how, name, user)).json()["items"]
    assert everything and all("secret" not in item for item in everything)
    response = await list_via(client, how, name, boss, filter={"secret": "red pill"})
    assert titles(response) == ["The Matrix"]
    assert response.json()["items"][0]["secret"] == "red pill"
    response = await list_via(client, how, name, boss, sort="secret", fields="secret")
    assert response.status_code == 200, response.text
    assert {item.get("secret") for item in response.json()["items"]} == {None, "red pill"}


@HOW
async def test_owner_list_rule_shows_only_own_documents(client: AsyncClient, how: str) -> None:
    boss = await admin(client)
    alice, bob = await register(client), await register(client)
    name = await new_collection(client, boss, MOVIES_SCHEMA)  # default rules: list owner
    await insert_many(client, alice, name, [{"title": "a1"}, {"title": "a2"}])
    await insert_many(client, bob, name, [{"title": "b1"}])
    assert sorted(titles(await list_via(client, how, name, alice))) == ["a1", "a2"]
    assert titles(await list_via(client, how, name, bob)) == ["b1"]
    sneaky = {"_owner": alice.id}
    assert titles(await list_via(client, how, name, bob, filter=sneaky)) == []
    sneaky_or = {"$or": [{"_owner": alice.id}, {"title": "a1"}]}
    assert titles(await list_via(client, how, name, bob, filter=sneaky_or)) == []
    page = (await list_via(client, how, name, bob, filter=sneaky, total=True)).json()
    assert page["total"] == 0
    page = (await list_via(client, how, name, bob, total=True)).json()
    assert page["total"] == 1
    assert len(titles(await list_via(client, how, name, boss))) == 3
    response = await list_via(client, how, name, None)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
