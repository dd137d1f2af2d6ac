"""Argon2id hashing off the event loop, through a limiter sized to the machine's cores."""

import os
from functools import lru_cache

import anyio
from anyio import to_thread

from api import security

_limiter: anyio.CapacityLimiter | None = None


def _hashing_limiter() -> anyio.CapacityLimiter:
    # Created on first use, inside the running event loop; more threads than cores only queue.
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(os.cpu_count() or 1)
    return _limiter


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return security.hash_password(os.urandom(16).hex())


async def hash_password(password: str) -> str:
    return await to_thread.run_sync(security.hash_password, password, limiter=_hashing_limiter())


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Checks a password; with no hash (unknown account) it still spends the same time and fails."""
    if password_hash is None:
        await to_thread.run_sync(
            security.verify_password, _dummy_hash(), password, limiter=_hashing_limiter()
        )
        return False
    return await to_thread.run_sync(
        security.verify_password, password_hash, password, limiter=_hashing_limiter()
    )


async def prepare() -> None:
    """Computes the dummy hash at start-up so the first unknown-email login is not faster."""
    await to_thread.run_sync(_dummy_hash, limiter=_hashing_limiter())


def needs_rehash(password_hash: str) -> bool:
    return security.needs_rehash(password_hash)
