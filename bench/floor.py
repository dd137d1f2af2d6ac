"""`python -m bench.floor [--requests N] [--rounds R]`: get by id against its two floors.

In this process, against the embedded database, each app called straight through ASGI, round
after round in turn:

- Cabinet's `GET …/documents/{id}` (a signed-in reader, the owner rule);
- the baseline app (bench/baseline.py, bare Starlette) making the same `find_one`;
- the same read as a bare FastAPI route: two path parameters, no dependency, no middleware.

Prints each one's CPU time per request (the lowest of the rounds) and its ratio to the baseline.
The bare FastAPI row is what the framework costs before Cabinet does anything at all.
"""

import argparse
import asyncio
import os
import sys
from typing import Any

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from api.embedded import EmbeddedDatabase
from api.main import NO_TELEMETRY
from bench.hot_path import Call, asgi, cpu_per_request, prepare, served, warmed


def bare_fastapi(database: AsyncDatabase, owner: str) -> FastAPI:
    from bench.baseline import object_id, plain

    app = FastAPI(telemetry=NO_TELEMETRY)  # as Cabinet runs it

    @app.get("/{collection}/documents/{doc_id}")
    async def read_document(collection: str, doc_id: str) -> Any:
        found = await database[collection].find_one({"_id": object_id(doc_id), "_owner": owner})
        return plain(found)

    return app


async def _run(url: str, requests: int, rounds: int) -> None:
    async with served(url) as cabinet:
        cabinet_get = await prepare(cabinet, "get")
        database = cabinet.state.mongo[cabinet.state.settings.database]
        stored = await database["c_items"].find_one({})
        assert stored is not None
        path = f"/c_items/documents/{stored['_id']}"
        # The baseline reads its database and owner from the environment when imported.
        os.environ |= {
            "BENCH_MONGODB_URL": url,
            "BENCH_DATABASE": database.name,
            "BENCH_OWNER": stored["_owner"],
        }
        from bench.baseline import app as baseline

        bare = bare_fastapi(database, stored["_owner"])
        async with LifespanManager(baseline):
            calls: dict[str, Call] = {
                "Cabinet": cabinet_get,
                "baseline (bare Starlette)": lambda: asgi(baseline, "GET", path, {}),
                "bare FastAPI": lambda: asgi(bare, "GET", path, {}),
            }
            for name, call in calls.items():
                await warmed(call, requests, name)
            best = {name: float("inf") for name in calls}
            for _ in range(rounds):
                for name, call in calls.items():
                    best[name] = min(best[name], await cpu_per_request(call, requests))
    reference = best["baseline (bare Starlette)"]
    print(f"get by id, CPU per request, lowest of {rounds} rounds of {requests:,}:")
    for name, seconds in best.items():
        print(f"  {name:<26} {seconds * 1000:.3f} ms  {seconds / reference:.2f}x the baseline")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    database = EmbeddedDatabase(data_dir=None)
    url = database.start()
    try:
        asyncio.run(_run(url, max(1, args.requests), max(1, args.rounds)))
    finally:
        database.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
