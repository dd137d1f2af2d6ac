"""Argon2id hashing off the event loop, on a pool of threads sized to the machine's cores."""

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from api import security

T = TypeVar("T")
HASHING_NICENESS = 19


def _lower_priority() -> None:
    # Hashing may keep every core busy. At a lower priority its threads give way to the event
    # loop as soon as it has a request to serve, so sign-ins never stall other requests.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


# More hashing threads than cores would only queue; the pool's size is the limiter.
_pool = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 1, thread_name_prefix="argon2", initializer=_lower_priority
)


async def _off_loop(function: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, function, *args)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return security.hash_password(os.urandom(16).hex())


async def hash_password(password: str) -> str:
    return await _off_loop(security.hash_password, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Checks a password; with no hash (unknown account) it still spends the same time and fails."""
    if password_hash is None:
        await _off_loop(security.verify_password, _dummy_hash(), password)
        return False
    return await _off_loop(security.verify_password, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return security.needs_rehash(password_hash)


async def prepare() -> None:
    """Computes the dummy hash at start-up so the first unknown-email login is not faster."""
    await _off_loop(_dummy_hash)
