"""Stateful schemathesis: sequences of calls that follow the OpenAPI links, as an admin.

A scenario starts at an operation that creates something (a document in a real collection, a
collection, an API key, an account) and follows the links of its answer: the new document is
read, replaced, patched, changed with field operators and deleted, in any order and more than
once, each write sending the ETag it was given as If-Match; the new collection is read, changed,
filled and dropped; the new account read, changed and deleted. Every answer must be one the spec
documents (no 5xx, a declared status code, a body that fits its schema), what was deleted must
stay gone and what was created must be there.

Generation is derandomized and bounded (scenarios x steps), and every scenario starts from the
same database, so a failure reproduces on every run.
"""

import asyncio
import re
from typing import Any

import pytest
import schemathesis
from beanie import PydanticObjectId
from fastapi import FastAPI
from httpx import AsyncClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CheckFunction
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.generation.stateful.state_machine import APIStateMachine, StepInput, StepOutput
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.catalog import bind
from api.collection_admin import drop_collection
from api.main import create_app
from api.openapi_links import add_links
from api.settings import Settings
from documents import ApiKey, AuditEntry, CollectionDef, RateCounter, Session, User
from tests.factories import admin, create_collection
from tests.fuzzing import SessionLoopBridge

SCENARIOS = 30
STEPS = 8
COLLECTION = "stateful"
# Open on purpose: most generated bodies are stored, so the links of their answers get followed.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": True,
}
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
DOCUMENT_WRITES = {
    "POST /v1/collections/{name}/documents",
    "PUT /v1/collections/{name}/documents/{doc_id}",
    "PATCH /v1/collections/{name}/documents/{doc_id}",
}
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    # Stateful: what was deleted is gone, and what was just created can be used.
    schemathesis.checks.use_after_free,
    schemathesis.checks.ensure_resource_availability,
]
# Every link `api/openapi_links.py` declares, as schemathesis names the transition.
EXPECTED_TRANSITIONS = 30


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, from an app that never starts."""
    return create_app(Settings(_env_file=None)).openapi()


async def load_schema(app: FastAPI) -> OpenApiSchema:
    bridge = SessionLoopBridge(app, asyncio.get_running_loop())
    schema = await asyncio.to_thread(schemathesis.openapi.from_asgi, "/v1/openapi.json", bridge)
    # Only the links the app declares: schemathesis's own guesses would add calls nobody designed.
    schema.config.phases.stateful.inference.algorithms = []
    return schema


def start_from_something_real(case: Case) -> None:
    """A scenario's first call names the real collection, and a new collection gets SCHEMA.

    Random JSON Schemas and index lists are almost never valid definitions (the stateless run
    fuzzes those); without a created collection its links would never be followed.
    """
    if "name" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "name": COLLECTION}
    if case.operation.label == "POST /v1/collections" and isinstance(case.body, dict):
        if isinstance(case.body.get("schema"), dict):
            case.body = {**case.body, "schema": SCHEMA}
        if isinstance(case.body.get("indexes"), list):
            case.body = {**case.body, "indexes": []}


def plain_names(value: Any) -> Any:
    """`value` without the object keys no document may have (so most writes are stored).

    Random keys are almost never field names (a letter, then letters, digits, underscores); the
    stateless run sends those. Values keep their generated types, sizes and nesting.
    """
    if isinstance(value, dict):
        return {k: plain_names(v) for k, v in value.items() if FIELD_NAME.fullmatch(k)}
    if isinstance(value, list):
        return [plain_names(item) for item in value]
    return value


async def reset(admin_id: str) -> None:
    """Back to the state a scenario starts from: one admin, one empty collection, nothing else."""
    async for definition in CollectionDef.find(CollectionDef.name != COLLECTION):
        await drop_collection(bind(definition))
    kept = await CollectionDef.find_one(CollectionDef.name == COLLECTION)
    assert kept is not None, f"a scenario changed or dropped {COLLECTION}"
    await bind(kept).storage.delete_many({})
    await User.find(User.id != PydanticObjectId(admin_id)).delete()
    await Session.find(Session.user_id != admin_id).delete()
    for model in (ApiKey, AuditEntry, RateCounter):
        await model.delete_all()


def test_links_name_real_operations_and_parameters() -> None:
    """Every link resolves to an operation, and each parameter it fills is one that takes it."""
    document = openapi_document()
    operations = {
        operation["operationId"]: {p["name"] for p in operation.get("parameters", [])}
        for methods in document["paths"].values()
        for operation in methods.values()
    }
    links = [
        link
        for methods in document["paths"].values()
        for operation in methods.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) == EXPECTED_TRANSITIONS
    for link in links:
        taken = operations[link["operationId"]]
        assert {key.split(".", 1)[1] for key in link["parameters"]} <= taken, link
    with pytest.raises(LookupError):
        add_links({"paths": {}})


def test_openapi_with_links_is_valid() -> None:
    """The document fits the OpenAPI 3.1 meta-schema everywhere the links are (under `paths`).

    The meta-schema also wants the OAuth2 `tokenUrl` to be an absolute URI, which FastAPI's
    relative `/v1/auth/token` is not; the spec text allows relative URLs, so that one is left.
    """
    document = openapi_document()
    errors = [
        f"{'/'.join(map(str, error.instance_path))}: {error.message}"
        for error in OPENAPI_31_VALIDATOR.iter_errors(document)
        if list(error.instance_path[:2]) != ["components", "securitySchemes"]
    ]
    assert errors == []


async def test_schemathesis_follows_every_link(app: FastAPI) -> None:
    schema = await load_schema(app)
    schema.as_state_machine()
    assert schema.statistic.transitions.total == EXPECTED_TRANSITIONS


async def test_linked_sequences_answer_as_documented(app: FastAPI, client: AsyncClient) -> None:
    boss = await admin(client)
    await create_collection(client, boss, COLLECTION, SCHEMA)
    schema = await load_schema(app)
    machine: type[APIStateMachine] = schema.as_state_machine()

    loop = asyncio.get_running_loop()

    class AdminWorkflow(machine):  # type: ignore[valid-type, misc]
        def setup(self) -> None:
            # Hypothesis replays scenarios and expects the same answers: each starts afresh.
            asyncio.run_coroutine_threadsafe(reset(boss.id), loop).result()

        def step(self, input: StepInput) -> StepOutput:
            if input.transition is None:
                start_from_something_real(input.case)
            if input.case.operation.label in DOCUMENT_WRITES:
                input.case.body = plain_names(input.case.body)
            return super().step(input)

        def before_call(self, case: Case) -> None:
            case.headers.update(boss.headers)

        def validate_response(
            self,
            response: Response,
            case: Case,
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
            )

    fuzz_settings = settings(
        max_examples=SCENARIOS,
        stateful_step_count=STEPS,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    await asyncio.to_thread(run_state_machine_as_test, AdminWorkflow, settings=fuzz_settings)
