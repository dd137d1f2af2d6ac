"""Bulk import: Cabinet's streaming NDJSON import against raw `insert_many` of the same rows."""

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.dataset import create_collection
from bench.import_memory import SCHEMA, generated_body
from bench.servers import Server

COLLECTION = "imports"
RAW_COLLECTION = "raw_imports"


@dataclass(frozen=True)
class ImportRun:
    rows: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_seconds / self.rows * 1000


def import_through_api(
    http: httpx.Client,
    api: Server,
    admin_token: str,
    reader: dict[str, str],
    body: bytes,
    rows: int,
) -> ImportRun:
    create_collection(http, admin_token, {"name": COLLECTION, "schema": SCHEMA})
    before, started = api.cpu_seconds(), time.perf_counter()
    response = http.post(
        f"/v1/collections/{COLLECTION}/import",
        content=body,
        headers={**reader, "Content-Type": "application/x-ndjson"},
        timeout=3600,
    )
    seconds, cpu = time.perf_counter() - started, api.cpu_seconds() - before
    report = response.json()
    if response.is_error or report["inserted"] != rows:
        raise RuntimeError(f"the import did not insert every row: {response.text[:500]}")
    return ImportRun(rows, seconds, cpu)


def import_raw(database_url: str, database: str, ndjson: Path, owner: str) -> ImportRun:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.raw_insert",
            database_url,
            database,
            RAW_COLLECTION,
            str(ndjson),
            owner,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the raw insert failed: {completed.stderr.strip()[-2000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return ImportRun(result["rows"], result["seconds"], result["cpu_seconds"])


def ndjson_rows(rows: int) -> bytes:
    return b"".join(generated_body(rows))
