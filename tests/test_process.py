"""End to end: `python -m api` on the embedded database survives a `kill -9` with its data."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "process-test-secret-" + "s" * 28
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "configured admin password"
USER_EMAIL = "persisted@example.com"
USER_PASSWORD = "survives a restart"
READY_TIMEOUT = 30.0
DATABASE_EXIT_TIMEOUT = 10.0


class Service:
    """One `python -m api` process with its log, on a data directory and a port."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {name: value for name, value in os.environ.items() if not name.startswith("CABINET_")}
        env |= {
            "CABINET_ENV": "production",
            "CABINET_DATA_DIR": str(data_dir),
            "CABINET_PORT": str(self.port),
            "CABINET_SECRET_KEY": SECRET_KEY,
            "CABINET_ADMIN_EMAIL": ADMIN_EMAIL,
            "CABINET_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, as a terminal's job
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/v1/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"the service was not ready within {READY_TIMEOUT} s:\n{self.log()}")

    def database_pid(self) -> int:
        return int((self.data_dir / "nx-27017.pid").read_text().strip())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, waiting for init to reap it, is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line for line in status.splitlines() if line.startswith("State:")), "")
    return "Z" not in state.split()[1:2]


def is_embedded_database(pid: int) -> bool:
    try:
        return b"nx-27017" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.05)
    return not is_running(pid)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Service]]:
    """The services a test starts; all stopped afterwards, with any database they left behind."""
    started: list[Service] = []
    try:
        yield started
    finally:
        databases = set()
        for service in started:
            with contextlib.suppress(OSError, ValueError):
                databases.add(service.database_pid())
        for service in reversed(started):
            service.stop()
        for database in databases:
            if is_embedded_database(database) and not wait_for_exit(database, 5):
                os.kill(database, signal.SIGKILL)


def sign_in(http: httpx.Client, email: str, password: str) -> dict:
    response = http.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict = response.json()
    return tokens


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_service_keeps_its_data_across_a_kill_and_restart(
    tmp_path: Path, services: list[Service]
) -> None:
    data_dir = tmp_path / "data"
    first = Service(data_dir, tmp_path / "first.log")
    services.append(first)
    first.wait_until_ready()
    with httpx.Client(base_url=first.base_url, timeout=10) as http:
        registered = http.post(
            "/v1/auth/register", json={"email": USER_EMAIL, "password": USER_PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["user"]["id"]
        tokens = sign_in(http, USER_EMAIL, USER_PASSWORD)
        assert http.get("/v1/auth/me", headers=bearer(tokens)).json()["id"] == user_id

    database = first.database_pid()
    assert is_embedded_database(database)
    first.kill()
    assert wait_for_exit(database, DATABASE_EXIT_TIMEOUT), "the embedded database outlived the API"

    second = Service(data_dir, tmp_path / "second.log")
    services.append(second)
    second.wait_until_ready()
    with httpx.Client(base_url=second.base_url, timeout=10) as http:
        again = sign_in(http, USER_EMAIL, USER_PASSWORD)
        me = http.get("/v1/auth/me", headers=bearer(again))
        assert me.status_code == 200
        assert (me.json()["id"], me.json()["email"]) == (user_id, USER_EMAIL)
        # The session from before the kill persisted too.
        rotated = http.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200, rotated.text

        boss = sign_in(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        users = http.get("/v1/users", headers=bearer(boss))
        assert users.status_code == 200, users.text
        listed = sorted((user["email"], user["roles"]) for user in users.json()["items"])
        assert listed == [(USER_EMAIL, []), (ADMIN_EMAIL, ["admin"])]
        http.get("/v1/health", headers={"X-Request-ID": "process-log-line"})

    database = second.database_pid()
    second.stop()
    assert wait_for_exit(database, DATABASE_EXIT_TIMEOUT), "the embedded database outlived the API"
    # The access line of a request, written with its batch, is in the service's log as JSON.
    lines = [
        json.loads(line) for line in second.log_path.read_text().splitlines() if line[:1] == "{"
    ]
    logged = [line for line in lines if line.get("request_id") == "process-log-line"]
    assert [(line["message"], line["path"], line["status"]) for line in logged] == [
        ("request", "/v1/health", 200)
    ]


def test_ctrl_c_stops_the_service_and_then_its_database(
    tmp_path: Path, services: list[Service]
) -> None:
    service = Service(tmp_path / "data", tmp_path / "service.log")
    services.append(service)
    service.wait_until_ready()
    httpx.get(f"{service.base_url}/v1/health", timeout=10).raise_for_status()
    database = service.database_pid()
    group = os.getpgid(service.process.pid)
    # The database is outside the group a terminal's Ctrl-C reaches: the service, still able to
    # talk to it, closes its client first, then stops it.
    assert os.getpgid(database) != group

    os.killpg(group, signal.SIGINT)  # what Ctrl-C in the terminal running it does
    assert service.process.wait(timeout=60) == 0, service.log()
    assert wait_for_exit(database, DATABASE_EXIT_TIMEOUT), "the embedded database outlived the API"
    assert "Application shutdown complete" in service.log()
