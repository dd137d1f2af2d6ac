"""POST /v1/collections/{c}/aggregate: pipelines run behind the caller's rules, results capped."""

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from api.main import create_app
from api.settings import Settings
from tests.factories import Account, admin, another_app, register

HEX_ID = re.compile(r"^[0-9a-f]{24}$")
FORBIDDEN_STAGES = {
    "$out": "stolen",
    "$merge": {"into": "stolen"},
    "$unionWith": {"coll": "c_other"},
    "$graphLookup": {
        "from": "expenses",
        "startWith": "$label",
        "connectFromField": "label",
        "connectToField": "label",
        "as": "graph",
    },
    "$collStats": {"count": {}},
    "$currentOp": {},
}
FORBIDDEN_OPERATORS = {
    "$function": {"body": "function() { return 1 }", "args": [], "lang": "js"},
    "$accumulator": {
        "init": "function() { return 0 }",
        "accumulate": "function(s) { return s }",
        "accumulateArgs": [],
        "merge": "function(a, b) { return a }",
        "lang": "js",
    },
    "$where": "this.amount > 0",
    "$expr": {"$gt": ["$amount", 0]},
}
EXPENSES = {
    "type": "object",
    "properties": {
        "label": {"type": "string"},
        "amount": {"type": "integer"},
        "secret": {"type": "string", "writeOnly": True},
        "at": {"type": "string", "format": "date-time"},
    },
}
ORDERS = {"type": "object", "properties": {"code": {"type": "string"}}}
SHIPMENTS = {
    "type": "object",
    "properties": {
        "order_code": {"type": "string"},
        "label": {"type": "string"},
        "tracking": {"type": "string", "writeOnly": True},
    },
}
REFUSED_LOOKUP = "pipeline[0].$lookup.from: collection '{}' does not exist or you may not list it"
SUM = [{"$group": {"_id": None, "total": {"$sum": "$amount"}}}]


async def define(
    client: AsyncClient, boss: Account, name: str, schema: dict, **rules: list[str]
) -> None:
    body: dict[str, Any] = {"name": name, "schema": schema, "indexes": []}
    if rules:
        body["rules"] = rules
    response = await client.post("/v1/collections", json=body, headers=boss.headers)
    assert response.status_code == 201, response.text


async def insert(client: AsyncClient, who: Account, name: str, document: dict) -> dict:
    response = await client.post(
        f"/v1/collections/{name}/documents", json=document, headers=who.headers
    )
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


async def aggregate(
    client: AsyncClient, name: str, pipeline: list, who: Account | None = None
) -> Response:
    headers = who.headers if who is not None else {}
    return await client.post(
        f"/v1/collections/{name}/aggregate", json={"pipeline": pipeline}, headers=headers
    )


