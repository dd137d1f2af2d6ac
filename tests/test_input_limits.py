"""Limits on every input: content type, body size (declared or streamed), nesting, array and
document sizes, filter, regex, projection and page caps. None of them may end in a 500."""

import json
import logging
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from starlette.types import Message

from api.schemas import MAX_DOCUMENT_BYTES
from bench.hot_path import http_scope
from tests.factories import Account, admin, create_collection, register

BOOKS = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "extra": {"type": "object", "additionalProperties": True},
    },
}
ONE_MIB = 1024 * 1024
DOCUMENTS = "/v1/collections/books/documents"


@pytest.fixture
async def user(client: AsyncClient) -> Account:
    boss = await admin(client)
    await create_collection(client, boss, "books", BOOKS)
    return await register(client)


def assert_problem(response: Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Request-ID"]
    body: dict = response.json()
    assert body["status"] == status
    return body


async def test_text_plain_body_is_refused_with_415(client: AsyncClient, user: Account) -> None:
    response = await client.post(
        DOCUMENTS,
        content=b'{"title": "x"}',
        headers={**user.headers, "Content-Type": "text/plain"},
    )
    assert assert_problem(response, 415)["detail"] == "Send the request body as application/json"


async def test_body_without_content_type_is_refused_with_415(
    client: AsyncClient, user: Account
) -> None:
    response = await client.post(DOCUMENTS, content=b'{"title": "x"}', headers=user.headers)
    assert_problem(response, 415)


async def test_login_form_encoded_body_is_refused_with_415(client: AsyncClient) -> None:
    response = await client.post("/v1/auth/login", data={"email": "a@b.co", "password": "x" * 8})
    assert_problem(response, 415)


async def test_declared_length_over_the_limit_is_refused_with_413(
    client: AsyncClient, user: Account
) -> None:
    body = json.dumps({"title": "x" * (ONE_MIB + 10)})
    response = await client.post(
        DOCUMENTS, content=body, headers={**user.headers, "Content-Type": "application/json"}
    )
    assert "larger than" in assert_problem(response, 413)["detail"]


async def test_chunked_body_growing_past_the_limit_is_refused_with_413(
    client: AsyncClient, user: Account
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "'
        for _ in range(20):
            yield b"x" * 64 * 1024
        yield b'"}'

    response = await client.post(
        DOCUMENTS, content=chunks(), headers={**user.headers, "Content-Type": "application/json"}
    )
    assert "larger than" in assert_problem(response, 413)["detail"]


@pytest.mark.parametrize("opening", ["[", '{"a":'])
async def test_deeply_nested_json_is_a_400(
    client: AsyncClient, user: Account, opening: str
) -> None:
    closing = "]" if opening == "[" else "}"
    body = opening * 20_000 + "1" * (opening != "[") + closing * 20_000
    response = await client.post(
        DOCUMENTS, content=body, headers={**user.headers, "Content-Type": "application/json"}
    )
    assert_problem(response, 400)


async def test_nested_value_past_the_depth_limit_is_a_422(
    client: AsyncClient, user: Account
) -> None:
    value: object = 1
    for _ in range(150):
        value = {"a": value}
    response = await client.post(
        DOCUMENTS, json={"title": "x", "extra": value}, headers=user.headers
    )
    assert_problem(response, 422)


async def test_hundred_thousand_element_array_is_refused(
    client: AsyncClient, user: Account
) -> None:
    body = {"title": "x", "tags": ["0123456789"] * 100_000}
    response = await client.post(DOCUMENTS, json=body, headers=user.headers)
    assert response.status_code in (413, 422), response.text
    assert_problem(response, response.status_code)


async def test_document_grown_past_the_size_limit_by_pushes_is_a_422(
    client: AsyncClient, user: Account
) -> None:
    created = await client.post(DOCUMENTS, json={"title": "x", "tags": []}, headers=user.headers)
    ops = f"{DOCUMENTS}/{created.json()['_id']}/ops"
    item = "x" * (ONE_MIB - 1024)
    for n in range(MAX_DOCUMENT_BYTES // len(item)):
        grown = await client.post(ops, json={"push": {"tags": f"{n}{item}"}}, headers=user.headers)
        assert grown.status_code == 200, grown.text
    refused = await client.post(ops, json={"push": {"tags": item}}, headers=user.headers)
    body = assert_problem(refused, 422)
    assert "larger than" in json.dumps(body["errors"])


async def test_filter_deeper_than_ten_levels_is_a_400(client: AsyncClient, user: Account) -> None:
    deep: dict = {"title": "x"}
    for _ in range(10):
        deep = {"$and": [deep]}
    response = await client.get(
        DOCUMENTS, params={"filter": json.dumps(deep)}, headers=user.headers
    )
    assert "too deep" in assert_problem(response, 400)["detail"]


async def test_filter_with_too_many_entries_is_a_400(client: AsyncClient, user: Account) -> None:
    wide = {"$or": [{"title": {"$in": [str(n) for n in range(1000)]}} for _ in range(3)]}
    response = await client.post(
        "/v1/collections/books/query", json={"filter": wide}, headers=user.headers
    )
    assert "too large" in assert_problem(response, 400)["detail"]


async def test_filter_text_over_the_length_cap_is_refused(
    client: AsyncClient, user: Account
) -> None:
    text = json.dumps({"title": "x" * 17_000})
    response = await client.get(DOCUMENTS, params={"filter": text}, headers=user.headers)
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


async def test_regex_longer_than_256_characters_is_a_400(
    client: AsyncClient, user: Account
) -> None:
    text = json.dumps({"title": {"$regex": "a" * 257}})
    response = await client.get(DOCUMENTS, params={"filter": text}, headers=user.headers)
    assert "at most 256" in assert_problem(response, 400)["detail"]


async def test_projection_of_more_than_100_fields_is_a_400(
    client: AsyncClient, user: Account
) -> None:
    names = [f"f{n}" for n in range(101)]
    wide = {"type": "object", "properties": {name: {"type": "string"} for name in names}}
    await create_collection(client, await admin(client), "wide", wide)
    response = await client.get(
        "/v1/collections/wide/documents", params={"fields": ",".join(names)}, headers=user.headers
    )
    assert "at most 100" in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize("limit", [0, 1001, -1])
async def test_limit_outside_1_to_1000_is_a_422(
    client: AsyncClient, user: Account, limit: int
) -> None:
    listed = await client.get(DOCUMENTS, params={"limit": limit}, headers=user.headers)
    assert_problem(listed, 422)
    queried = await client.post(
        "/v1/collections/books/query", json={"limit": limit}, headers=user.headers
    )
    assert_problem(queried, 422)


async def test_pipeline_of_more_than_50_stages_is_a_422(client: AsyncClient, user: Account) -> None:
    pipeline = [{"$limit": 1}] * 51
    response = await client.post(
        "/v1/collections/books/aggregate", json={"pipeline": pipeline}, headers=user.headers
    )
    assert_problem(response, 422)


async def test_overlong_password_is_a_422_without_hashing(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/login", json={"email": "a@example.com", "password": "p" * 10_000}
    )
    assert_problem(response, 422)


@pytest.mark.parametrize(
    ("method", "suffix", "header"),
    [
        ("GET", "", "If-None-Match"),
        ("PUT", "", "If-Match"),
        ("PATCH", "", "If-Match"),
        ("POST", "/ops", "If-Match"),
        ("DELETE", "", "If-Match"),
    ],
)
async def test_condition_header_past_1024_characters_is_a_422_and_changes_nothing(
    client: AsyncClient, user: Account, method: str, suffix: str, header: str
) -> None:
    created = await client.post(DOCUMENTS, json={"title": "kept", "year": 1}, headers=user.headers)
    assert created.status_code == 201, created.text
    path = f"{DOCUMENTS}/{created.json()['_id']}"
    bodies = {"PUT": {"title": "replaced"}, "PATCH": {"title": "patched"}}
    body = {"inc": {"year": 1}} if suffix else bodies.get(method)
    # At the limit: a list of tags none of which is the document's, so no match (and no 422).
    tags = ", ".join(['"999999"'] * 103)[:1024]
    at_limit = await client.request(
        method, path + suffix, json=body, headers={**user.headers, header: tags}
    )
    assert at_limit.status_code == (200 if method == "GET" else 412), at_limit.text

    too_long = await client.request(
        method, path + suffix, json=body, headers={**user.headers, header: tags + ","}
    )
    problem = assert_problem(too_long, 422)
    assert problem["errors"] == [
        {"loc": ["header", header.lower()], "msg": "String should have at most 1024 characters"}
    ]
    stored = await client.get(path, headers=user.headers)
    assert stored.json()["title"] == "kept" and stored.json()["year"] == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 422, "Field required"),
        (b'{"title": ', 400, None),
        (b"[1, 2]", 422, "Input should be a valid dictionary"),
        (b'"text"', 422, "Input should be a valid dictionary"),
        (b"\xff\xfe{}", 400, None),
        (b'{"n": ' + b"9" * 5000 + b"}", 400, None),  # past Python's 4300 digits for an int
    ],
)
async def test_a_document_body_that_is_no_json_object_is_refused_and_changes_nothing(
    client: AsyncClient, user: Account, method: str, body: bytes, status: int, message: str | None
) -> None:
    created = await client.post(DOCUMENTS, json={"title": "kept"}, headers=user.headers)
    assert created.status_code == 201, created.text
    path = DOCUMENTS if method == "POST" else f"{DOCUMENTS}/{created.json()['_id']}"
    response = await client.request(
        method, path, content=body, headers={**user.headers, "Content-Type": "application/json"}
    )
    problem = assert_problem(response, status)
    if message is not None:
        assert problem["errors"] == [{"loc": ["body"], "msg": message}]
    listed = await client.get(DOCUMENTS, headers=user.headers)
    assert [item["title"] for item in listed.json()["items"]] == ["kept"]


