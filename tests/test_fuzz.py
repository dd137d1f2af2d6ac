"""Schemathesis against the app's own OpenAPI: no 5xx, and every answer is one the spec documents.

Each operation is fuzzed twice, as a signed-in user and as an admin, with valid and invalid
input, against a real collection (`{name}`) and a real document (`{doc_id}`). Generation is
derandomized, so a failure here reproduces on every run.

Schemathesis calls an ASGI app from its own event-loop thread, while the session's app and its
MongoDB client live on the test session's loop; `SessionLoopBridge` (tests/fuzzing.py) carries
each request across.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from httpx import AsyncClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.main import create_app
from api.settings import Settings
from tests.factories import Account, admin, create_collection, register
from tests.fuzzing import SessionLoopBridge

MAX_EXAMPLES = 25
COLLECTION = "fuzzed"
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "year": {"type": "integer", "minimum": 0, "maximum": 3000},
        "score": {"type": ["number", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
        "published": {"type": "boolean"},
        "at": {"type": "string", "format": "date-time"},
        "secret": {"type": "string", "writeOnly": True},
        "meta": {"type": "object", "properties": {"pages": {"type": "integer"}}},
    },
    "required": ["title"],
}
INDEXES = [{"fields": ["title", "-year"]}, {"text": ["title"]}]
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
# Operation labels, read from an app that never starts: the same routes the session app serves.
OPERATIONS = sorted(
    f"{method.upper()} {path}"
    for path, methods in create_app(Settings(_env_file=None)).openapi()["paths"].items()
    for method in methods
)


@pytest.fixture
async def fuzz_schema(app: FastAPI) -> AsyncIterator[OpenApiSchema]:
    bridge = SessionLoopBridge(app, asyncio.get_running_loop())
    yield await asyncio.to_thread(schemathesis.openapi.from_asgi, "/v1/openapi.json", bridge)


@pytest.fixture
async def target(client: AsyncClient) -> dict[str, Any]:
    """A collection with documents of two owners, and the accounts that call it."""
    boss, user = await admin(client), await register(client)
    await create_collection(client, boss, COLLECTION, SCHEMA, indexes=INDEXES)
    ids = {}
    for account in (boss, user):
        created = await client.post(
            f"/v1/collections/{COLLECTION}/documents",
            json={"title": f"by {account.email}", "year": 2000, "tags": ["a"], "secret": "s"},
            headers=account.headers,
        )
        assert created.status_code == 201, created.text
        ids[account.email] = created.json()["_id"]
    return {"admin": boss, "user": user, "ids": ids}


def fuzz(schema: OpenApiSchema, label: str, account: Account, doc_id: str) -> Callable[[], None]:
    """The Hypothesis test of one operation: valid and invalid input, the checks on each answer."""
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in /v1/openapi.json"
    path_parameters = {"name": COLLECTION, "doc_id": doc_id}
    declared = {parameter.name for parameter in operation.path_parameters}
    strategies = [
        operation.as_strategy(
            generation_mode=mode,
            path_parameters={k: v for k, v in path_parameters.items() if k in declared},
            headers=account.headers,
        )
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=strategies[0] | strategies[1])
    def run(data: Any) -> None:
        data.call_and_validate(checks=CHECKS)

    return run


@pytest.mark.parametrize("label", OPERATIONS)
@pytest.mark.parametrize("role", ["user", "admin"])
async def test_fuzzed_operation_answers_as_documented(
    fuzz_schema: OpenApiSchema, target: dict[str, Any], role: str, label: str
) -> None:
    account: Account = target[role]
    await asyncio.to_thread(fuzz(fuzz_schema, label, account, target["ids"][account.email]))
