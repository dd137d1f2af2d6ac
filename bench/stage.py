"""The stage a served measurement runs on: the API seeded with the data set at a scale, and
the baseline app reading the same database."""

import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from pymongo import MongoClient

from bench.dataset import Dataset, prepare
from bench.servers import Database, Server, start_api, start_baseline


@dataclass(frozen=True)
class Scale:
    """How much `python -m bench --scale` seeds, walks and imports."""

    owned: int  # the reader's documents in `items`
    page_limit: int  # page size of the cursor walk (DEPTH pages deep)
    import_rows: int


SCALES = {
    "small": Scale(owned=5_500, page_limit=5, import_rows=100_000),
    "full": Scale(owned=60_000, page_limit=50, import_rows=100_000),
}


@dataclass(frozen=True)
class Stage:
    name: str  # of the database both servers use
    work: Path  # the servers' working directory, gone after
    api: Server
    baseline: Server
    data: Dataset
    http: httpx.Client  # to the API
    mongo: MongoClient[dict]


@contextmanager
def staged(database: Database, owned: int, say: Callable[[str], None]) -> Iterator[Stage]:
    """The API and the baseline on a database of their own in `database`, with `owned` items of
    the reader seeded through the API; stopped after, and that database dropped from a
    deployment (the embedded stand-in's goes with it)."""
    name = f"cabinet_bench_{secrets.token_hex(4)}"
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cabinet-bench-") as directory:
            work = Path(directory)
            api = start_api(database.url, name, work)
            servers.append(api)
            with (
                httpx.Client(base_url=api.base_url, timeout=120) as http,
                MongoClient[dict](database.url) as mongo,
            ):
                say(f"seeding {owned:,} documents of the reader (and others') through the API")
                data = prepare(http, mongo, name, owned)
                baseline = start_baseline(database.url, name, data.reader_id, work)
                servers.append(baseline)
                yield Stage(name, work, api, baseline, data, http, mongo)
                if database.embedded is None:
                    mongo.drop_database(name)
    finally:
        for server in reversed(servers):
            server.stop()