def refused(response: Response, detail: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == detail


@pytest.fixture
async def boss(client: AsyncClient) -> Account:
    return await admin(client)


@pytest.fixture
async def expenses(client: AsyncClient, boss: Account) -> str:
    """An owner-rule collection (the default rules) with a write-only field."""
    await define(client, boss, "expenses", EXPENSES)
    return "expenses"


@pytest.fixture
async def alice(client: AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
async def bob(client: AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
async def spent(client: AsyncClient, expenses: str, alice: Account, bob: Account) -> None:
    for who, amount in ((alice, 10), (alice, 20), (bob, 5), (bob, 100)):
        await insert(client, who, expenses, {"label": "x", "amount": amount, "secret": "hunter2"})


# Rule filter first


async def test_group_sum_covers_only_the_callers_own_documents(
    client: AsyncClient, spent: None, alice: Account, bob: Account
) -> None:
    mine = await aggregate(client, "expenses", SUM, alice)
    theirs = await aggregate(client, "expenses", SUM, bob)
    assert mine.status_code == 200, mine.text
    assert mine.json() == {"items": [{"_id": None, "total": 30}]}
    assert theirs.status_code == 200, theirs.text
    assert theirs.json() == {"items": [{"_id": None, "total": 105}]}


async def test_group_sum_by_admin_covers_every_document(
    client: AsyncClient, spent: None, boss: Account
) -> None:
    response = await aggregate(client, "expenses", SUM, boss)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [{"_id": None, "total": 135}]}


async def test_match_on_another_owner_finds_nothing(
    client: AsyncClient, spent: None, alice: Account, bob: Account
) -> None:
    response = await aggregate(client, "expenses", [{"$match": {"_owner": bob.id}}], alice)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": []}


# $lookup


@pytest.fixture
async def shipped(client: AsyncClient, boss: Account, alice: Account, bob: Account) -> None:
    """Alice and Bob each have an order X1 and a shipment for X1, in owner-rule collections."""
    await define(client, boss, "orders", ORDERS)
    await define(client, boss, "shipments", SHIPMENTS)
    for who, label in ((alice, "mine"), (bob, "theirs")):
        await insert(client, who, "orders", {"code": "X1"})
        shipment = {"order_code": "X1", "label": label, "tracking": f"T-{label}"}
        await insert(client, who, "shipments", shipment)


JOIN = {"from": "shipments", "localField": "code", "foreignField": "order_code", "as": "shipped"}


async def test_lookup_joins_only_the_callers_own_documents(
    client: AsyncClient, shipped: None, alice: Account
) -> None:
    response = await aggregate(client, "orders", [{"$lookup": JOIN}], alice)
    assert response.status_code == 200, response.text
    [order] = response.json()["items"]
    assert order["code"] == "X1"
    assert [s["label"] for s in order["shipped"]] == ["mine"]
    assert {s["_owner"] for s in order["shipped"]} == {alice.id}


async def test_lookup_with_extra_pipeline_still_joins_only_the_callers_documents(
    client: AsyncClient, shipped: None, alice: Account
) -> None:
    sub = [{"$match": {"label": {"$in": ["mine", "theirs"]}}}, {"$sort": {"label": 1}}]
    response = await aggregate(client, "orders", [{"$lookup": {**JOIN, "pipeline": sub}}], alice)
    assert response.status_code == 200, response.text
    [order] = response.json()["items"]
    assert [s["label"] for s in order["shipped"]] == ["mine"]
    assert "tracking" not in order["shipped"][0]


async def test_lookup_after_reshaping_never_joins_other_users_documents(
    client: AsyncClient, app: FastAPI, shipped: None, alice: Account
) -> None:
    pipeline = [{"$addFields": {"seen": True}}, {"$lookup": JOIN}]
    response = await aggregate(client, "orders", pipeline, alice)
    # MongoDB runs the lookup's own pipeline, rule filter first, wherever the lookup stands.
    if app.state.traits.late_join_rules:
        assert response.status_code == 200, response.text
        [order] = response.json()["items"]
        assert [s["label"] for s in order["shipped"]] == ["mine"]
    else:  # a server that would skip it there gets no such lookup at all
        assert response.status_code == 400
        assert "move it before them" in response.json()["detail"]


async def test_lookup_by_admin_joins_every_document(
    client: AsyncClient, shipped: None, boss: Account
) -> None:
    response = await aggregate(client, "orders", [{"$lookup": JOIN}], boss)
    assert response.status_code == 200, response.text
    orders = response.json()["items"]
    assert len(orders) == 2
    for order in orders:
        assert sorted(s["label"] for s in order["shipped"]) == ["mine", "theirs"]
        assert sorted(s["tracking"] for s in order["shipped"]) == ["T-mine", "T-theirs"]


async def test_lookup_hides_the_joined_collections_write_only_fields(
    client: AsyncClient, shipped: None, alice: Account
) -> None:
    pipeline = [{"$lookup": JOIN}, {"$unwind": "$shipped"}, {"$replaceWith": "$shipped"}]
    response = await aggregate(client, "orders", pipeline, alice)
    assert response.status_code == 200, response.text
    [shipment] = response.json()["items"]
    assert shipment["label"] == "mine"
    assert "tracking" not in shipment


@pytest.mark.parametrize("root", ["$$ROOT", "$$CURRENT"])
async def test_whole_joined_document_in_lookup_pipeline_stays_behind_the_rules(
    client: AsyncClient, shipped: None, alice: Account, root: str
) -> None:
    sub = [{"$replaceWith": root}]
    response = await aggregate(client, "orders", [{"$lookup": {**JOIN, "pipeline": sub}}], alice)
    assert response.status_code == 200, response.text
    [order] = response.json()["items"]
    assert [s["label"] for s in order["shipped"]] == ["mine"]
    assert "tracking" not in order["shipped"][0]


async def test_lookup_foreign_field_cannot_be_a_write_only_field(
    client: AsyncClient, shipped: None, alice: Account
) -> None:
    probe = {**JOIN, "foreignField": "tracking"}
    response = await aggregate(client, "orders", [{"$lookup": probe}], alice)
    refused(response, "pipeline[0].$lookup.foreignField: unknown field 'tracking'")


CARD = {"name": {"type": "string"}, "pin": {"type": "string"}}
PEOPLE = {
    "type": "object",
    "properties": {
        "card": {
            "type": "object",
            "properties": {**CARD, "pin": {**CARD["pin"], "writeOnly": True}},
        }
    },
}
GUESSES = {"type": "object", "properties": {"card": {"type": "object", "properties": CARD}}}


async def test_lookup_foreign_field_cannot_be_an_object_holding_a_write_only_field(
    client: AsyncClient, boss: Account, alice: Account
) -> None:
    # Joining on the whole object would compare its hidden PIN with the caller's guess.
    await define(client, boss, "people", PEOPLE, list=["public"], read=["public"])
    await define(client, boss, "guesses", GUESSES)
    probe = {"from": "people", "localField": "card", "foreignField": "card", "as": "j"}
    response = await aggregate(client, "guesses", [{"$lookup": probe}], alice)
    refused(
        response,
        "pipeline[0].$lookup.foreignField: 'card' holds fields you may not read; "
        "join on one of its other fields",
    )
    by_name = {**probe, "localField": "card.name", "foreignField": "card.name"}
    assert (await aggregate(client, "guesses", [{"$lookup": by_name}], alice)).status_code == 200
    assert (await aggregate(client, "guesses", [{"$lookup": probe}], boss)).status_code == 200


async def test_lookup_into_a_collection_the_caller_may_not_list_is_refused(
    client: AsyncClient, shipped: None, boss: Account, alice: Account
) -> None:
    await define(client, boss, "ledger", SHIPMENTS, list=["role:auditor"])
    await insert(client, boss, "ledger", {"order_code": "X1", "label": "audit"})
    lookup = {**JOIN, "from": "ledger"}
    response = await aggregate(client, "orders", [{"$lookup": lookup}], alice)
    refused(response, REFUSED_LOOKUP.format("ledger"))


async def test_lookup_into_a_missing_collection_gets_the_same_refusal(
    client: AsyncClient, shipped: None, alice: Account
) -> None:
    lookup = {**JOIN, "from": "nowhere"}
    response = await aggregate(client, "orders", [{"$lookup": lookup}], alice)
    refused(response, REFUSED_LOOKUP.format("nowhere"))


@pytest.mark.parametrize("source", ["users", "sessions", "collections"])
async def test_lookup_from_a_system_collection_is_refused(
    client: AsyncClient, shipped: None, boss: Account, source: str
) -> None:
    lookup = {"from": source, "localField": "_owner", "foreignField": "_id", "as": "who"}
    response = await aggregate(client, "orders", [{"$lookup": lookup}], boss)
    refused(response, REFUSED_LOOKUP.format(source))


async def test_lookup_from_a_dotted_system_name_is_refused(
    client: AsyncClient, shipped: None, boss: Account
) -> None:
    lookup = {**JOIN, "from": "system.users"}
    response = await aggregate(client, "orders", [{"$lookup": lookup}], boss)
    refused(response, "pipeline[0].$lookup.from: expected a collection name")


async def test_lookup_refused_inside_facet_names_the_collection(
    client: AsyncClient, shipped: None, alice: Account
) -> None:
    pipeline = [{"$facet": {"f": [{"$lookup": {**JOIN, "from": "nowhere"}}]}}]
    response = await aggregate(client, "orders", pipeline, alice)
    refused(
        response,
        "pipeline[0].$facet.f[0].$lookup.from: "
        "collection 'nowhere' does not exist or you may not list it",
    )


# Forbidden stages and operators


@pytest.mark.parametrize("stage", FORBIDDEN_STAGES)
async def test_forbidden_stage_at_top_level_is_refused(
    client: AsyncClient, spent: None, alice: Account, stage: str
) -> None:
    pipeline = [{"$match": {}}, {stage: FORBIDDEN_STAGES[stage]}]
    response = await aggregate(client, "expenses", pipeline, alice)
    refused(response, f"pipeline[1]: stage {stage} is not allowed")


@pytest.mark.parametrize("stage", FORBIDDEN_STAGES)
async def test_forbidden_stage_inside_facet_is_refused(
    client: AsyncClient, spent: None, alice: Account, stage: str
) -> None:
    pipeline = [{"$facet": {"all": [{"$limit": 1}], "sneaky": [{stage: FORBIDDEN_STAGES[stage]}]}}]
    response = await aggregate(client, "expenses", pipeline, alice)
    refused(response, f"pipeline[0].$facet.sneaky[0]: stage {stage} is not allowed")


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
async def test_forbidden_operator_in_group_is_refused(
    client: AsyncClient, spent: None, alice: Account, operator: str
) -> None:
    pipeline = [{"$group": {"_id": None, "x": {operator: FORBIDDEN_OPERATORS[operator]}}}]
    response = await aggregate(client, "expenses", pipeline, alice)
    refused(response, f"pipeline[0].$group.x: operator {operator} is not allowed")


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
async def test_forbidden_operator_in_project_is_refused(
    client: AsyncClient, spent: None, alice: Account, operator: str
) -> None:
    pipeline = [{"$project": {"x": {operator: FORBIDDEN_OPERATORS[operator]}}}]
    response = await aggregate(client, "expenses", pipeline, alice)
    refused(response, f"pipeline[0].$project.x: operator {operator} is not allowed")


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
async def test_forbidden_operator_in_match_is_refused(
    client: AsyncClient, spent: None, alice: Account, operator: str
) -> None:
    pipeline = [{"$match": {operator: FORBIDDEN_OPERATORS[operator]}}]
    response = await aggregate(client, "expenses", pipeline, alice)
    refused(response, f"pipeline[0].$match: operator {operator} is not allowed")


# Write-only fields


async def test_write_only_field_in_group_is_refused_for_non_admin(
    client: AsyncClient, spent: None, alice: Account
) -> None:
    response = await aggregate(client, "expenses", [{"$group": {"_id": "$secret"}}], alice)
    refused(response, "pipeline[0].$group._id: unknown field 'secret'")


async def test_write_only_field_in_match_regex_is_refused_for_non_admin(
    client: AsyncClient, spent: None, alice: Account
) -> None:
    pipeline = [{"$match": {"secret": {"$regex": "^hunt"}}}]
    response = await aggregate(client, "expenses", pipeline, alice)
    refused(response, "pipeline[0].$match.secret: unknown field 'secret'")


@pytest.mark.parametrize(
    "pipeline",
    [
        [{"$replaceWith": "$$ROOT"}],
        [{"$project": {"doc": "$$ROOT"}}, {"$replaceWith": "$doc"}],
        [{"$group": {"_id": None, "docs": {"$push": "$$CURRENT"}}}, {"$unwind": "$docs"},
         {"$replaceRoot": {"newRoot": "$docs"}}],
        [{"$addFields": {"kv": {"$objectToArray": "$$ROOT"}}}, {"$unwind": "$kv"},
         {"$replaceWith": {"$arrayToObject": [["$kv"]]}}],
    ],
)  # fmt: skip
async def test_whole_document_by_non_admin_leaves_out_the_write_only_field(
    client: AsyncClient, spent: None, alice: Account, pipeline: list
) -> None:
    response = await aggregate(client, "expenses", pipeline, alice)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items
    assert not any("secret" in item for item in items)
    assert "hunter2" not in response.text


async def test_admin_sees_and_queries_the_write_only_field(
    client: AsyncClient, spent: None, boss: Account
) -> None:
    whole = await aggregate(client, "expenses", [{"$replaceWith": "$$ROOT"}], boss)
    assert whole.status_code == 200, whole.text
    assert [item["secret"] for item in whole.json()["items"]] == ["hunter2"] * 4
    pipeline = [
        {"$match": {"secret": {"$regex": "^hunt"}}},
        {"$group": {"_id": "$secret", "n": {"$sum": 1}}},
    ]
    grouped = await aggregate(client, "expenses", pipeline, boss)
    assert grouped.status_code == 200, grouped.text
    assert grouped.json() == {"items": [{"_id": "hunter2", "n": 4}]}


# Result cap


@pytest.fixture
async def capped(app: FastAPI, settings: Settings) -> AsyncIterator[tuple[AsyncClient, Account]]:
    """An app capping aggregation at 5 documents, with an admin and 6 documents in `numbers`."""
    application = create_app(settings.model_copy(update={"aggregate_max_results": 5}))
    async with another_app(application, restore=app) as http:
        boss = await admin(http)
        await define(
            http, boss, "numbers", {"type": "object", "properties": {"n": {"type": "integer"}}}
        )
        for n in range(6):
            await insert(http, boss, "numbers", {"n": n})
        yield http, boss


@pytest.mark.parametrize("pipeline", [[], [{"$sort": {"n": 1}}], [{"$limit": 6}]])
async def test_pipeline_returning_more_than_the_cap_is_refused_asking_for_a_limit(
    capped: tuple[AsyncClient, Account], pipeline: list
) -> None:
    http, boss = capped
    response = await aggregate(http, "numbers", pipeline, boss)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "more than 5 documents" in detail
    assert "$limit" in detail


async def test_pipeline_limited_to_the_cap_returns_that_many(
    capped: tuple[AsyncClient, Account],
) -> None:
    http, boss = capped
    response = await aggregate(http, "numbers", [{"$sort": {"n": 1}}, {"$limit": 5}], boss)
    assert response.status_code == 200, response.text
    assert [item["n"] for item in response.json()["items"]] == [0, 1, 2, 3, 4]


async def test_pipeline_returning_exactly_the_cap_needs_no_limit(
    capped: tuple[AsyncClient, Account],
) -> None:
    http, boss = capped
    response = await aggregate(http, "numbers", [{"$match": {"n": {"$gte": 1}}}], boss)
    assert response.status_code == 200, response.text
    assert sorted(item["n"] for item in response.json()["items"]) == [1, 2, 3, 4, 5]


# Anonymous callers


async def test_anonymous_caller_is_refused_when_list_rule_is_owner(
    client: AsyncClient, spent: None
) -> None:
    response = await aggregate(client, "expenses", [{"$count": "n"}])
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "Authentication required"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_anonymous_caller_may_aggregate_a_public_collection(
    client: AsyncClient, boss: Account, alice: Account, bob: Account
) -> None:
    await define(client, boss, "notices", EXPENSES, list=["public"])
    for who, amount in ((alice, 1), (bob, 2)):
        await insert(client, who, "notices", {"label": "n", "amount": amount, "secret": "s3"})
    response = await aggregate(client, "notices", SUM)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [{"_id": None, "total": 3}]}


@pytest.mark.parametrize("root", ["$$ROOT", "$$CURRENT"])
async def test_whole_document_on_a_public_collection_leaves_out_the_write_only_field(
    client: AsyncClient, boss: Account, alice: Account, root: str
) -> None:
    # No rule filter to put first here, so the hidden fields' $unset is the pipeline's first stage.
    await define(client, boss, "notices", EXPENSES, list=["public"])
    await insert(client, alice, "notices", {"label": "n", "amount": 1, "secret": "s3cret"})
    for who in (None, alice):
        response = await aggregate(client, "notices", [{"$replaceWith": root}], who)
        assert response.status_code == 200, response.text
        [item] = response.json()["items"]
        assert item["label"] == "n"
        assert "secret" not in item


# JSON rendering


async def test_object_ids_come_back_as_hex_strings_and_dates_as_iso_strings(
    client: AsyncClient, expenses: str, alice: Account
) -> None:
    stored = await insert(client, alice, expenses, {"amount": 1, "at": "2026-01-31T12:00:00Z"})
    await insert(client, alice, expenses, {"amount": 2, "at": "2026-02-01T08:30:00.250Z"})
    pipeline = [{"$match": {"amount": 1}}, {"$project": {"at": 1, "_created": 1}}]
    response = await aggregate(client, expenses, pipeline, alice)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [
            {"_id": stored["_id"], "at": "2026-01-31T12:00:00Z", "_created": stored["_created"]}
        ]
    }
    assert HEX_ID.fullmatch(stored["_id"])
    assert datetime.fromisoformat(stored["_created"]).tzinfo is not None


