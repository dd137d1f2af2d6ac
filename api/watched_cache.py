"""A process's copy of documents every request reads, kept true by a change stream.

Serving the caller's session and the collection's definition from memory saves two database
round trips per request. A copy is only served while a change stream on its collection is open:
each change drops the copy of the document it touched, and a process that writes one of these
documents drops its own copy at once, so its next request reads the new state. Where change
streams are missing (a standalone mongod) or the stream fails, the cache empties and stays off,
and every read goes to the database as before.
"""

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure, PyMongoError

logger = logging.getLogger(__name__)

# MongoDB holds an empty getMore for up to MAX_AWAIT; a server that answers at once (the
# embedded stand-in without `api/embedded_await_data.py`) would be polled in a tight loop, so
# after a quick empty answer, wait.
MAX_AWAIT_MS = 1000
IDLE_PAUSE = 0.1
RETRY_PAUSE = 5.0
# Far longer than MongoDB holds a getMore: a stream silent for this long is taken as broken.
STALL_LIMIT = 30.0
# Change streams need a replica set or a sharded cluster; on a standalone server look rarely.
UNSUPPORTED_PAUSE = 300.0

# An insert leaves every copy true: misses are never kept, so nothing is held for a document
# before it exists. Leaving them out spares the process a wake-up for every sign-in.
CHANGES_THAT_MATTER = [{"$match": {"operationType": {"$ne": "insert"}}}]

# Every cache of this process, so that a write here drops the copies in all of them.
_all: weakref.WeakSet["WatchedCache"] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    document_id: Any
    expires: float


class WatchedCache:
    """Values keyed by what requests look them up by, each tied to the document it came from.

    `max_age` bounds how long a copy lives even if a change were somehow never delivered.
    """

    def __init__(self, collection: str, *, max_entries: int, max_age: float) -> None:
        self.collection = collection
        self._max_entries = max_entries
        self._max_age = max_age
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()
        self._keys: dict[Any, Any] = {}  # document id -> key
        self._open_streams = 0
        # Bumped by every drop: a read that began before a drop must not store what it read.
        self.generation = 0
        _all.add(self)

    @property
    def live(self) -> bool:
        return self._open_streams > 0

    def get(self, key: Any) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not self.live or entry.expires <= time.monotonic():
            self._remove(key)
            return None
        return entry.value

    def put(self, key: Any, document_id: Any, value: Any, generation: int) -> None:
        """Keeps `value`, read when `generation` was current, unless anything changed since."""
        if not self.live or generation != self.generation:
            return
        self._remove(key)
        self._entries[key] = _Entry(value, document_id, time.monotonic() + self._max_age)
        self._keys[document_id] = key
        if len(self._entries) > self._max_entries:
            self._remove(next(iter(self._entries)))

    def drop_document(self, document_id: Any) -> None:
        self.generation += 1
        key = self._keys.get(document_id)
        if key is not None:
            self._remove(key)

    def drop_where(self, predicate: Callable[[Any], bool]) -> None:
        self.generation += 1
        for key in [key for key, entry in self._entries.items() if predicate(entry.value)]:
            self._remove(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._keys.clear()

    def _remove(self, key: Any) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._keys.pop(entry.document_id, None)

    def _apply(self, change: dict) -> None:
        document_key = change.get("documentKey")
        if isinstance(document_key, dict) and "_id" in document_key:
            self.drop_document(document_key["_id"])
        else:  # drop, rename, invalidate: nothing known about any copy any more
            self.clear()

    async def watch(self, collection: AsyncCollection) -> None:
        """Follows the collection's changes until cancelled; a failed stream is reopened."""
        while True:
            try:
                stream = await collection.watch(CHANGES_THAT_MATTER, max_await_time_ms=MAX_AWAIT_MS)
            except OperationFailure as error:  # no change streams on this deployment
                logger.warning(
                    "No change stream on %s (%s); reading it on every request",
                    self.collection,
                    error,
                )
                await asyncio.sleep(UNSUPPORTED_PAUSE)
                continue
            except PyMongoError as error:
                logger.warning("Change stream on %s not opened: %s", self.collection, error)
                await asyncio.sleep(RETRY_PAUSE)
                continue
            try:
                async with stream:
                    await self._follow(stream)
            except Exception:  # whatever broke it, the cache is off until a stream reopens
                if _being_cancelled():
                    # Closing the stream failed as the task was cancelled (a server gone: the
                    # close's killCursors finds none), and that error replaced the cancellation.
                    # Swallowed, it would keep this loop, and the shutdown awaiting it, going.
                    raise asyncio.CancelledError from None
                logger.exception("Change stream on %s failed", self.collection)
                await asyncio.sleep(RETRY_PAUSE)

    async def _follow(self, stream: AsyncChangeStream) -> None:
        self._opened()
        try:
            while stream.alive:
                asked = time.monotonic()
                # A connection that hangs without failing must not leave the cache trusted.
                async with asyncio.timeout(STALL_LIMIT):
                    change = await stream.try_next()
                if change is not None:
                    self._apply(change)
                elif time.monotonic() - asked < MAX_AWAIT_MS / 2000:
                    await asyncio.sleep(IDLE_PAUSE)
        finally:
            self._closed()

    def _opened(self) -> None:
        self._open_streams += 1
        self.generation += 1  # reads that began before the stream opened are not covered by it

    def _closed(self) -> None:
        self._open_streams -= 1
        if self._open_streams == 0:
            self.clear()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def forget(collection: str, predicate: Callable[[Any], bool] | None = None) -> None:
    """After a write here: drops this process's copies from `collection` (all, or matching)."""
    for cache in list(_all):
        if cache.collection == collection:
            if predicate is None:
                cache.clear()
            else:
                cache.drop_where(predicate)


class Forgetting:
    """Around a write to `collection`: afterwards drops this process's copies that `only` names
    (none if it names none); after a failure, which may still have been applied, all of them."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self._which: Callable[[Any], bool] | None = None

    def only(self, which: Callable[[Any], bool]) -> None:
        self._which = which

    def __enter__(self) -> "Forgetting":
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            forget(self.collection)
        elif self._which is not None:
            forget(self.collection, self._which)
