"""Sign-in: `/v1/auth/login`, the OAuth2 form at `/v1/auth/token`, throttling and rehashing."""

import asyncio
import time

import argon2
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from api import passwords
from api.main import create_app
from api.settings import Settings
from documents import User
from documents.sessions import Session
from tests.factories import (
    PASSWORD,
    Account,
    admin,
    another_app,
    patch_user,
    register,
    unique_email,
)

PAIR_KEYS = {"access_token", "refresh_token", "token_type", "expires_in"}


WRONG_PASSWORD = "wrong password"


async def attempt(client: AsyncClient, email: str, password: str = WRONG_PASSWORD) -> Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def at_least_seconds_left_in_window(window: int, seconds: float) -> None:
    """Waits for the next fixed window when this one ends too soon for the test to fit in it."""
    left = window - time.time() % window
    if left < seconds:
        await asyncio.sleep(left + 0.05)


async def test_login_returns_a_token_pair(client: AsyncClient, settings: Settings) -> None:
    account = await register(client)
    response = await attempt(client, account.email, PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PAIR_KEYS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl
    assert body["refresh_token"] != account.refresh_token
    assert response.headers["Cache-Control"] == "no-store"
    me = await client.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == account.id


async def test_login_email_is_case_insensitive(client: AsyncClient) -> None:
    account = await register(client, "erin@example.com")
    response = await attempt(client, "Erin@EXAMPLE.com", PASSWORD)
    assert response.status_code == 200
    me = await client.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["id"] == account.id


async def test_wrong_password_and_unknown_email_answer_the_same(client: AsyncClient) -> None:
    account = await register(client)
    wrong_password = await attempt(client, account.email, "not the password")
    unknown_email = await attempt(client, unique_email("nobody"), "not the password")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.json()["status"] == 401
    assert wrong_password.headers["content-type"] == "application/problem+json"
    assert (
        wrong_password.headers["WWW-Authenticate"]
        == unknown_email.headers["WWW-Authenticate"]
        != ""
    )


async def test_disabled_user_cannot_log_in(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    await patch_user(client, boss, account.id, disabled=True)
    refused = await attempt(client, account.email, PASSWORD)
    unknown = await attempt(client, unique_email("nobody"), PASSWORD)
    assert refused.status_code == 401
    assert refused.json() == unknown.json()
    assert "WWW-Authenticate" in refused.headers


async def test_reenabled_user_can_log_in_again(client: AsyncClient) -> None:
    boss = await admin(client)
    account = await register(client)
    await patch_user(client, boss, account.id, disabled=True)
    await patch_user(client, boss, account.id, disabled=False)
    assert (await attempt(client, account.email, PASSWORD)).status_code == 200


async def test_login_is_throttled_per_account_and_address(client: AsyncClient) -> None:
    account = await register(client)
    other = await register(client)
    await at_least_seconds_left_in_window(60, 2)
    for _ in range(10):
        assert (await attempt(client, account.email)).status_code == 401
    limited = await attempt(client, account.email, PASSWORD)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["status"] == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # The limit is on this account from this address: another account still signs in.
    assert (await attempt(client, other.email, PASSWORD)).status_code == 200


async def test_login_is_throttled_per_address_across_accounts(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    strict = create_app(settings.model_copy(update={"login_rate": "2/hour"}))
    await at_least_seconds_left_in_window(3600, 2)
    async with another_app(strict, restore=app) as http:
        # Each attempt names a new account, so only the looser per-address limit can bite.
        answers = [(await attempt(http, unique_email("guess"))).status_code for _ in range(30)]
        limited = await attempt(http, account.email, PASSWORD)
    assert answers[0] == 401
    assert 429 in answers
    first_limited = answers.index(429)
    assert first_limited > 2  # looser than the per-account limit of 2
    assert set(answers[first_limited:]) == {429}
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


async def test_oauth2_form_signs_in(client: AsyncClient) -> None:
    account = await register(client)
    response = await client.post(
        "/v1/auth/token", data={"username": account.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == PAIR_KEYS
    assert body["token_type"] == "bearer"
    assert response.headers["Cache-Control"] == "no-store"
    me = await client.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["id"] == account.id


async def test_oauth2_form_refuses_bad_credentials(client: AsyncClient) -> None:
    account = await register(client)
    wrong = await client.post(
        "/v1/auth/token", data={"username": account.email, "password": "wrong password"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["status"] == 401
    assert "WWW-Authenticate" in wrong.headers
    not_email = await client.post(
        "/v1/auth/token", data={"username": "not an email", "password": PASSWORD}
    )
    assert not_email.status_code == 401
    assert not_email.json() == wrong.json()


async def test_login_rehashes_a_password_hashed_with_weaker_parameters(
    client: AsyncClient,
) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    email = unique_email("legacy")
    users = User.get_pymongo_collection()
    await users.insert_one(
        {"email": email, "name": None, "password_hash": weak, "roles": [], "disabled": False}
    )
    assert (await attempt(client, email, PASSWORD)).status_code == 200
    stored = await users.find_one({"email": email})
    assert stored is not None
    assert stored["password_hash"] != weak
    assert stored["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await attempt(client, email, PASSWORD)).status_code == 200
    assert (await attempt(client, email, "wrong password")).status_code == 401


NEW_PASSWORD = "a brand new passphrase"


def changing_password_while_checking(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch, account: Account
) -> None:
    """The next password check of a sign-in lets the account's owner change the password
    while it runs, as a change can land during the tens of milliseconds a hash takes."""
    real = passwords.verify_password

    async def check_then_change(password_hash: str | None, password: str) -> bool:
        valid = await real(password_hash, password)
        monkeypatch.setattr(passwords, "verify_password", real)
        changed = await client.post(
            "/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=account.headers,
        )
        assert changed.status_code == 204, changed.text
        return valid

    monkeypatch.setattr(passwords, "verify_password", check_then_change)


async def test_a_sign_in_with_a_password_changed_during_its_check_gets_no_session(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = await register(client)
    changing_password_while_checking(client, monkeypatch, victim)
    raced = await attempt(client, victim.email, PASSWORD)
    assert raced.status_code == 401
    sessions = await Session.find(Session.user_id == victim.id).to_list()
    # The victim's own session, kept by the change, and the raced one, revoked.
    assert sorted(session.revoked for session in sessions) == [False, True]
    assert (await attempt(client, victim.email, NEW_PASSWORD)).status_code == 200


async def test_a_rehash_at_sign_in_never_undoes_a_password_change(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = await register(client)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    users = User.get_pymongo_collection()
    await users.update_one({"email": victim.email}, {"$set": {"password_hash": weak}})
    changing_password_while_checking(client, monkeypatch, victim)
    assert (await attempt(client, victim.email, PASSWORD)).status_code == 401
    assert (await attempt(client, victim.email, PASSWORD)).status_code == 401
    assert (await attempt(client, victim.email, NEW_PASSWORD)).status_code == 200