async def test_an_unauthenticated_write_is_a_401_whatever_its_body(
    client: AsyncClient, user: Account
) -> None:
    response = await client.post(
        DOCUMENTS, content=b'{"title": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 401)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_a_client_gone_mid_body_is_answered_400_not_a_crash(
    app: FastAPI, client: AsyncClient, user: Account, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    created = await client.post(DOCUMENTS, json={"title": "kept"}, headers=user.headers)
    path = DOCUMENTS if method == "POST" else f"{DOCUMENTS}/{created.json()['_id']}"
    scope = http_scope(method, path, {**user.headers, "Content-Type": "application/json"})
    # Part of a body, then the client hangs up.
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"title": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    stored = await client.get(f"{DOCUMENTS}/{created.json()['_id']}", headers=user.headers)
    assert stored.json()["title"] == "kept"


async def test_filter_holding_a_number_past_4300_digits_is_a_400(
    client: AsyncClient, user: Account
) -> None:
    text = '{"year": 1' + "0" * 5000 + "}"
    response = await client.get(DOCUMENTS, params={"filter": text}, headers=user.headers)
    assert assert_problem(response, 400)["detail"] == "filter is not valid JSON"


# `\ud800` is a valid JSON escape, but alone it is no Unicode text, and BSON cannot store it.
UNPAIRED = '"\\ud800"'


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", DOCUMENTS, '{"title": "a", "extra": {"x": ' + UNPAIRED + "}}"),
        ("POST", DOCUMENTS, '{"title": "a", "tags": [' + UNPAIRED + "]}"),
        ("POST", "/v1/collections/books/query", '{"filter": {"title": ' + UNPAIRED + "}}"),
        (
            "POST",
            "/v1/collections/books/bulk",
            '{"operations": [{"insert": {"title": "a", "extra": {"x": ' + UNPAIRED + "}}}]}",
        ),
        (
            "POST",
            "/v1/collections/books/aggregate",
            '{"pipeline": [{"$project": {"x": {"$literal": ' + UNPAIRED + "}}}]}",
        ),
    ],
)
async def test_text_with_an_unpaired_surrogate_is_refused_and_stores_nothing(
    client: AsyncClient, user: Account, method: str, path: str, body: str
) -> None:
    response = await client.request(
        method, path, content=body, headers={**user.headers, "Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    listed = await client.get(DOCUMENTS, headers=user.headers)
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "operations",
    [
        {"inc": {"year": 1e20}},  # an integer, but not a 64-bit one
        {"inc": {"year": -1e19}},
        {"pull": {"tags": 10**30}},
    ],
)
async def test_operators_with_values_past_64_bits_are_refused_and_change_nothing(
    client: AsyncClient, user: Account, operations: dict
) -> None:
    created = await client.post(
        DOCUMENTS, json={"title": "kept", "year": 1, "tags": ["a"]}, headers=user.headers
    )
    path = f"{DOCUMENTS}/{created.json()['_id']}"
    response = await client.post(f"{path}/ops", json=operations, headers=user.headers)
    assert response.status_code in (400, 422), response.text
    stored = (await client.get(path, headers=user.headers)).json()
    assert (stored["year"], stored["tags"], stored["_version"]) == (1, ["a"], 1)
