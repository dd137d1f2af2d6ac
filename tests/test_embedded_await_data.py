"""Fix D: on the stand-in, as on MongoDB, a change stream's getMore with `max_await_time_ms`
waits for the next change (awaitData) rather than answering at once, empty.

The tests through `database_url` hold on MongoDB too (CABINET_TEST_MONGODB_URL). The others patch
nx-27017's server module in this process, then restore it.
"""

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from api import embedded_await_data
from tests.factories import eventually


@pytest.fixture
def server_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    from nx_27017 import server

    # Setting it to itself makes monkeypatch put the original back after the test.
    monkeypatch.setattr(server, "asyncio", server.asyncio)
    return server


class GetMores(CommandListener):
    """Counts the getMores a client has sent; `reached` once they are `expected`."""

    def __init__(self) -> None:
        self.sent = 0
        self.expected = 1
        self.reached = asyncio.Event()

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "getMore":
            self.sent += 1
            if self.sent >= self.expected:
                self.reached.set()

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


Watched = tuple[AsyncCollection, GetMores, AsyncCollection]


@pytest.fixture
async def watched(database_url: str) -> AsyncIterator[Watched]:
    """One collection: as a client watches it (its getMores counted), and as another writes it."""
    listener = GetMores()
    watcher: AsyncMongoClient = AsyncMongoClient(database_url, event_listeners=[listener])
    writer: AsyncMongoClient = AsyncMongoClient(database_url)
    name = f"embedded_await_{uuid.uuid4().hex[:12]}"
    try:
        await writer[name]["watched"].insert_one({"seed": True})
        yield watcher[name]["watched"], listener, writer[name]["watched"]
    finally:
        await writer.drop_database(name)
        await watcher.close()
        await writer.close()


async def until_sent(listener: GetMores, count: int, tasks: list[asyncio.Task]) -> None:
    """Until the watcher has sent `count` getMores, and a moment more for them to arrive."""
    listener.expected = count
    if listener.sent < count:
        listener.reached.clear()
        reached = asyncio.create_task(listener.reached.wait())
        # Or until one of them fails.
        await asyncio.wait([reached, *tasks], return_when=asyncio.FIRST_COMPLETED)
        reached.cancel()
    # Also long enough for a getMore that is not held to have come back empty.
    await asyncio.sleep(0.2)


async def test_a_change_stream_getmore_waits_for_the_next_change(watched: Watched) -> None:
    collection, listener, writer = watched
    async with await collection.watch(max_await_time_ms=5000) as stream:
        waiting = asyncio.create_task(stream.try_next())
        await until_sent(listener, 1, [waiting])
        inserted = await writer.insert_one({"n": 1})
        change = await waiting
    assert change is not None
    assert change["operationType"] == "insert"
    assert change["documentKey"]["_id"] == inserted.inserted_id


async def test_an_empty_change_stream_getmore_is_held_for_its_max_await_time(
    watched: Watched,
) -> None:
    collection, _, _ = watched
    async with await collection.watch(max_await_time_ms=300) as stream:
        began = time.monotonic()
        change = await stream.try_next()
        held = time.monotonic() - began
    assert change is None
    # At least the time asked for (less a margin for clocks): MongoDB's semantics, not a speed.
    assert held >= 0.25


async def test_other_clients_are_served_while_getmores_wait(watched: Watched) -> None:
    collection, listener, writer = watched
    # More waiting getMores than the stand-in has threads for commands.
    streams = [await collection.watch(max_await_time_ms=10_000) for _ in range(40)]
    waiting = [asyncio.create_task(stream.try_next()) for stream in streams]
    try:
        await until_sent(listener, len(streams), waiting)
        assert await writer.find_one({"seed": True}) is not None
        assert not any(task.done() for task in waiting)
        await writer.update_one({"seed": True}, {"$set": {"n": 2}})
        changes = await asyncio.gather(*waiting)
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for stream in streams:
            await stream.close()
    assert [change and change["operationType"] for change in changes] == ["update"] * len(streams)


# In-process: nx-27017's server module and handler, patched here and restored after each test.