async def test_ids_and_dates_inside_joined_documents_are_rendered_too(
    client: AsyncClient, shipped: None, alice: Account
) -> None:
    response = await aggregate(client, "orders", [{"$lookup": JOIN}], alice)
    assert response.status_code == 200, response.text
    [order] = response.json()["items"]
    [shipment] = order["shipped"]
    for document in (order, shipment):
        assert HEX_ID.fullmatch(document["_id"])
        assert document["_owner"] == alice.id
        for key in ("_created", "_updated"):
            assert document[key].endswith("Z")
            assert datetime.fromisoformat(document[key]).tzinfo is not None


async def test_pipeline_answer_larger_than_the_byte_cap_is_refused(
    app: FastAPI, settings: Settings
) -> None:
    application = create_app(settings.model_copy(update={"aggregate_max_bytes": 64 * 1024}))
    async with another_app(application, restore=app) as http:
        boss = await admin(http)
        schema = {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "integer"}},
            },
        }
        await define(http, boss, "notes", schema)
        await insert(http, boss, "notes", {"text": "x" * 10_000, "tags": list(range(20))})
        # One 10 kB document unwound into 20 copies: 200 kB against a 64 KiB cap.
        response = await aggregate(http, "notes", [{"$unwind": "$tags"}], boss)
        small = await aggregate(http, "notes", [{"$unwind": "$tags"}, {"$limit": 3}], boss)
    assert response.status_code == 400, response.text
    assert "65,536 bytes" in response.json()["detail"]
    assert small.status_code == 200 and len(small.json()["items"]) == 3


