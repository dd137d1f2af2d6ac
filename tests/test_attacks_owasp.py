"""The OWASP API Security Top 10 (2023) items that apply to Cabinet, each as refused attacks.
API7 (SSRF) and API10 (unsafe consumption of other APIs) do not apply: Cabinet never fetches
a URL a client names nor calls another API (docs/security.md). API6, API8 and API9 are in
test_attacks_exposure.py."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from api.main import create_app
from api.settings import Settings
from documents.api_keys import ApiKey
from tests.factories import Account, admin, another_app, create_collection, register

NOTES = {
    "type": "object",
    "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
}
# Anyone signed in may write; each caller reads only their own documents.
DROPBOX = {"create": ["authenticated"], "update": ["authenticated"], "read": ["owner"]}


@pytest.fixture
async def boss(client: AsyncClient) -> Account:
    boss = await admin(client)
    await create_collection(client, boss, "notes", NOTES)
    return boss


async def note_of(client: AsyncClient, owner: Account, collection: str = "notes") -> str:
    created = await client.post(
        f"/v1/collections/{collection}/documents",
        json={"text": "private", "n": 1},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    document_id: str = created.json()["_id"]
    return document_id


# API1: broken object level authorization


async def test_api1_another_users_document_is_a_404_for_every_verb(
    client: AsyncClient, boss: Account
) -> None:
    owner, thief = await register(client), await register(client)
    doc = f"/v1/collections/notes/documents/{await note_of(client, owner)}"
    for response in (
        await client.get(doc, headers=thief.headers),
        await client.put(doc, json={"text": "mine"}, headers=thief.headers),
        await client.patch(doc, json={"text": "mine"}, headers=thief.headers),
        await client.post(f"{doc}/ops", json={"inc": {"n": 1}}, headers=thief.headers),
        await client.delete(doc, headers=thief.headers),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "Document not found"
    assert (await client.get(doc, headers=owner.headers)).json()["text"] == "private"


async def test_api1_bulk_update_and_delete_of_another_users_id_is_a_404(
    client: AsyncClient, boss: Account
) -> None:
    owner, thief = await register(client), await register(client)
    doc_id = await note_of(client, owner)
    bulk = await client.post(
        "/v1/collections/notes/bulk",
        json={
            "ordered": False,
            "operations": [
                {"update": {"id": doc_id, "patch": {"text": "mine"}}},
                {"delete": {"id": doc_id}},
            ],
        },
        headers=thief.headers,
    )
    assert [result["status"] for result in bulk.json()["results"]] == [404, 404]
    kept = await client.get(f"/v1/collections/notes/documents/{doc_id}", headers=owner.headers)
    assert (kept.status_code, kept.json()["_version"]) == (200, 1)


async def test_api1_listing_aggregation_and_export_show_only_own_documents(
    client: AsyncClient, boss: Account
) -> None:
    owner, thief = await register(client), await register(client)
    await note_of(client, owner)
    listed = await client.get("/v1/collections/notes/documents", headers=thief.headers)
    aggregated = await client.post(
        "/v1/collections/notes/aggregate",
        json={"pipeline": [{"$match": {"text": "private"}}]},
        headers=thief.headers,
    )
    exported = await client.get("/v1/collections/notes/export", headers=thief.headers)
    assert listed.json()["items"] == []
    assert aggregated.json()["items"] == []
    assert (exported.status_code, exported.text) == (200, "")


async def test_api1_lookup_into_an_owner_rule_collection_joins_only_own_documents(
    client: AsyncClient, boss: Account
) -> None:
    owner, thief = await register(client), await register(client)
    await create_collection(
        client, boss, "board", NOTES, rules={"list": ["public"], "read": ["public"]}
    )
    await note_of(client, boss, "board")
    await note_of(client, owner)
    pipeline = [
        {"$lookup": {"from": "notes", "localField": "text", "foreignField": "text", "as": "hit"}}
    ]
    response = await client.post(
        "/v1/collections/board/aggregate", json={"pipeline": pipeline}, headers=thief.headers
    )
    assert response.status_code == 200, response.text
    assert [item["hit"] for item in response.json()["items"]] == [[]]


# API2: broken authentication


async def test_api2_forged_token_is_a_401(client: AsyncClient) -> None:
    user = await register(client)
    header, payload, _ = user.access_token.split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    response = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_api2_replayed_refresh_token_is_a_401_and_ends_the_session(
    client: AsyncClient,
) -> None:
    user = await register(client)
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert replay.status_code == 401
    fresh = await client.post(
        "/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
    )
    assert fresh.status_code == 401


async def test_api2_revoked_api_key_is_a_401(client: AsyncClient, boss: Account) -> None:
    issued = await client.post("/v1/api-keys", json={"name": "job"}, headers=boss.headers)
    key = {"X-API-Key": issued.json()["key"]}
    assert (await client.get("/v1/collections/notes/documents", headers=key)).status_code == 200
    await client.delete(f"/v1/api-keys/{issued.json()['id']}", headers=boss.headers)
    refused = await client.get("/v1/collections/notes/documents", headers=key)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Invalid or expired API key"


async def test_api2_api_key_with_a_future_expiry_is_accepted(
    client: AsyncClient, boss: Account
) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    issued = await client.post(
        "/v1/api-keys", json={"name": "job", "expires_at": later}, headers=boss.headers
    )
    response = await client.get(
        "/v1/collections/notes/documents", headers={"X-API-Key": issued.json()["key"]}
    )
    assert response.status_code == 200, response.text


async def test_api2_expired_api_key_is_a_401(client: AsyncClient, boss: Account) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    issued = await client.post(
        "/v1/api-keys", json={"name": "job", "expires_at": soon}, headers=boss.headers
    )
    await ApiKey.get_pymongo_collection().update_one(
        {"name": "job"}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    refused = await client.get(
        "/v1/collections/notes/documents", headers={"X-API-Key": issued.json()["key"]}
    )
    assert refused.status_code == 401


# API3: broken object property level authorization


@pytest.mark.parametrize("field", ["roles", "disabled"])
async def test_api3_registration_cannot_assign_roles_or_flags(
    client: AsyncClient, field: str
) -> None:
    value: object = ["admin"] if field == "roles" else False
    response = await client.post(
        "/v1/auth/register",
        json={"email": "sneaky@example.com", "password": "long enough pass", field: value},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]


@pytest.mark.parametrize("change", [{"roles": ["admin"]}, {"disabled": False}, {"email": "x@y.co"}])
async def test_api3_own_profile_update_cannot_assign_roles(
    client: AsyncClient, change: dict
) -> None:
    user = await register(client)
    response = await client.patch("/v1/auth/me", json=change, headers=user.headers)
    assert response.status_code == 422
    me = await client.get("/v1/auth/me", headers=user.headers)
    assert me.json()["roles"] == []


async def test_api3_write_response_shows_no_more_than_the_read_rule_admits(
    client: AsyncClient, boss: Account
) -> None:
    await create_collection(client, boss, "dropbox", NOTES, rules=DROPBOX)
    writer, other = await register(client), await register(client)
    doc_id = await note_of(client, writer, "dropbox")
    response = await client.put(
        f"/v1/collections/dropbox/documents/{doc_id}",
        json={"text": "overwritten"},
        headers=other.headers,
    )
    assert response.status_code == 200
    assert "text" not in response.json()
    assert set(response.json()) == {"_id", "_owner", "_created", "_updated", "_version"}


# API4: unrestricted resource consumption


@pytest.mark.parametrize("limit", ["1001", "100000"])
async def test_api4_page_larger_than_1000_is_a_422(
    client: AsyncClient, boss: Account, limit: str
) -> None:
    response = await client.get(
        "/v1/collections/notes/documents", params={"limit": limit}, headers=boss.headers
    )
    assert response.status_code == 422


async def test_api4_pipeline_returning_more_than_the_cap_is_a_400(
    app: FastAPI, client: AsyncClient, settings: Settings, boss: Account
) -> None:
    for _ in range(4):
        await note_of(client, boss)
    capped = create_app(settings.model_copy(update={"aggregate_max_results": 3}))
    async with another_app(capped, app) as http:
        response = await http.post(
            "/v1/collections/notes/aggregate", json={"pipeline": []}, headers=boss.headers
        )
    assert response.status_code == 400
    assert "add a $limit" in response.json()["detail"]


async def test_api4_bulk_of_more_than_1000_operations_is_a_422(
    client: AsyncClient, boss: Account
) -> None:
    operations = [{"delete": {"id": "0" * 24}}] * 1001
    response = await client.post(
        "/v1/collections/notes/bulk", json={"operations": operations}, headers=boss.headers
    )
    assert response.status_code == 422


# API5: broken function level authorization

ADMIN_ROUTES = [
    ("GET", "/v1/users"),
    ("GET", "/v1/users/{id}"),
    ("PATCH", "/v1/users/{id}"),
    ("DELETE", "/v1/users/{id}"),
    ("POST", "/v1/api-keys"),
    ("GET", "/v1/api-keys"),
    ("DELETE", "/v1/api-keys/{id}"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/collections"),
    ("POST", "/v1/collections"),
    ("GET", "/v1/collections/notes"),
    ("PATCH", "/v1/collections/notes"),
    ("DELETE", "/v1/collections/notes"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_api5_non_admin_on_an_admin_route_is_a_403(
    client: AsyncClient, boss: Account, method: str, path: str
) -> None:
    user = await register(client)
    body = {"name": "x"} if method in ("POST", "PATCH") else None
    response = await client.request(
        method, path.format(id=boss.id), json=body, headers=user.headers
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "Administrator role required"


async def test_api5_non_admin_api_key_on_an_admin_route_is_a_403(
    client: AsyncClient, boss: Account
) -> None:
    issued = await client.post(
        "/v1/api-keys", json={"name": "job", "roles": ["loader"]}, headers=boss.headers
    )
    response = await client.get("/v1/users", headers={"X-API-Key": issued.json()["key"]})
    assert response.status_code == 403