def test_an_unknown_nx_27017_version_is_refused_without_holding(
    server_module: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from nx_27017 import server

    for version in ("0.8.2", "0.8", "0.8.1.post1", None):
        monkeypatch.setattr(embedded_await_data, "installed_nx_version", lambda v=version: v)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=embedded_await_data.__name__):
            assert embedded_await_data.apply() is False
        assert server.asyncio is asyncio
        assert "awaitData fix not applied" in caplog.text


async def handle_client_in_a_thread_of_its_own(reader: Any, writer: Any, handler: Any) -> None:
    """A `handle_client` that no longer hands commands to `asyncio.to_thread`."""
    await asyncio.get_running_loop().run_in_executor(None, handler.handle_command, reader)


@pytest.mark.parametrize("moved", ["get_stream", "handle_client"])
def test_moved_nx_27017_internals_are_refused_without_holding(
    server_module: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    moved: str,
) -> None:
    from nx_27017 import server
    from nx_27017.changestream import ChangeStreamManager

    if moved == "get_stream":
        monkeypatch.delattr(ChangeStreamManager, "get_stream")
    else:
        monkeypatch.setattr(server, "handle_client", handle_client_in_a_thread_of_its_own)
    with caplog.at_level(logging.WARNING, logger=embedded_await_data.__name__):
        assert embedded_await_data.apply() is False
    assert server.asyncio is asyncio
    assert "nx-27017 internals moved" in caplog.text


def test_the_server_gets_one_asyncio_that_passes_the_rest_through(
    server_module: Any,
) -> None:
    from nx_27017 import server

    assert embedded_await_data.apply() is True
    patched = server.asyncio
    assert patched is not asyncio
    assert embedded_await_data.apply() is True
    assert server.asyncio is patched
    for name in ("IncompleteReadError", "StreamReader", "start_server", "run"):
        assert getattr(patched, name) is getattr(asyncio, name)


def message(body: dict[str, Any], connection: str = "one") -> dict[str, Any]:
    """An OP_MSG as nx-27017's server hands it to its handler."""
    return {"request_id": 1, "sections": [("body", body)], "_conn_id": connection}


@pytest.fixture
def stand_in(server_module: Any) -> Iterator[tuple[Any, Any]]:
    """The patched server's `asyncio`, and a handler over in-memory databases counting pulls."""
    from nx_27017 import server
    from nx_27017.handler import NeoSQLiteHandler

    class Counting(NeoSQLiteHandler):
        getmores = 0
        answered = threading.Condition()

        def handle_command(self, msg: dict[str, Any]) -> Any:
            answer = super().handle_command(msg)
            if "getMore" in msg["sections"][0][1]:
                with self.answered:
                    self.getmores += 1
                    self.answered.notify_all()
            return answer

        def until(self, getmores: int) -> None:
            """Until that many getMore pulls have been answered."""
            with self.answered:
                self.answered.wait_for(lambda: self.getmores >= getmores, timeout=60)

    assert embedded_await_data.apply() is True
    handler = Counting(data_dir="memory")
    try:
        yield server.asyncio, handler
    finally:
        handler.close_all()


async def run(stand_in: tuple[Any, Any], body: dict[str, Any], connection: str = "one") -> Any:
    patched, handler = stand_in
    call = handler.handle_insert if "insert" in body else handler.handle_command
    return (await patched.to_thread(call, message(body, connection)))[1]


async def open_stream(stand_in: tuple[Any, Any], database: str, collection: str) -> int:
    await run(stand_in, {"insert": collection, "documents": [{"a": 1}], "$db": database})
    opened = await run(
        stand_in,
        {
            "aggregate": collection,
            "pipeline": [{"$changeStream": {}}],
            "cursor": {},
            "$db": database,
        },
    )
    return int(opened["cursor"]["id"])


def get_more(stand_in: tuple[Any, Any], stream: int, wait_ms: int) -> asyncio.Task:
    body = {"getMore": stream, "collection": "c", "maxTimeMS": wait_ms, "$db": "d"}
    return asyncio.create_task(run(stand_in, body, "watcher"))


def held_on_its_stream(stand_in: tuple[Any, Any]) -> bool:
    """Whether the server holds a getMore that knows its stream (its first pull answered)."""
    patched, handler = stand_in
    waiting = patched._waiting.get(handler)
    waiters = waiting._waiters if waiting is not None else ()
    return any(waiter.scope != embedded_await_data._ANYWHERE for waiter in waiters)


