"""`python -m bench.hot_path [get|create|inc|list|login] [--requests N]`: one hot path, profiled.

Runs the app in this process against the embedded database and calls it straight through ASGI
(no HTTP server, no load generator), so the profile holds Cabinet's own work, FastAPI's and the
driver's, and nothing else. Prints CPU time per request with and without the profiler, then
the functions that took the most of it. `login` is a sign-in with the password check answering
at once: the rest of a sign-in, which the Argon2 hash (its own threads) otherwise drowns.
"""

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging.config
import pstats
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import urlencode

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from starlette.types import ASGIApp

from api import passwords
from api.bootstrap import ensure_admin
from api.embedded import EmbeddedDatabase
from api.logs import configure_logging
from api.main import create_app
from api.settings import Settings
from bench.dataset import ITEMS_INDEXES, ITEMS_SCHEMA, item, items_ndjson
from bench.scenarios import INC_BODY, JSON, LIST_FILTER, LIST_SORT
from bench.servers import ADMIN_EMAIL, ADMIN_PASSWORD, UNLIMITED_RATE

READER = {"email": "hot-path@example.com", "password": "hot-path-password"}
LISTED_ITEMS = 3000
Call = Callable[[], Awaitable[int]]


def http_scope(
    method: str, path: str, headers: dict[str, str], query: bytes = b""
) -> dict[str, Any]:
    """The ASGI scope of a request from 127.0.0.1 to `path` with `headers`."""
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [*raw, (b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def asgi(
    app: ASGIApp,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    query: bytes = b"",
) -> int:
    """One request straight into the app; returns its status."""
    if body:
        headers = {**headers, "content-length": str(len(body))}
    scope = http_scope(method, path, headers, query)
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    statuses: list[int] = []

    async def receive() -> MutableMapping[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # a disconnect never comes
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def prepare(app: FastAPI, scenario: str) -> Call:
    await ensure_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as http:
        login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        admin = (await http.post("/v1/auth/login", json=login)).json()["access_token"]
        definition = {"name": "items", "schema": ITEMS_SCHEMA, "indexes": ITEMS_INDEXES}
        created = await http.post(
            "/v1/collections", json=definition, headers={"Authorization": f"Bearer {admin}"}
        )
        created.raise_for_status()
        token = (await http.post("/v1/auth/register", json=READER)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        stored = await http.post(
            "/v1/collections/items/documents", json=item(1, random.Random(1)), headers=auth
        )
        stored.raise_for_status()
        if scenario == "list":
            imported = await http.post(
                "/v1/collections/items/import",
                content=items_ndjson(0, LISTED_ITEMS),
                headers={**auth, "Content-Type": "application/x-ndjson"},
            )
            imported.raise_for_status()
    document = f"/v1/collections/items/documents/{stored.json()['_id']}"
    as_json = {**auth, "Content-Type": "application/json"}
    new_item = json.dumps(item(2, random.Random(2))).encode()
    inc = json.dumps(INC_BODY).encode()
    listing = urlencode({"filter": json.dumps(LIST_FILTER), "sort": LIST_SORT, "limit": 50})
    calls: dict[str, Call] = {
        "get": lambda: asgi(app, "GET", document, auth),
        "create": lambda: asgi(app, "POST", "/v1/collections/items/documents", as_json, new_item),
        "inc": lambda: asgi(app, "POST", f"{document}/ops", as_json, inc),
        "list": lambda: asgi(
            app, "GET", "/v1/collections/items/documents", auth, query=listing.encode()
        ),
        "login": lambda: asgi(app, "POST", "/v1/auth/login", JSON, json.dumps(READER).encode()),
    }
    return calls[scenario]


def log_as_served(path: Path) -> None:
    """Logging as `python -m api` sets it up (a JSON line per request), into a file."""
    config = configure_logging()
    config["handlers"]["stderr"]["stream"] = open(path, "a")  # noqa: SIM115 - lives as long
    logging.config.dictConfig(config)


@asynccontextmanager
async def served(url: str) -> AsyncIterator[FastAPI]:
    """Cabinet in this process, in its lifespan, on a database of its own dropped after."""
    with tempfile.TemporaryDirectory(prefix="cabinet-hot-path-") as directory:
        settings = Settings(
            _env_file=None,
            env="development",
            mongodb_url=url,
            database=f"hot_path_{uuid.uuid4().hex[:8]}",
            data_dir=Path(directory),
            signup="open",
            rate_limit=UNLIMITED_RATE,
            login_rate=UNLIMITED_RATE,
        )
        log_as_served(Path(directory) / "api.log")
        app = create_app(settings)
        async with LifespanManager(app):
            yield app
            await app.state.mongo.drop_database(settings.database)


async def warmed(call: Call, requests: int, scenario: str) -> None:
    """Caches filled and code paths imported before anything is measured."""
    for _ in range(min(200, requests)):
        status = await call()
    if status >= 300:
        raise SystemExit(f"{scenario}: the app answered {status}")


async def _checked_at_once(password_hash: str | None, password: str) -> bool:
    return password_hash is not None


async def _run(url: str, scenario: str, requests: int, top: int) -> None:
    async with served(url) as app, contextlib.AsyncExitStack() as stack:
        if scenario == "login":
            stack.enter_context(patch.object(passwords, "verify_password", _checked_at_once))
        call = await prepare(app, scenario)
        await warmed(call, requests, scenario)
        plain = await cpu_per_request(call, requests)
        profiler = cProfile.Profile()
        profiler.enable()
        profiled = await cpu_per_request(call, requests)
        profiler.disable()
    print(f"{scenario}: {plain * 1000:.3f} ms of CPU per request ({requests:,} requests)")
    print(f"under the profiler: {profiled * 1000:.3f} ms; its shares below are what counts\n")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print("Own time by where the code lives:")
    for place, share in _shares(stats):
        print(f"  {share:6.1%}  {place}")
    print()
    stats.sort_stats("cumulative").print_stats(top)


# The profiler's clock is the wall clock (a CPU clock costs a system call per function call,
# which would swamp small functions); the loop waiting in `epoll` for the database is left out,
# and what remains of a sequential loop is time on the CPU.
WAITING = "waiting for the database"
# Checked in order: the first part of a function's file path that matches names its place.
PLACES = [
    ("/site-packages/fastapi/", "FastAPI"),
    ("/site-packages/starlette/", "Starlette"),
    ("/site-packages/pydantic", "pydantic"),
    ("/site-packages/pymongo/", "PyMongo (driver)"),
    ("/site-packages/bson/", "PyMongo (driver)"),
    ("/site-packages/jwt/", "PyJWT"),
    ("/site-packages/prometheus_client/", "metrics"),
    (f"{Path(__file__).resolve().parent.parent}/api/", "Cabinet (api/)"),
    ("<method 'poll'", WAITING),
    ("/asyncio/", "event loop"),
    ("selectors", "event loop"),
    ("_socket.socket", "socket calls"),
    ("~ <built-in", "built-ins and standard library (called from all of the above)"),
    ("/lib/python3", "built-ins and standard library (called from all of the above)"),
    ("<frozen", "built-ins and standard library (called from all of the above)"),
    ("~ <method", "built-ins and standard library (called from all of the above)"),
]


def _shares(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = {}
    for (path, _, name), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{path} {name}"
        place = next((label for part, label in PLACES if part in where), "other")
        totals[place] = totals.get(place, 0.0) + own
    totals.pop(WAITING, None)
    whole = sum(totals.values()) or 1.0
    return sorted(((p, t / whole) for p, t in totals.items()), key=lambda item: -item[1])


async def cpu_per_request(call: Call, requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await call()
    return (time.process_time() - started) / requests


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__)
    parser.add_argument(
        "scenario", nargs="?", choices=["get", "create", "inc", "list", "login"], default="get"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    args = parser.parse_args()
    database = EmbeddedDatabase(data_dir=None)
    url = database.start()
    try:
        asyncio.run(_run(url, args.scenario, max(1, args.requests), args.top))
    finally:
        database.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
