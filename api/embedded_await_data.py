"""Fix D to nx-27017, applied by `api.embedded_fixes` inside the embedded stand-in's process.

On MongoDB a getMore on a change stream with `maxTimeMS` (PyMongo's `max_await_time_ms`) is
held until an event arrives or the time is up; nx-27017 answers it at once, empty, so a
follower polls. Its asyncio server hands every command to `asyncio.to_thread`; the server
module's `asyncio` becomes the real one with a `to_thread` that, when such a getMore finds its
stream empty, waits on the event loop (no thread is held) until the server has handled a
command that may have written to that collection (anything but a known read; killCursors
too), then pulls again; when the time is up it answers the empty batch, as before. Every
other command runs exactly as it did.

It reaches into nx-27017's internals, so it applies only to the version it was written and
tested against; with any other the stand-in answers such a getMore at once, as before.
"""

import asyncio
import inspect
import logging
import math
import weakref
from collections.abc import Callable
from importlib import metadata
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)
_PATCHED = "__cabinet_patched__"


def installed_nx_version() -> str | None:
    try:
        return metadata.version("nx_27017")
    except metadata.PackageNotFoundError:
        return None


NX_WRITTEN_FOR = "0.8.1"
# At most this long between two pulls of a held getMore, whatever woke it or not. Wake-ups come
# from the write commands this server handles, and no other process can write its SQLite files,
# but a few changes reach a stream's log without one: neosqlite deletes TTL-expired documents
# when a find or count reads their collection (and may sweep them from a thread of its own), and
# a command wrongly taken for a read here would be one too. MongoDB itself deletes expired
# documents only once a minute, so a second's delay is well within what it allows; a pull costs
# one indexed SELECT, and Cabinet's getMores (`max_await_time_ms=1000`) never last long enough
# to need one.
SAFETY_REPULL = 1.0
# The first keys of the commands that cannot add to a change stream's log. Any other command,
# every insert and anything unrecognised counts as a write: waking a held getMore for nothing
# costs one pull. killCursors is one of the others on purpose: a getMore held on a stream that
# another connection kills then ends at once (its pull finds no stream: an exhausted cursor).
_READS = frozenset(
    {
        "find",
        "getMore",
        "count",
        "distinct",
        "listCollections",
        "listcollections",
        "listIndexes",
        "listDatabases",
        "listdatabases",
        "hello",
        "Hello",
        "isMaster",
        "ismaster",
        "ping",
        "buildInfo",
        "buildinfo",
        "serverStatus",
        "dbStats",
        "dbstats",
        "collStats",
        "collstats",
        "whatsmyuri",
        "endSessions",
    }
)
# Commands whose first value names the one collection they write; others may write any of their
# database's, and one sent to `admin` (transactions' commits, bulkWrite, renames) any at all.
_ONE_COLLECTION_WRITES = frozenset({"insert", "update", "delete", "findAndModify", "findandmodify"})
_HANDLER_CALLS = frozenset({"handle_command", "handle_insert", "handle_query"})
# Where a write landed, or where a held getMore looks: (database, collection), None for any.
_Scope = tuple[str | None, str | None]
_ANYWHERE: _Scope = (None, None)


def apply() -> bool:
    """Makes nx-27017's asyncio server hold empty change stream getMores; whether it does."""
    version = installed_nx_version()
    if version != NX_WRITTEN_FOR:
        logger.warning("nx-27017 %s is not %s: awaitData fix not applied", version, NX_WRITTEN_FOR)
        return False
    try:
        from nx_27017 import server
        from nx_27017.changestream import ChangeStreamManager
        from nx_27017.handler import NeoSQLiteHandler

        for name in ("get_stream", "pull_stream"):
            getattr(ChangeStreamManager, name)  # must exist
        for name in _HANDLER_CALLS:
            getattr(NeoSQLiteHandler, name)  # must exist
        if getattr(server.asyncio, _PATCHED, False):
            return True
        # Every command reaches the handler as `await asyncio.to_thread(handler.handle_...)`
        # in `handle_client`, the asyncio server's loop over one connection's messages.
        source = inspect.getsource(server.handle_client)
        if server.asyncio is not asyncio or not all(
            call in source
            for call in ("asyncio.to_thread(", "handler.handle_command", "handler.handle_insert")
        ):
            raise AttributeError("handle_client no longer hands commands to asyncio.to_thread")
    except (ImportError, AttributeError, OSError, TypeError) as error:
        logger.warning("nx-27017 internals moved (%s): awaitData fix not applied", error)
        return False
    server.asyncio = _ServerAsyncio(asyncio, NeoSQLiteHandler)
    return True


class _Waiter:
    """One held getMore: woken by a write that may reach its stream."""

    __slots__ = ("scope", "woken")

    def __init__(self) -> None:
        # Any write wakes it until its pull has said which stream it follows.
        self.scope: _Scope = _ANYWHERE
        self.woken = asyncio.Event()

    def may_see(self, written: _Scope) -> bool:
        return all(
            mine is None or theirs is None or mine == theirs
            for mine, theirs in zip(self.scope, written, strict=True)
        )


class _Waiting:
    """The getMores held by one server (handler)."""

    def __init__(self) -> None:
        self._waiters: set[_Waiter] = set()

    def hold(self) -> _Waiter:
        waiter = _Waiter()
        self._waiters.add(waiter)
        return waiter

    def release(self, waiter: _Waiter) -> None:
        self._waiters.discard(waiter)

    def wrote(self, scope: _Scope) -> None:
        for waiter in self._waiters:
            if waiter.may_see(scope):
                waiter.woken.set()