async def test_a_held_getmore_is_pulled_again_after_each_write_it_may_see(
    stand_in: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, handler = stand_in
    monkeypatch.setattr(embedded_await_data, "SAFETY_REPULL", 600.0)  # only writes wake it here
    stream = await open_stream(stand_in, "d", "c")
    await open_stream(stand_in, "e", "c")
    waiting = get_more(stand_in, stream, 60_000)
    assert await eventually(lambda: held_on_its_stream(stand_in))

    # Reads, and writes to other collections or databases, cannot reach its stream.
    await run(stand_in, {"find": "c", "filter": {}, "$db": "d"})
    await run(stand_in, {"insert": "other", "documents": [{"a": 2}], "$db": "d"})
    await run(stand_in, {"insert": "c", "documents": [{"a": 3}], "$db": "e"})
    await asyncio.sleep(0.2)
    assert (handler.getmores, waiting.done()) == (1, False)

    # A command not known to be a read counts as a write; no event, so it waits on.
    await run(stand_in, {"cabinetUnknownCommand": 1, "$db": "d"})
    await asyncio.to_thread(handler.until, 2)
    await asyncio.sleep(0.2)
    assert (handler.getmores, waiting.done()) == (2, False)

    update = {"q": {"a": 1}, "u": {"$set": {"b": 1}}}
    await run(stand_in, {"update": "c", "updates": [update], "$db": "d"}, "writer")
    answer = await waiting
    assert handler.getmores == 3
    assert answer["cursor"]["id"] == stream
    assert [change["operationType"] for change in answer["cursor"]["nextBatch"]] == ["update"]


async def test_a_held_getmore_ends_when_its_cursor_is_killed(
    stand_in: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_await_data, "SAFETY_REPULL", 600.0)  # only the kill wakes it
    stream = await open_stream(stand_in, "d", "c")
    waiting = get_more(stand_in, stream, 600_000)
    assert await eventually(lambda: held_on_its_stream(stand_in))
    killed = await run(stand_in, {"killCursors": "c", "cursors": [stream], "$db": "d"}, "other")
    assert killed["cursorsKilled"] == [stream]
    # Not the ten minutes it may be held: the kill ends it (the bound is only a generous guard).
    answer = await asyncio.wait_for(waiting, timeout=30)
    assert answer["cursor"] == {"id": 0, "ns": "d.c", "nextBatch": []}  # nothing more to follow


@pytest.mark.parametrize(
    ("call", "body", "written"),
    [
        ("handle_command", {"find": "c", "$db": "d"}, None),
        ("handle_command", {"getMore": 7, "collection": "c", "$db": "d"}, None),
        ("handle_command", {"aggregate": "c", "pipeline": [{"$match": {}}], "$db": "d"}, None),
        (
            "handle_command",
            {"aggregate": "c", "pipeline": [{"$out": "o"}], "$db": "d"},
            ("d", None),
        ),
        (
            "handle_command",
            {"aggregate": "c", "pipeline": [{"$merge": "o"}], "$db": "d"},
            ("d", None),
        ),
        ("handle_command", {"aggregate": "c", "$db": "d"}, ("d", None)),
        ("handle_command", {"update": "c", "updates": [], "$db": "d"}, ("d", "c")),
        ("handle_command", {"delete": "c", "deletes": [], "$db": "d"}, ("d", "c")),
        ("handle_command", {"findAndModify": "c", "$db": "d"}, ("d", "c")),
        ("handle_command", {"drop": "c", "$db": "d"}, ("d", None)),
        ("handle_command", {"killCursors": "c", "cursors": [7], "$db": "d"}, ("d", None)),
        ("handle_command", {"cabinetUnknownCommand": 1, "$db": "d"}, ("d", None)),
        ("handle_command", {"commitTransaction": 1, "$db": "admin"}, (None, None)),
        ("handle_command", {"update": "c"}, ("test", "c")),  # nx-27017's default database
        ("handle_insert", {"insert": "c", "$db": "d"}, ("d", "c")),
        ("handle_insert", {"find": "c", "$db": "d"}, ("d", None)),
    ],
)
def test_anything_not_known_to_read_counts_as_a_write(
    call: str, body: dict[str, Any], written: tuple[str | None, str | None] | None
) -> None:
    assert embedded_await_data._written(call, message(body)) == written
