"""Access tokens: every forgery or flaw is refused with 401, and account changes apply at once."""

import asyncio
import base64
import json
import time
from typing import Any

import jwt
import pytest
from bson import ObjectId
from fastapi import Request
from httpx import AsyncClient

from api import deps
from api.settings import Settings
from tests.factories import Account, admin, bearer, create_collection, patch_user, register

OTHER_KEY = "another-secret-key-" + "x" * 40


def claims_of(account: Account) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(account.access_token, options={"verify_signature": False})
    return claims


def signed(claims: dict[str, Any], key: str, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def assert_refused(client: AsyncClient, token: str) -> None:
    response = await client.get("/v1/auth/me", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"


async def test_access_token_carries_the_contract_claims(client: AsyncClient) -> None:
    account = await register(client)
    claims = claims_of(account)
    assert set(claims) >= {"sub", "exp", "iat", "iss", "aud", "jti", "sid"}
    assert claims["sub"] == account.id
    assert jwt.get_unverified_header(account.access_token)["alg"] == "HS256"


async def test_a_token_resigned_with_the_server_key_is_accepted(
    client: AsyncClient, settings: Settings
) -> None:
    # The control for the tests below: re-signing unchanged claims is not itself a flaw.
    account = await register(client)
    token = signed(claims_of(account), settings.signing_key())
    response = await client.get("/v1/auth/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["id"] == account.id


async def test_garbage_token_is_refused(client: AsyncClient) -> None:
    await assert_refused(client, "not-a-jwt")
    await assert_refused(client, "a.b.c")


async def test_token_signed_with_another_key_is_refused(client: AsyncClient) -> None:
    account = await register(client)
    await assert_refused(client, signed(claims_of(account), OTHER_KEY))


async def test_token_with_alg_none_is_refused(client: AsyncClient) -> None:
    account = await register(client)
    header = {"alg": "none", "typ": "JWT"}
    await assert_refused(client, f"{b64url(header)}.{b64url(claims_of(account))}.")


@pytest.mark.filterwarnings("ignore:The HMAC key")
async def test_token_of_another_algorithm_with_the_right_key_is_refused(
    client: AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    for algorithm in ("HS512", "HS384"):
        await assert_refused(client, signed(claims_of(account), settings.signing_key(), algorithm))


async def test_token_without_exp_is_refused(client: AsyncClient, settings: Settings) -> None:
    account = await register(client)
    claims = claims_of(account)
    del claims["exp"]
    await assert_refused(client, signed(claims, settings.signing_key()))


async def test_expired_token_is_refused(client: AsyncClient, settings: Settings) -> None:
    account = await register(client)
    now = int(time.time())
    claims = claims_of(account) | {"iat": now - 3600, "exp": now - 60}
    await assert_refused(client, signed(claims, settings.signing_key()))


async def test_token_accepted_before_is_still_refused_once_it_expires(
    client: AsyncClient, settings: Settings
) -> None:
    # A token's signature is checked once and remembered; its expiry must still be checked.
    account = await register(client)
    now = int(time.time())
    token = signed(claims_of(account) | {"iat": now - 10, "exp": now + 2}, settings.signing_key())
    accepted = await client.get("/v1/auth/me", headers=bearer(token))
    assert accepted.status_code == 200, accepted.text
    await asyncio.sleep(max(0.0, now + 2.1 - time.time()))
    await assert_refused(client, token)


async def test_token_for_another_audience_is_refused(
    client: AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    claims = claims_of(account) | {"aud": "some-other-api"}
    await assert_refused(client, signed(claims, settings.signing_key()))


async def test_token_from_another_issuer_is_refused(
    client: AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    claims = claims_of(account) | {"iss": "someone-else"}
    await assert_refused(client, signed(claims, settings.signing_key()))


async def test_token_without_sid_or_jti_is_refused(client: AsyncClient, settings: Settings) -> None:
    account = await register(client)
    for claim in ("sid", "jti", "sub", "iat"):
        claims = claims_of(account)
        del claims[claim]
        await assert_refused(client, signed(claims, settings.signing_key()))


async def test_token_naming_an_unknown_user_is_refused(
    client: AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    for sub in (str(ObjectId()), "not-an-object-id", 12345):
        claims = claims_of(account) | {"sub": sub}
        await assert_refused(client, signed(claims, settings.signing_key()))


async def test_token_naming_an_unknown_session_is_refused(
    client: AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    other = await register(client)
    for sid in (str(ObjectId()), "not-an-object-id", claims_of(other)["sid"]):
        claims = claims_of(account) | {"sid": sid}
        await assert_refused(client, signed(claims, settings.signing_key()))


async def test_missing_or_non_bearer_authorization_is_refused(client: AsyncClient) -> None:
    account = await register(client)
    for headers in ({}, {"Authorization": f"Basic {account.access_token}"}):
        response = await client.get("/v1/auth/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_deleted_users_token_is_refused_at_once(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200
    deleted = await client.delete(f"/v1/users/{account.id}", headers=boss.headers)
    assert deleted.status_code == 204
    await assert_refused(client, account.access_token)


async def test_disabled_users_token_is_refused_at_once(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200
    await patch_user(client, boss, account.id, disabled=True)
    await assert_refused(client, account.access_token)


async def test_granted_admin_role_applies_to_the_same_token_at_once(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    before = await client.get("/v1/users", headers=account.headers)
    assert before.status_code == 403
    assert before.json()["status"] == 403
    await patch_user(client, boss, account.id, roles=["admin"])
    after = await client.get("/v1/users", headers=account.headers)
    assert after.status_code == 200
    assert {user["id"] for user in after.json()["items"]} == {boss.id, account.id}


async def test_removed_admin_role_applies_to_the_same_token_at_once(client: AsyncClient) -> None:
    boss = await admin(client)
    deputy = await register(client)
    await patch_user(client, boss, deputy.id, roles=["admin", "editor"])
    assert (await client.get("/v1/users", headers=deputy.headers)).status_code == 200
    await patch_user(client, boss, deputy.id, roles=["editor"])
    response = await client.get("/v1/users", headers=deputy.headers)
    assert response.status_code == 403
    assert response.json()["status"] == 403


async def test_the_caller_is_worked_out_once_per_request(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rate budget, the collection guard and the route all ask who is calling.
    boss = await admin(client)
    await create_collection(client, boss, "notes", {"type": "object"}, rules={"read": ["owner"]})
    account = await register(client)
    created = await client.post("/v1/collections/notes/documents", json={}, headers=account.headers)
    identified: list[object] = []
    real = deps.identify

    async def counted(request: Request) -> deps.Principal | None:
        identified.append(request)
        return await real(request)

    monkeypatch.setattr(deps, "identify", counted)
    path = f"/v1/collections/notes/documents/{created.json()['_id']}"
    for _ in range(2):
        assert (await client.get(path, headers=account.headers)).status_code == 200
    assert len(identified) == 2 and identified[0] is not identified[1]