async def test_write_only_field_inside_an_array_never_shows_in_an_aggregation(
    client: AsyncClient, app: FastAPI, boss: Account, alice: Account
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "k": {"type": "string"},
                        "s": {"type": "string", "writeOnly": True},
                    },
                },
            }
        },
    }
    await define(client, boss, "carts", schema, list=["public"])
    await insert(client, alice, "carts", {"items": [{"k": "a", "s": "SECRET"}]})
    response = await aggregate(client, "carts", [{"$project": {"items": 1}}], alice)
    assert "SECRET" not in response.text
    if app.state.traits.late_join_rules:  # MongoDB removes it with the rule stages
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["items"] == [{"k": "a"}]
    else:  # a server that cannot remove it there gets no such aggregation from non-admins
        assert response.status_code == 400


@pytest.mark.parametrize(
    "after",
    [
        [{"$unwind": "$j"}, {"$replaceRoot": {"newRoot": "$j"}}],
        [{"$unwind": "$j"}],
        [{"$project": {"n": {"$size": "$j"}, "j": 1}}],
        [{"$group": {"_id": None, "j": {"$push": "$j"}}}],
    ],
)
async def test_lookup_on_the_owner_from_a_public_collection_joins_only_the_callers_documents(
    client: AsyncClient,
    app: FastAPI,
    shipped: None,
    boss: Account,
    alice: Account,
    bob: Account,
    after: list,
) -> None:
    # Bob's public post, joined on its owner to Bob's shipments, which only Bob may list.
    await define(client, boss, "board", ORDERS, list=["public"], read=["public"])
    await insert(client, bob, "board", {"code": "B1"})
    join = {"from": "shipments", "localField": "_owner", "foreignField": "_owner", "as": "j"}
    pipeline = [{"$match": {"code": "B1"}}, {"$lookup": join}, *after]
    response = await aggregate(client, "board", pipeline, alice)
    if response.status_code == 400 and not app.state.traits.late_join_rules:
        # The stand-in refuses a join it would run without its pipeline (docs/embedded-database.md).
        assert response.json()["detail"] == "The database could not run this request as given"
        return
    assert response.status_code == 200, response.text
    text = response.text.replace(" ", "")
    assert "theirs" not in text and "T-" not in text
    assert '"n":1' not in text


async def test_a_result_the_database_cannot_encode_is_answered_not_left_waiting(
    client: AsyncClient, spent: None, alice: Account
) -> None:
    # 10**400 fits no BSON number: MongoDB answers with a double or an error, and so must the
    # stand-in rather than leave the connection waiting for a reply that never comes.
    pipeline = [{"$limit": 1}, {"$project": {"x": {"$pow": [10, 400]}}}]
    async with asyncio.timeout(30):
        response = await aggregate(client, "expenses", pipeline, alice)
    assert response.status_code in (200, 400), response.text
    # The connection it used serves the next request.
    assert (await aggregate(client, "expenses", SUM, alice)).status_code == 200
