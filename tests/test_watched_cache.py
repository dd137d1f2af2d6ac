"""The change-stream-kept cache of sessions and collection definitions (api/watched_cache.py).

Unit tests drive WatchedCache by hand (`_opened`, `_apply`, `_closed` stand in for the stream);
the rest run the app, whose watchers follow the embedded database's change streams.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect, OperationFailure, ServerSelectionTimeoutError

from api import security, watched_cache
from api.catalog import load_collection
from api.collection_admin import drop_collection
from api.problems import Problem
from api.watched_cache import Forgetting, WatchedCache, forget
from documents import Session
from documents.collections import CollectionDef
from tests.factories import (
    Account,
    admin,
    bearer,
    create_collection,
    eventually,
    eventually_async,
    login,
    patch_user,
    register,
)

NOTES: dict[str, Any] = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}},
}
# Signed-in callers may list and read every document; the other actions keep their defaults.
OPEN_TO_MEMBERS = {"list": ["authenticated"], "read": ["authenticated"]}


def live_cache(
    collection: str = "unit_things", *, max_entries: int = 10, max_age: float = 60.0
) -> WatchedCache:
    """A cache as if its change stream had just opened."""
    cache = WatchedCache(collection, max_entries=max_entries, max_age=max_age)
    cache._opened()
    return cache


@pytest.fixture(autouse=True)
async def change_streams(request: pytest.FixtureRequest) -> None:
    """The app's caches exist only where the server has change streams: a test database
    without them (a standalone mongod) keeps them off by design, so the tests of them skip."""
    if "app" not in request.fixturenames:
        return
    app: FastAPI = request.getfixturevalue("app")
    probe = app.state.mongo[app.state.settings.database]["change_stream_probe"]
    try:
        stream = await probe.watch()
    except OperationFailure as error:
        pytest.skip(f"the test database has no change streams: {error}")
    await stream.close()


# --- WatchedCache on its own ---------------------------------------------------------------


def test_put_is_refused_while_no_stream_is_open() -> None:
    cache = WatchedCache("unit_things", max_entries=10, max_age=60.0)
    assert cache.live is False
    cache.put("a", 1, "value", cache.generation)
    cache._opened()
    assert cache.get("a") is None


def test_live_cache_serves_what_was_put() -> None:
    cache = live_cache()
    assert cache.live is True
    cache.put("a", 1, {"v": 1}, cache.generation)
    assert cache.get("a") == {"v": 1}
    assert cache.get("b") is None


def test_read_begun_before_the_stream_opened_is_not_kept() -> None:
    cache = WatchedCache("unit_things", max_entries=10, max_age=60.0)
    generation = cache.generation
    cache._opened()  # changes before this were not watched
    cache.put("a", 1, "value", generation)
    assert cache.get("a") is None


@pytest.mark.parametrize(
    "drop",
    [
        lambda cache: cache.drop_document(999),  # any document, not only the one read
        lambda cache: cache.clear(),
        lambda cache: cache.drop_where(lambda value: False),  # even one that matched nothing
        lambda cache: cache._apply({"operationType": "update", "documentKey": {"_id": 999}}),
    ],
    ids=["drop_document", "clear", "drop_where", "change"],
)
def test_put_with_a_generation_from_before_a_drop_is_refused(
    drop: Callable[[WatchedCache], None],
) -> None:
    cache = live_cache()
    generation = cache.generation
    drop(cache)
    cache.put("a", 1, "stale", generation)
    assert cache.get("a") is None
    cache.put("a", 1, "fresh", cache.generation)
    assert cache.get("a") == "fresh"


def test_drop_document_removes_the_entry_by_document_id() -> None:
    cache = live_cache()
    cache.put("books", "id-1", "books definition", cache.generation)
    cache.put("films", "id-2", "films definition", cache.generation)
    cache.drop_document("books")  # a key is not a document id
    assert cache.get("books") == "books definition"
    cache.drop_document("id-1")
    assert cache.get("books") is None
    assert cache.get("films") == "films definition"


def test_replacing_an_entry_keeps_its_new_document_reachable() -> None:
    cache = live_cache()
    cache.put("books", "old-id", "old", cache.generation)
    cache.put("books", "new-id", "new", cache.generation)  # dropped and created again
    cache.drop_document("old-id")
    assert cache.get("books") == "new"
    cache.drop_document("new-id")
    assert cache.get("books") is None


def test_change_with_a_document_key_drops_only_that_document() -> None:
    cache = live_cache()
    first, second = ObjectId(), ObjectId()
    cache.put(first, first, "first", cache.generation)
    cache.put(second, second, "second", cache.generation)
    cache._apply({"operationType": "update", "documentKey": {"_id": first}})
    assert cache.get(first) is None
    assert cache.get(second) == "second"


@pytest.mark.parametrize(
    "change",
    [{"operationType": "drop"}, {"operationType": "invalidate"}, {"documentKey": {}}],
    ids=["drop", "invalidate", "key-without-id"],
)
def test_change_without_a_document_id_clears_everything(change: dict) -> None:
    cache = live_cache()
    cache.put("a", 1, "a", cache.generation)
    cache.put("b", 2, "b", cache.generation)
    cache._apply(change)
    assert cache.get("a") is None
    assert cache.get("b") is None
    assert cache.live is True


def test_max_entries_evicts_the_oldest() -> None:
    cache = live_cache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(key, key.upper(), key, cache.generation)
    assert cache.get("a") is None
    assert (cache.get("b"), cache.get("c")) == ("b", "c")
    # The evicted entry's document no longer points anywhere: dropping it touches nothing else.
    cache.drop_document("A")
    assert (cache.get("b"), cache.get("c")) == ("b", "c")


def test_expired_entry_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(watched_cache, "time", SimpleNamespace(monotonic=lambda: now[0]))
    cache = live_cache(max_age=10.0)
    cache.put("a", 1, "value", cache.generation)
    now[0] += 9.9
    assert cache.get("a") == "value"
    now[0] += 0.1
    assert cache.get("a") is None
    now[0] -= 5.0  # gone for good, not merely hidden
    assert cache.get("a") is None


def test_closing_the_stream_empties_the_cache_and_stops_it() -> None:
    cache = live_cache()
    cache.put("a", 1, "a", cache.generation)
    cache.put("b", 2, "b", cache.generation)
    generation = cache.generation
    cache._closed()
    assert cache.live is False
    assert cache.generation > generation  # a read in flight across the gap is not kept
    assert cache.get("a") is None
    cache.put("a", 1, "a", cache.generation)
    assert cache.get("a") is None
    # Changes during the gap went unseen: an entry from before it does not come back.
    cache._opened()
    assert cache.get("b") is None


def test_entry_is_not_served_while_no_stream_is_open() -> None:
    cache = live_cache()
    cache.put("a", 1, "value", cache.generation)
    cache._open_streams = 0  # the stream went away without `_closed` having run yet
    assert cache.get("a") is None


def test_forget_reaches_every_cache_of_the_collection_and_only_matching_entries() -> None:
    one, two = live_cache("unit_forget_sessions"), live_cache("unit_forget_sessions")
    other = live_cache("unit_forget_other")
    for cache in (one, two, other):
        cache.put("ann-1", "d1", {"user": "ann"}, cache.generation)
        cache.put("bob-1", "d2", {"user": "bob"}, cache.generation)
    generations = (one.generation, two.generation, other.generation)

    forget("unit_forget_sessions", lambda value: value["user"] == "ann")

    for cache in (one, two):
        assert cache.get("ann-1") is None
        assert cache.get("bob-1") == {"user": "bob"}
    assert (one.generation, two.generation) == (generations[0] + 1, generations[1] + 1)
    assert other.get("ann-1") == {"user": "ann"}
    assert other.generation == generations[2]

    forget("unit_forget_sessions")
    assert (one.get("bob-1"), two.get("bob-1")) == (None, None)
    assert other.get("bob-1") == {"user": "bob"}


# --- The watcher loop, against stand-in collections ----------------------------------------


HANG = "hang"


class FakeStream:
    """Plays `script`: a change, None (an empty batch), an error to raise, or HANG (a getMore
    that never answers)."""

    def __init__(
        self, script: list[dict | Exception | str | None], closing: Exception | None = None
    ) -> None:
        self.script = script
        self.alive = True
        self.closing = closing  # what closing it raises, as a close against a server gone does

    async def __aenter__(self) -> "FakeStream":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.alive = False
        if self.closing is not None:
            raise self.closing

    async def try_next(self) -> dict | None:
        if not self.script:
            return None
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if step == HANG:
            await asyncio.Event().wait()
        assert not isinstance(step, str)
        return step


class FakeCollection:
    """Hands out `streams` in turn (an exception is raised by `watch` itself), then idle ones."""

    def __init__(self, streams: list[FakeStream | Exception]) -> None:
        self.streams = streams
        self.calls = 0

    async def watch(self, *pipeline: Any, **options: Any) -> FakeStream:
        self.calls += 1
        step = self.streams.pop(0) if self.streams else FakeStream([])
        if isinstance(step, Exception):
            raise step
        return step


@contextlib.asynccontextmanager
async def watching(
    cache: WatchedCache, collection: FakeCollection
) -> AsyncIterator["asyncio.Task[None]"]:
    task = asyncio.create_task(cache.watch(cast(AsyncCollection, collection)))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


NO_CHANGE_STREAMS = OperationFailure(
    "The $changeStream stage is only supported on replica sets", code=40573
)


async def test_server_without_change_streams_leaves_the_cache_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watched_cache, "UNSUPPORTED_PAUSE", 0.01)
    monkeypatch.setattr(watched_cache, "RETRY_PAUSE", 3600.0)  # not the pause for this
    cache = WatchedCache("unit_watch", max_entries=10, max_age=60.0)
    collection = FakeCollection([NO_CHANGE_STREAMS, NO_CHANGE_STREAMS, NO_CHANGE_STREAMS])
    async with watching(cache, collection) as task:
        # It pauses after each refusal and asks again, rather than crashing or spinning.
        assert await eventually(lambda: collection.calls >= 2)
        assert not task.done()
        assert cache.live is False
        cache.put("a", 1, "value", cache.generation)
        assert cache.get("a") is None


async def test_refused_stream_waits_the_unsupported_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watched_cache, "RETRY_PAUSE", 0.0)  # the pause for other failures
    cache = WatchedCache("unit_watch", max_entries=10, max_age=60.0)
    collection = FakeCollection([NO_CHANGE_STREAMS, FakeStream([])])
    async with watching(cache, collection) as task:
        assert await eventually(lambda: collection.calls >= 1)
        for _ in range(5):  # a few turns of the loop: it must be pausing, not asking again
            await asyncio.sleep(0)
        assert collection.calls == 1
        assert cache.live is False
        assert not task.done()


def fast_watched(monkeypatch: pytest.MonkeyPatch, **pauses: float) -> WatchedCache:
    """A cache whose watcher polls at once after an empty answer, with `pauses` (RETRY_PAUSE=…)
    set for the test."""
    monkeypatch.setattr(watched_cache, "IDLE_PAUSE", 0.001)
    for name, seconds in pauses.items():
        monkeypatch.setattr(watched_cache, name, seconds)
    return WatchedCache("unit_watch", max_entries=10, max_age=60.0)


async def test_open_stream_serves_applies_changes_and_a_failure_empties_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = fast_watched(monkeypatch, RETRY_PAUSE=3600.0)
    stream = FakeStream([])
    collection = FakeCollection([stream])
    async with watching(cache, collection) as task:
        assert await eventually(lambda: cache.live)
        cache.put("a", "doc-a", "a", cache.generation)
        cache.put("b", "doc-b", "b", cache.generation)
        stream.script.append({"operationType": "delete", "documentKey": {"_id": "doc-a"}})
        assert await eventually(lambda: cache.get("a") is None)
        assert cache.get("b") == "b"

        stream.script.append(AutoReconnect("connection lost"))
        assert await eventually(lambda: not cache.live)
        assert cache.get("b") is None
        assert not task.done()
        assert collection.calls == 1  # waiting RETRY_PAUSE before opening another


async def test_failed_stream_is_reopened_and_serves_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = fast_watched(monkeypatch, RETRY_PAUSE=0.01)
    collection = FakeCollection([FakeStream([None, AutoReconnect("lost")]), FakeStream([])])
    async with watching(cache, collection):
        assert await eventually(lambda: collection.calls == 2 and cache.live)
        cache.put("a", 1, "value", cache.generation)
        assert cache.get("a") == "value"


async def test_stream_failing_with_a_server_error_empties_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = fast_watched(monkeypatch)
    stream = FakeStream([])
    async with watching(cache, FakeCollection([stream])):
        assert await eventually(lambda: cache.live)
        cache.put("a", 1, "value", cache.generation)
        stream.script.append(OperationFailure("history lost", code=286))
        assert await eventually(lambda: not cache.live)
        assert cache.get("a") is None


async def test_cancelled_while_its_stream_cannot_be_closed_the_watcher_still_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = fast_watched(monkeypatch, RETRY_PAUSE=0.0)
    gone = ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")
    collection = FakeCollection([FakeStream([HANG], closing=gone)])
    task = asyncio.create_task(cache.watch(cast(AsyncCollection, collection)))
    assert await eventually(lambda: cache.live)
    task.cancel()  # as the app's shutdown does, waiting for it to end
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=30)  # not reopening streams for ever
    assert collection.calls == 1
    assert cache.live is False


# --- The app's caches, kept by the embedded database's change streams ----------------------


def session_id(app: FastAPI, account: Account | str) -> ObjectId:
    token = account.access_token if isinstance(account, Account) else account
    settings = app.state.settings
    claims = security.decode_access_token(
        token, key=settings.signing_key(), issuer=settings.issuer, audience=settings.audience
    )
    return claims.session_id


async def cached_session(client: AsyncClient, app: FastAPI, token: str, path: str) -> ObjectId:
    """Calls `path` until the token's session is held in the cache (a change to some session
    arriving while a request reads its own keeps that read out of the cache)."""
    sessions: WatchedCache = app.state.sessions
    sid = session_id(app, token)

    async def held() -> bool:
        response = await client.get(path, headers=bearer(token))
        assert response.status_code == 200, response.text
        return sessions.get(sid) is not None

    assert await eventually_async(held), "the session never reached the cache"
    return sid


async def cached_definition(client: AsyncClient, app: FastAPI, name: str, token: str) -> Any:
    definitions: WatchedCache = app.state.definitions
    path = f"/v1/collections/{name}/documents"

    async def held() -> bool:
        response = await client.get(path, headers=bearer(token))
        assert response.status_code == 200, response.text
        return definitions.get(name) is not None

    assert await eventually_async(held), "the definition never reached the cache"
    return definitions.get(name)


def suspend_change_stream(monkeypatch: pytest.MonkeyPatch, cache: WatchedCache) -> None:
    """Changes arrive but are not applied, as if delivered late: only this process's own
    `forget` can then drop a copy."""
    monkeypatch.setattr(cache, "_apply", lambda change: None)


async def members_collection(client: AsyncClient, boss: Account, name: str = "notes") -> str:
    await create_collection(client, boss, name, NOTES, rules=OPEN_TO_MEMBERS)
    response = await client.post(
        f"/v1/collections/{name}/documents", json={"text": "hello"}, headers=boss.headers
    )
    assert response.status_code == 201, response.text
    doc_id: str = response.json()["_id"]
    return doc_id


async def test_both_caches_are_live_in_the_app(app: FastAPI) -> None:
    assert await eventually(lambda: app.state.sessions.live and app.state.definitions.live)


async def test_authenticated_request_keeps_the_callers_session(
    app: FastAPI, client: AsyncClient
) -> None:
    account = await register(client)
    assert app.state.sessions.live
    sid = await cached_session(client, app, account.access_token, "/v1/auth/me")
    held = app.state.sessions.get(sid)
    assert held["_id"] == sid
    assert held["user_id"] == account.id
    assert held["revoked"] is False


async def test_request_for_a_collection_keeps_its_definition(
    app: FastAPI, client: AsyncClient
) -> None:
    boss = await admin(client)
    await members_collection(client, boss)
    assert app.state.definitions.live
    held = await cached_definition(client, app, "notes", boss.access_token)
    assert held.name == "notes"
    assert held.definition.rules.read == ["authenticated"]


async def test_session_revoked_in_the_database_is_refused_once_its_change_arrives(
    app: FastAPI, client: AsyncClient
) -> None:
    account = await register(client)
    sid = await cached_session(client, app, account.access_token, "/v1/auth/me")
    # Another process's write: nothing here calls `forget`.
    result = await Session.get_pymongo_collection().update_one(
        {"_id": sid}, {"$set": {"revoked": True}}
    )
    assert result.modified_count == 1

    assert await eventually(lambda: app.state.sessions.get(sid) is None)
    response = await client.get("/v1/auth/me", headers=account.headers)
    assert response.status_code == 401, response.text


async def test_new_sessions_do_not_wake_the_cache(app: FastAPI, client: AsyncClient) -> None:
    # Changes arrive in order: a change to a session made after a new one was stored is seen
    # only once, so the new one's insert never reached the cache.
    account = await register(client)
    sessions: WatchedCache = app.state.sessions
    # The sessions emptied before this test send their own changes; let them all arrive.
    for _ in range(20):
        before = sessions.generation
        await asyncio.sleep(0.3)
        if sessions.generation == before:
            break
    stored = await Session.get_pymongo_collection().insert_one(
        {"user_id": account.id, "token_hash": "x" * 64, "revoked": False, "roles": []}
    )
    changed = await Session.get_pymongo_collection().update_one(
        {"_id": stored.inserted_id}, {"$set": {"revoked": True}}
    )
    assert changed.modified_count == 1

    assert await eventually(lambda: sessions.generation > before)
    await asyncio.sleep(0.3)  # room for a second change to show, were there one
    assert sessions.generation == before + 1


async def test_session_deleted_in_the_database_is_refused_once_its_change_arrives(
    app: FastAPI, client: AsyncClient
) -> None:
    account = await register(client)
    sid = await cached_session(client, app, account.access_token, "/v1/auth/me")
    await Session.get_pymongo_collection().delete_one({"_id": sid})

    async def refused() -> bool:
        response = await client.get("/v1/auth/me", headers=account.headers)
        return response.status_code == 401

    assert await eventually_async(refused)
    assert app.state.sessions.get(sid) is None  # a missing session is not kept


async def test_rules_changed_in_the_database_apply_once_their_change_arrives(
    app: FastAPI, client: AsyncClient
) -> None:
    boss = await admin(client)
    doc_id = await members_collection(client, boss)
    reader = await register(client)
    path = f"/v1/collections/notes/documents/{doc_id}"
    assert (await client.get(path, headers=reader.headers)).status_code == 200
    await cached_definition(client, app, "notes", reader.access_token)

    result = await CollectionDef.get_pymongo_collection().update_one(
        {"name": "notes"}, {"$set": {"rules.read": ["owner"]}, "$inc": {"version": 1}}
    )
    assert result.modified_count == 1

    assert await eventually(lambda: app.state.definitions.get("notes") is None)
    response = await client.get(path, headers=reader.headers)
    assert response.status_code == 404, response.text  # another owner's document: not found
    assert (await client.get(path, headers=boss.headers)).status_code == 200


async def test_definition_deleted_in_the_database_is_gone_once_its_change_arrives(
    app: FastAPI, client: AsyncClient
) -> None:
    boss = await admin(client)
    await members_collection(client, boss)
    await cached_definition(client, app, "notes", boss.access_token)

    result = await CollectionDef.get_pymongo_collection().delete_one({"name": "notes"})
    assert result.deleted_count == 1

    async def gone() -> bool:
        response = await client.get("/v1/collections/notes/documents", headers=boss.headers)
        return response.status_code == 404 and "No collection named" in response.text

    assert await eventually_async(gone)


# --- This process's own writes apply to its very next request ------------------------------
# The change stream is suspended, so a pass proves the write's own `forget` dropped the copy.


async def test_logout_refuses_the_session_at_once(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    other = await login(client, account.email)
    sid = await cached_session(client, app, account.access_token, "/v1/auth/me")
    other_sid = await cached_session(client, app, other.access_token, "/v1/auth/me")
    suspend_change_stream(monkeypatch, app.state.sessions)
    assert app.state.sessions.get(sid) is not None

    response = await client.post("/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert response.status_code == 204

    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 401
    # Only that session was dropped from the cache.
    assert app.state.sessions.get(other_sid) is not None
    assert (await client.get("/v1/auth/me", headers=other.headers)).status_code == 200


async def disable(client: AsyncClient, boss: Account, account: Account) -> None:
    await patch_user(client, boss, account.id, disabled=True)


async def delete(client: AsyncClient, boss: Account, account: Account) -> None:
    response = await client.delete(f"/v1/users/{account.id}", headers=boss.headers)
    assert response.status_code == 204


@pytest.mark.parametrize("end_account", [disable, delete])
async def test_ended_users_session_is_refused_at_once(
    app: FastAPI,
    client: AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    end_account: Callable[[AsyncClient, Account, Account], Awaitable[None]],
) -> None:
    boss = await admin(client)
    await members_collection(client, boss)
    account = await register(client)
    # Listing documents reads no user record: only the session says whether the caller may.
    path = "/v1/collections/notes/documents"
    sid = await cached_session(client, app, account.access_token, path)
    suspend_change_stream(monkeypatch, app.state.sessions)
    assert app.state.sessions.get(sid) is not None

    await end_account(client, boss, account)

    assert (await client.get(path, headers=account.headers)).status_code == 401


async def test_removed_role_applies_at_once(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await admin(client)
    deputy = await register(client)
    await patch_user(client, boss, deputy.id, roles=["admin"])
    sid = await cached_session(client, app, deputy.access_token, "/v1/users")
    suspend_change_stream(monkeypatch, app.state.sessions)
    assert app.state.sessions.get(sid)["roles"] == ["admin"]

    await patch_user(client, boss, deputy.id, roles=[])

    assert (await client.get("/v1/users", headers=deputy.headers)).status_code == 403


async def test_password_change_ends_the_other_sessions_at_once(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    other = await login(client, account.email)
    await cached_session(client, app, account.access_token, "/v1/auth/me")
    other_sid = await cached_session(client, app, other.access_token, "/v1/auth/me")
    suspend_change_stream(monkeypatch, app.state.sessions)
    assert app.state.sessions.get(other_sid) is not None

    response = await client.post(
        "/v1/auth/password",
        json={"current_password": account.password, "new_password": "a brand new passphrase"},
        headers=account.headers,
    )
    assert response.status_code == 204, response.text

    assert (await client.get("/v1/auth/me", headers=other.headers)).status_code == 401
    assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200


async def test_replayed_refresh_token_ends_the_session_at_once(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert rotated.status_code == 200
    newest = rotated.json()["access_token"]
    sid = await cached_session(client, app, newest, "/v1/auth/me")
    suspend_change_stream(monkeypatch, app.state.sessions)
    assert app.state.sessions.get(sid) is not None

    replay = await client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert replay.status_code == 401

    assert (await client.get("/v1/auth/me", headers=bearer(newest))).status_code == 401


async def test_rules_changed_through_the_api_apply_at_once(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await admin(client)
    doc_id = await members_collection(client, boss)
    reader = await register(client)
    path = f"/v1/collections/notes/documents/{doc_id}"
    await cached_definition(client, app, "notes", reader.access_token)
    suspend_change_stream(monkeypatch, app.state.definitions)
    assert app.state.definitions.get("notes") is not None

    response = await client.patch(
        "/v1/collections/notes", json={"rules": {"read": ["owner"]}}, headers=boss.headers
    )
    assert response.status_code == 200, response.text

    assert (await client.get(path, headers=reader.headers)).status_code == 404


async def test_collection_dropped_through_the_api_is_gone_at_once(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await admin(client)
    await members_collection(client, boss)
    await cached_definition(client, app, "notes", boss.access_token)
    suspend_change_stream(monkeypatch, app.state.definitions)
    assert app.state.definitions.get("notes") is not None

    assert (await client.delete("/v1/collections/notes", headers=boss.headers)).status_code == 204

    response = await client.get("/v1/collections/notes/documents", headers=boss.headers)
    assert response.status_code == 404
    assert "No collection named" in response.json()["detail"]


async def test_server_error_on_an_open_stream_is_retried_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # UNSUPPORTED_PAUSE is only for refused streams.
    cache = fast_watched(monkeypatch, RETRY_PAUSE=0.01, UNSUPPORTED_PAUSE=3600.0)
    failing = FakeStream([None, OperationFailure("history lost", code=286)])
    collection = FakeCollection([failing, FakeStream([])])
    async with watching(cache, collection):
        assert await eventually(lambda: collection.calls == 2 and cache.live)


async def test_stream_that_stops_answering_is_dropped_and_reopened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = fast_watched(monkeypatch, RETRY_PAUSE=0.01, STALL_LIMIT=0.05)
    hanging = FakeStream([])
    collection = FakeCollection([hanging, FakeStream([])])
    async with watching(cache, collection):
        assert await eventually(lambda: cache.live)
        cache.put("a", 1, "value", cache.generation)
        hanging.script.append(HANG)
        assert await eventually(lambda: collection.calls == 2)
        assert cache.get("a") is None  # what the silent stream vouched for is gone
        assert await eventually(lambda: cache.live)


def two_sessions_cached() -> WatchedCache:
    cache = live_cache("unit_forgetting")
    for name in ("a", "b"):
        cache.put(name, name, {"_id": name}, cache.generation)
    return cache


def test_a_write_drops_the_copies_it_names() -> None:
    cache = two_sessions_cached()
    with Forgetting("unit_forgetting") as written:
        written.only(lambda session: session["_id"] == "a")
    assert cache.get("a") is None
    assert cache.get("b") == {"_id": "b"}


def test_a_write_that_names_nothing_drops_nothing() -> None:
    cache = two_sessions_cached()
    with Forgetting("unit_forgetting"):
        pass
    assert cache.get("a") == {"_id": "a"} and cache.get("b") == {"_id": "b"}


def test_a_failed_write_drops_every_copy() -> None:
    # The server may have applied it before the error (a write-concern timeout, a lost reply).
    cache = two_sessions_cached()
    with pytest.raises(AutoReconnect), Forgetting("unit_forgetting") as written:
        written.only(lambda session: session["_id"] == "a")
        raise AutoReconnect("reply lost")
    assert cache.get("a") is None and cache.get("b") is None


async def test_dropping_through_a_stale_definition_is_refused(client: AsyncClient) -> None:
    # Another process's cache may still hold a definition that has since changed.
    boss = await admin(client)
    await members_collection(client, boss)
    stale = await load_collection("notes")
    assert stale is not None
    changed = await client.patch(
        "/v1/collections/notes", json={"rules": {"read": ["owner"]}}, headers=boss.headers
    )
    assert changed.status_code == 200, changed.text

    with pytest.raises(Problem) as refused:
        await drop_collection(stale)

    assert refused.value.status_code == 409
    assert await stale.storage.count_documents({}) == 1  # nothing was dropped
    assert await CollectionDef.find_one(CollectionDef.name == "notes") is not None