class _ServerAsyncio:
    """`asyncio` as `nx_27017.server` sees it after fix D: the module itself, but for `to_thread`.

    A getMore with `maxTimeMS` whose pull finds its change stream empty is not answered at once:
    it waits, on the event loop and without a thread, until this server has handled a command
    that may have written to the stream's collection, then pulls again; once `maxTimeMS` has
    passed it answers its last (empty) pull. Every other call is passed on unchanged.
    """

    def __init__(self, real: ModuleType, handler_class: type) -> None:
        self._real = real
        self._handler_class = handler_class
        self._waiting: weakref.WeakKeyDictionary[Any, _Waiting] = weakref.WeakKeyDictionary()
        self._warned = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def to_thread(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        handler = getattr(func, "__self__", None)
        call = getattr(func, "__name__", None)
        if (
            call not in _HANDLER_CALLS
            or not isinstance(handler, self._handler_class)
            or len(args) != 1
            or kwargs
        ):
            return await self._real.to_thread(func, *args, **kwargs)
        message = args[0]
        waiting = self._waiting.get(handler)
        if waiting is None:
            waiting = self._waiting[handler] = _Waiting()
        seconds = _held_for(call, message)
        get_stream = self._stream_finder(handler) if seconds is not None else None
        if seconds is not None and get_stream is not None:
            return await self._held(func, message, seconds, waiting, get_stream)
        # Read before the call: handle_insert takes `$db` out of the command.
        written = _written(call, message)
        try:
            return await self._real.to_thread(func, message)
        finally:
            # Also after a failure, which may have written part of a batch.
            if written is not None:
                waiting.wrote(written)

    def _stream_finder(self, handler: Any) -> Callable[[int], Any] | None:
        get_stream = getattr(getattr(handler, "_change_stream_manager", None), "get_stream", None)
        if callable(get_stream):
            return get_stream
        if not self._warned:
            self._warned = True
            logger.warning("nx-27017 internals moved: change stream getMores answered at once")
        return None

    async def _held(
        self,
        func: Callable[..., Any],
        message: Any,
        seconds: float,
        waiting: _Waiting,
        get_stream: Callable[[int], Any],
    ) -> Any:
        def pull() -> tuple[Any, Any]:
            answer = func(message)
            return answer, _empty_stream(answer, get_stream)

        loop = self._real.get_running_loop()
        deadline = loop.time() + seconds
        # Waiting before the first pull starts, so a write that lands after it began still wakes it.
        waiter = waiting.hold()
        try:
            answer, stream = await self._real.to_thread(pull)
            while stream is not None:
                waiter.scope = (
                    _name_or_none(getattr(stream, "db_name", None)),
                    _name_or_none(getattr(stream, "collection_name", None)),
                )
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with self._real.timeout(min(remaining, SAFETY_REPULL)):
                        await waiter.woken.wait()
                except TimeoutError:
                    if loop.time() >= deadline:
                        break
                # Cleared before the pull starts: a write landing from here on wakes it again.
                waiter.woken.clear()
                answer, stream = await self._real.to_thread(pull)
            # If the client has gone meanwhile, the server fails to send this, as it tolerates.
            return answer
        finally:
            waiting.release(waiter)


setattr(_ServerAsyncio, _PATCHED, True)


def _body(message: Any) -> Any:
    for section, document in message.get("sections", ()):
        if section == "body":
            return document
    return None


def _held_for(call: str, message: Any) -> float | None:
    """How long a getMore may be held (its `maxTimeMS`), if it is one that carries it."""
    try:
        body = _body(message) if call == "handle_command" else None
        if not isinstance(body, dict) or next(iter(body), None) != "getMore":
            return None
        wait = body.get("maxTimeMS")
    except (AttributeError, TypeError, ValueError):
        return None
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait):
        return None
    return wait / 1000 if wait > 0 else None


def _written(call: str, message: Any) -> _Scope | None:
    """Where a command may have written, or None if it is a read."""
    try:
        if call == "handle_query":  # legacy OP_QUERY: a find, or a command sent to `$cmd`
            if not str(message.get("collection") or "$cmd").endswith("$cmd"):
                return None
            body = message.get("query")
            if isinstance(body, dict) and "$query" in body:
                body = body["$query"]
            database = message.get("db", "admin")
        else:
            body = _body(message)
            database = body.get("$db", "test") if isinstance(body, dict) else None
        name = next(iter(body), None) if isinstance(body, dict) else None
        if call != "handle_insert" and (name in _READS or _reads_only(name, body)):
            return None
        if not isinstance(database, str) or database == "admin":
            return _ANYWHERE
        target = body.get(name) if name in _ONE_COLLECTION_WRITES else None
        return database, target if isinstance(target, str) else None
    except (AttributeError, TypeError, ValueError):
        return _ANYWHERE


def _reads_only(name: Any, body: Any) -> bool:
    """Whether an aggregate writes nothing (no `$out` or `$merge` stage)."""
    pipeline = body.get("pipeline") if name == "aggregate" else None
    return isinstance(pipeline, list) and not any(
        isinstance(stage, dict) and ("$out" in stage or "$merge" in stage) for stage in pipeline
    )


def _empty_stream(answer: Any, get_stream: Callable[[int], Any]) -> Any:
    """The change stream a getMore's answer comes from, if it carries no event; else None."""
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], dict)):
        return None
    cursor = answer[1].get("cursor")
    if answer[1].get("ok") != 1 or not isinstance(cursor, dict) or cursor.get("nextBatch") != []:
        return None
    cursor_id = cursor.get("id")
    if isinstance(cursor_id, bool) or not isinstance(cursor_id, int) or cursor_id == 0:
        return None
    return get_stream(cursor_id)


def _name_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
