"""The rules matrix: each grant x each action x {anonymous, owner, other user, role holder, admin}.

Each test sets one action to one grant (every other action stays public so the setup works),
then tries the action as each of the five callers against a document the owner created.
"""

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.factories import Account, admin, create_collection, register

GRANTS = ["public", "authenticated", "owner", "role:editor"]
ACTIONS = ["list", "read", "create", "update", "delete"]
CALLERS = ["anonymous", "owner", "other", "role_holder", "admin"]
ALLOWED_STATUS = {"list": 200, "read": 200, "create": 201, "update": 200, "delete": 204}
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "likes": {"type": "integer"}},
}


@dataclass(frozen=True)
class Expected:
    status: int
    visible: bool = False  # list only: whether the owner's document is among the items


def expected(grant: str, action: str, caller: str) -> Expected:
    """What PRODUCT.md's "Collections" rules say the caller gets."""
    allowed = Expected(ALLOWED_STATUS[action], visible=True)
    if caller == "admin" or grant == "public":
        return allowed
    if caller == "anonymous":
        return Expected(401)
    if grant == "authenticated":
        return allowed
    if grant == "role:editor":
        return allowed if caller == "role_holder" else Expected(403)
    assert grant == "owner"
    if action == "create":
        return allowed  # whoever creates a document becomes its owner
    if action == "list":
        return Expected(200, visible=caller == "owner")  # narrowed to the caller's own
    return allowed if caller == "owner" else Expected(404)


@dataclass
class Cast:
    client: AsyncClient
    boss: Account
    owner: Account
    other: Account
    editor: Account
    collection: str

    def headers(self, caller: str) -> dict[str, str]:
        account = {
            "anonymous": None,
            "owner": self.owner,
            "other": self.other,
            "role_holder": self.editor,
            "admin": self.boss,
        }[caller]
        return account.headers if account is not None else {}

    @property
    def documents(self) -> str:
        return f"/v1/collections/{self.collection}/documents"

    async def seed(self) -> str:
        """A document the owner creates."""
        response = await self.client.post(
            self.documents, json={"title": "owned", "likes": 0}, headers=self.owner.headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["_owner"] == self.owner.id
        doc_id: str = response.json()["_id"]
        return doc_id

    async def as_admin(self, doc_id: str) -> Response:
        return await self.client.get(f"{self.documents}/{doc_id}", headers=self.boss.headers)


async def cast_for(client: AsyncClient, grant: str, action: str) -> Cast:
    boss = await admin(client)
    owner, other, editor = [await register(client) for _ in range(3)]
    response = await client.patch(
        f"/v1/users/{editor.id}", json={"roles": ["editor"]}, headers=boss.headers
    )
    assert response.status_code == 200, response.text
    name = f"rules_{uuid.uuid4().hex[:12]}"
    rules = {each: ["public"] for each in ACTIONS}
    rules[action] = [grant]
    created = await create_collection(client, boss, name, SCHEMA, rules=rules)
    assert created["rules"][action] == [grant]
    return Cast(client, boss, owner, other, editor, name)


def assert_status(response: Response, want: Expected, cell: str) -> None:
    assert response.status_code == want.status, f"{cell}: {response.status_code} {response.text}"
    if want.status == 401:
        assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), cell
    if want.status >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), cell


async def perform(cast: Cast, action: str, caller: str, want: Expected, cell: str) -> None:
    client, headers = cast.client, cast.headers(caller)
    if action == "create":
        response = await client.post(cast.documents, json={"title": "new"}, headers=headers)
        assert_status(response, want, cell)
        if want.status == 201:
            created = response.json()
            assert created["title"] == "new", cell
            owner_id = None if caller == "anonymous" else _account_id(cast, caller)
            assert created["_owner"] == owner_id, cell
            assert (await cast.as_admin(created["_id"])).status_code == 200, cell
        return

    doc_id = await cast.seed()
    if action == "list":
        response = await client.get(cast.documents, headers=headers)
        assert_status(response, want, cell)
        if want.status == 200:
            ids = [item["_id"] for item in response.json()["items"]]
            assert (doc_id in ids) is want.visible, f"{cell}: items {ids}"
            if caller in ("other", "role_holder") and not want.visible:
                assert ids == [], cell
        return

    if action == "read":
        response = await client.get(f"{cast.documents}/{doc_id}", headers=headers)
        assert_status(response, want, cell)
        if want.status == 200:
            assert response.json()["_id"] == doc_id, cell
            assert response.json()["title"] == "owned", cell
        return

    if action == "update":
        url = f"{cast.documents}/{doc_id}"
        response = await client.patch(url, json={"title": "changed"}, headers=headers)
        assert_status(response, want, cell)
        ops = await client.post(f"{url}/ops", json={"inc": {"likes": 1}}, headers=headers)
        assert_status(ops, want, f"{cell} (ops)")
        replaced = await client.put(url, json={"title": "replaced"}, headers=headers)
        assert_status(replaced, want, f"{cell} (put)")
        stored = (await cast.as_admin(doc_id)).json()
        if want.status == 200:
            assert stored["title"] == "replaced", cell
            assert stored["_version"] == 4, cell
        else:
            assert (stored["title"], stored["likes"], stored["_version"]) == ("owned", 0, 1), cell
        return

    assert action == "delete"
    response = await client.delete(f"{cast.documents}/{doc_id}", headers=headers)
    assert_status(response, want, cell)
    after = await cast.as_admin(doc_id)
    assert after.status_code == (404 if want.status == 204 else 200), cell


def _account_id(cast: Cast, caller: str) -> str:
    return {
        "owner": cast.owner.id,
        "other": cast.other.id,
        "role_holder": cast.editor.id,
        "admin": cast.boss.id,
    }[caller]


@pytest.mark.parametrize(("grant", "action"), list(itertools.product(GRANTS, ACTIONS)))
async def test_rules_matrix(client: AsyncClient, grant: str, action: str) -> None:
    cast = await cast_for(client, grant, action)
    failures: list[str] = []
    for caller in CALLERS:
        cell = f"{action}=[{grant}] as {caller}"
        try:
            await perform(cast, action, caller, expected(grant, action, caller), cell)
        except AssertionError as error:
            failures.append(str(error))
    assert not failures, "\n".join(failures)


def test_expectations_cover_the_contract() -> None:
    """Spot checks of the expectation table itself, against PRODUCT.md's wording."""
    assert expected("owner", "read", "other") == Expected(404)
    assert expected("owner", "delete", "role_holder") == Expected(404)
    assert expected("owner", "list", "other") == Expected(200, visible=False)
    assert expected("role:editor", "update", "owner") == Expected(403)
    assert expected("authenticated", "create", "anonymous") == Expected(401)
    assert expected("role:editor", "delete", "admin") == Expected(204, visible=True)
    cells: dict[Any, int] = {}
    for cell in itertools.product(GRANTS, ACTIONS, CALLERS):
        cells[cell] = expected(*cell).status
    assert len(cells) == 100
