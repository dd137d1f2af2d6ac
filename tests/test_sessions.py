"""Sessions: refresh rotation and reuse detection, logout, expiry, and password changes."""

import asyncio
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from httpx import AsyncClient, Response

from api import security
from api.settings import Settings
from documents import Session
from tests.factories import PASSWORD, Account, bearer, login, register

NEW_PASSWORD = "a brand new passphrase"


async def refresh(client: AsyncClient, refresh_token: str) -> Response:
    return await client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})


async def me_status(client: AsyncClient, access_token: str) -> int:
    return (await client.get("/v1/auth/me", headers=bearer(access_token))).status_code


def assert_unauthorized(response: Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


async def test_refresh_returns_a_new_pair(client: AsyncClient) -> None:
    account = await register(client)
    response = await refresh(client, account.refresh_token)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["refresh_token"] != account.refresh_token
    assert body["access_token"] != account.access_token
    assert response.headers["Cache-Control"] == "no-store"
    me = await client.get("/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == account.id
    assert (await refresh(client, body["refresh_token"])).status_code == 200


async def test_rotated_refresh_token_stops_working(client: AsyncClient) -> None:
    account = await register(client)
    assert (await refresh(client, account.refresh_token)).status_code == 200
    assert_unauthorized(await refresh(client, account.refresh_token))


async def test_reused_refresh_token_revokes_session(client: AsyncClient) -> None:
    account = await register(client)
    first = (await refresh(client, account.refresh_token)).json()
    second = (await refresh(client, first["refresh_token"])).json()
    assert await me_status(client, second["access_token"]) == 200

    assert_unauthorized(await refresh(client, account.refresh_token))

    # The thief's replay ends the whole family: the newest refresh token and every access token.
    assert_unauthorized(await refresh(client, second["refresh_token"]))
    for access_token in (account.access_token, first["access_token"], second["access_token"]):
        assert await me_status(client, access_token) == 401


async def test_reused_refresh_token_leaves_other_sessions_alone(client: AsyncClient) -> None:
    account = await register(client)
    elsewhere = await login(client, account.email)
    assert (await refresh(client, account.refresh_token)).status_code == 200
    assert_unauthorized(await refresh(client, account.refresh_token))
    assert await me_status(client, elsewhere.access_token) == 200
    assert (await refresh(client, elsewhere.refresh_token)).status_code == 200


async def test_concurrent_use_of_one_refresh_token_succeeds_at_most_once(
    client: AsyncClient,
) -> None:
    account = await register(client)
    answers = await asyncio.gather(*(refresh(client, account.refresh_token) for _ in range(2)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses in ([200, 401], [401, 401])
    for answer in answers:
        if answer.status_code == 401:
            assert_unauthorized(answer)


async def test_unknown_refresh_token_is_refused(client: AsyncClient) -> None:
    assert_unauthorized(await refresh(client, security.new_refresh_token()))


async def test_empty_refresh_token_is_invalid(client: AsyncClient) -> None:
    response = await refresh(client, "")
    assert response.status_code == 422
    assert ["body", "refresh_token"] in [error["loc"] for error in response.json()["errors"]]


async def test_logout_ends_the_session(client: AsyncClient) -> None:
    account = await register(client)
    elsewhere = await login(client, account.email)
    response = await client.post("/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert response.status_code == 204
    assert response.content == b""
    assert_unauthorized(await refresh(client, account.refresh_token))
    assert await me_status(client, account.access_token) == 401
    # Only that session ends.
    assert await me_status(client, elsewhere.access_token) == 200


async def test_logout_with_a_rotated_token_still_ends_the_session(client: AsyncClient) -> None:
    account = await register(client)
    newer = (await refresh(client, account.refresh_token)).json()
    response = await client.post("/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert response.status_code == 204
    assert_unauthorized(await refresh(client, newer["refresh_token"]))
    assert await me_status(client, newer["access_token"]) == 401


async def insert_session(settings: Settings, user_id: str, expires_at: datetime) -> tuple[str, str]:
    """A session written straight to the database; returns its (access, refresh) tokens."""
    refresh_token = security.new_refresh_token()
    session_id = ObjectId()
    await Session.get_pymongo_collection().insert_one(
        {
            "_id": session_id,
            "user_id": user_id,
            "token_hash": security.hash_token(refresh_token),
            "spent_hashes": [],
            "revoked": False,
            "created": expires_at - timedelta(days=30),
            "expires_at": expires_at,
        }
    )
    access_token = security.create_access_token(
        user_id=user_id,
        session_id=str(session_id),
        key=settings.signing_key(),
        issuer=settings.issuer,
        audience=settings.audience,
        ttl=settings.access_token_ttl,
    )
    return access_token, refresh_token


async def test_expired_session_is_refused(client: AsyncClient, settings: Settings) -> None:
    account = await register(client)
    now = datetime.now(UTC)
    expired_access, expired_refresh = await insert_session(
        settings, account.id, now - timedelta(hours=1)
    )
    # The control: the same kind of session with a future expiry works.
    live_access, live_refresh = await insert_session(settings, account.id, now + timedelta(hours=1))
    assert await me_status(client, live_access) == 200
    assert (await refresh(client, live_refresh)).status_code == 200

    assert await me_status(client, expired_access) == 401
    assert_unauthorized(await refresh(client, expired_refresh))


async def change_password(
    client: AsyncClient, account: Account, current: str, new: str = NEW_PASSWORD
) -> Response:
    return await client.post(
        "/v1/auth/password",
        json={"current_password": current, "new_password": new},
        headers=account.headers,
    )


async def test_password_change_with_a_wrong_current_password_is_forbidden(
    client: AsyncClient,
) -> None:
    account = await register(client)
    response = await change_password(client, account, "not my password")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 403
    assert (await login(client, account.email, PASSWORD)).id == account.id


async def test_password_change_requires_authentication(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert_unauthorized(response)


async def test_password_change_refuses_a_too_short_new_password(client: AsyncClient) -> None:
    account = await register(client)
    response = await change_password(client, account, PASSWORD, "short")
    assert response.status_code == 422
    assert ["body", "new_password"] in [error["loc"] for error in response.json()["errors"]]


async def test_password_change_ends_other_sessions(client: AsyncClient) -> None:
    account = await register(client)
    elsewhere = await login(client, account.email)
    response = await change_password(client, account, PASSWORD)
    assert response.status_code == 204
    assert response.content == b""
    assert await me_status(client, elsewhere.access_token) == 401
    assert_unauthorized(await refresh(client, elsewhere.refresh_token))


async def test_password_change_keeps_the_current_session(client: AsyncClient) -> None:
    account = await register(client)
    assert (await change_password(client, account, PASSWORD)).status_code == 204
    assert await me_status(client, account.access_token) == 200
    assert (await refresh(client, account.refresh_token)).status_code == 200


async def test_new_password_signs_in_and_old_does_not(client: AsyncClient) -> None:
    account = await register(client)
    assert (await change_password(client, account, PASSWORD)).status_code == 204
    old = await client.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert_unauthorized(old)
    assert (await login(client, account.email, NEW_PASSWORD)).id == account.id
