"""Peak memory of the API process while it imports ever larger NDJSON bodies.

    python -m bench.import_memory --rows 10000,100000,1000000

Starts an in-memory embedded database and `python -m api` against it, streams generated rows to
the import endpoint (the body is generated as it is sent, never held whole), and samples the API
process's resident memory every 50 ms. The ratios are against the first (smallest) size: flat
memory means ratios near 1 however many rows go in.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from api.embedded import EmbeddedDatabase, free_port

ADMIN_EMAIL = "bench@example.com"
ADMIN_PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway in-memory database
SCHEMA = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "title": {"type": "string", "maxLength": 200},
        "year": {"type": "integer"},
        "price": {"type": "number"},
        "available": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["sku", "title"],
}
CHUNK_BYTES = 64 * 1024
SAMPLE_SECONDS = 0.05
IMPORT_TIMEOUT_SECONDS = 3600


class PeakSampler:
    """Samples a process tree's resident memory from a thread, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> "PeakSampler":
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def generated_body(rows: int) -> Iterator[bytes]:
    """NDJSON rows in chunks of about CHUNK_BYTES, made as they are sent."""
    pending: list[str] = []
    size = 0
    for n in range(rows):
        line = json.dumps(
            {
                "sku": f"sku-{n:09d}",
                "title": f"Generated book number {n}",
                "year": 1900 + n % 125,
                "price": round(n % 1000 / 7, 2),
                "available": n % 3 == 0,
                "tags": ["bench", f"t{n % 17}"],
            }
        )
        pending.append(line + "\n")
        size += len(line) + 1
        if size >= CHUNK_BYTES:
            yield "".join(pending).encode()
            pending, size = [], 0
    if pending:
        yield "".join(pending).encode()


@dataclass
class Result:
    rows: int
    seconds: float
    peak_rss: int


def start_api(database_url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CABINET_MONGODB_URL": database_url,
        "CABINET_DATABASE": "cabinet_bench",
        "CABINET_HOST": "127.0.0.1",
        "CABINET_PORT": str(port),
        "CABINET_ENV": "development",
        "CABINET_DATA_DIR": str(data_dir),
        "CABINET_ADMIN_EMAIL": ADMIN_EMAIL,
        "CABINET_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # An import is charged per row against the caller's request budget; not what is measured.
        "CABINET_RATE_LIMIT": "999999/second",
    }
    log = open(data_dir / "api.log", "wb")  # noqa: SIM115 - the child owns it from here
    process = subprocess.Popen(
        [sys.executable, "-m", "api"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    return process


def wait_until_ready(http: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}")
        try:
            if http.get("/v1/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the API did not become ready in time")


def import_rows(http: httpx.Client, headers: dict[str, str], rows: int, pid: int) -> Result:
    name = f"bench_{rows}"
    created = http.post(
        "/v1/collections",
        json={"name": name, "schema": SCHEMA, "indexes": [{"fields": ["sku"], "unique": True}]},
        headers=headers,
    )
    created.raise_for_status()
    with PeakSampler(pid) as sampler:
        started = time.perf_counter()
        response = http.post(
            f"/v1/collections/{name}/import",
            content=generated_body(rows),
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    report = response.json()
    if report["inserted"] != rows or report["failed"]:
        raise RuntimeError(f"unexpected import report for {rows} rows: {report}")
    return Result(rows, seconds, sampler.peak)


def print_table(results: list[Result], idle_rss: int) -> None:
    base = results[0].peak_rss
    mib = 1024 * 1024
    print(f"API process idle RSS: {idle_rss / mib:.1f} MiB")
    print(f"{'rows':>10} {'seconds':>9} {'rows/s':>9} {'peak RSS MiB':>13} {'vs first':>9}")
    for result in results:
        print(
            f"{result.rows:>10} {result.seconds:>9.1f} {result.rows / result.seconds:>9.0f} "
            f"{result.peak_rss / mib:>13.1f} {result.peak_rss / base:>9.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000", help="comma-separated sizes")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.rows.split(","))
    database = EmbeddedDatabase(None)
    api = None
    with tempfile.TemporaryDirectory(prefix="cabinet-bench-") as data_dir:
        try:
            url = database.start()
            port = free_port()
            api = start_api(url, Path(data_dir), port)
            base_url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base_url, timeout=IMPORT_TIMEOUT_SECONDS) as http:
                wait_until_ready(http, api)
                login = http.post(
                    "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                )
                login.raise_for_status()
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                idle = PeakSampler(api.pid).rss()
                results = []
                for rows in sizes:
                    results.append(import_rows(http, headers, rows, api.pid))
                    print(f"imported {rows} rows in {results[-1].seconds:.1f} s", flush=True)
            print_table(results, idle)
        finally:
            if api is not None and api.poll() is None:
                api.terminate()
                try:
                    api.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    api.kill()
                    api.wait()
            database.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
