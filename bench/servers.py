"""The processes under test: the database, the Cabinet API (one worker) and the baseline app."""

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from api.embedded import EmbeddedDatabase, free_port

ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 - a throwaway benchmark database
# Far above anything 2 cores can serve, so the limiter counts but never refuses.
UNLIMITED_RATE = "9999999/second"


@dataclass
class Server:
    """A server process on a local port, with its CPU time read from the kernel."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def main_thread_cpu_seconds(self) -> float | None:
        """The CPU time of the process's first thread: the API's event loop (its hashing runs on
        threads of their own). None once the process is gone."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for thread in psutil.Process(self.process.pid).threads():
                if thread.id == self.process.pid:
                    return thread.user_time + thread.system_time
        return None

    def wait_until_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if http.get(path).status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def start_api(database_url: str, database: str, work_dir: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "CABINET_MONGODB_URL": database_url,
        "CABINET_DATABASE": database,
        "CABINET_HOST": "127.0.0.1",
        "CABINET_PORT": str(port),
        "CABINET_WORKERS": "1",
        "CABINET_ENV": "development",
        "CABINET_DATA_DIR": str(work_dir),
        "CABINET_ADMIN_EMAIL": ADMIN_EMAIL,
        "CABINET_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CABINET_RATE_LIMIT": UNLIMITED_RATE,
        "CABINET_LOGIN_RATE": UNLIMITED_RATE,
    }
    log_path = work_dir / "api.log"
    process = _spawn([sys.executable, "-m", "api"], env, log_path)
    server = Server("the Cabinet API", process, port, log_path)
    server.wait_until_ready("/v1/health/ready")
    return server


def start_baseline(database_url: str, database: str, owner: str, work_dir: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_MONGODB_URL": database_url,
        "BENCH_DATABASE": database,
        "BENCH_OWNER": owner,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline:app",
        "--host=127.0.0.1",
        f"--port={port}",
        "--no-access-log",
        "--log-level=warning",
    ]
    log_path = work_dir / "baseline.log"
    process = _spawn(command, env, log_path)
    server = Server("the baseline app", process, port, log_path)
    server.wait_until_ready("/health")
    return server


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and any children it has."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


@dataclass
class Database:
    """The embedded stand-in, or the deployment CABINET_MONGODB_URL names."""

    url: str
    embedded: EmbeddedDatabase | None

    @classmethod
    def start(cls) -> "Database":
        url = os.environ.get("CABINET_MONGODB_URL")
        if url:
            return cls(url, None)
        embedded = EmbeddedDatabase(None)
        return cls(embedded.start(), embedded)

    @property
    def description(self) -> str:
        return "the embedded stand-in (nx-27017, in memory)" if self.embedded else "MongoDB"

    def cpu_seconds(self) -> float | None:
        """The stand-in's CPU time so far; None for a deployment, whose CPU is out of sight."""
        process = self.embedded.process if self.embedded is not None else None
        return tree_cpu_seconds(process.pid) if process is not None else None

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
