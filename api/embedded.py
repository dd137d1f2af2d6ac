"""The embedded database: a MongoDB wire-protocol server (nx-27017) run as a child process.

It is only a stand-in for development and tests; the service reaches it by URL exactly as it
reaches a real MongoDB deployment. It runs through `api.embedded_fixes`, which speeds up keyset
pages inside the server's process before handing over to nx-27017's own main.
"""

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
SERVER_MODULE = "api.embedded_fixes"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Out of the terminal's process group: a Ctrl-C reaches the service alone, which then shuts
    # down while its database still answers (a client closing against a dead server waits out
    # the whole server selection timeout) and stops the database itself.
    os.setpgid(0, 0)
    # Linux only: if the service is killed with SIGKILL, the kernel stops the database too, so no
    # orphan keeps the data directory open when the service starts again.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _server_command() -> list[str]:
    # nx-27017's own main, run by way of the module that first patches neosqlite for keyset pages.
    if importlib.util.find_spec("nx_27017") is None:
        raise RuntimeError("nx-27017 is not installed: run `make install`")
    return [sys.executable, "-m", SERVER_MODULE]


def _server_environment() -> dict[str, str]:
    # The child imports `api` by module name, so it must find this checkout even when the parent
    # found it through its own sys.path (pytest's `pythonpath`) rather than the working directory.
    paths = [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def is_server_command_line(cmdline: bytes) -> bool:
    """Whether a /proc cmdline is the embedded server's, as started now or by older versions."""
    return SERVER_MODULE.encode() in cmdline or b"nx-27017" in cmdline


class EmbeddedDatabase:
    """Starts nx-27017 on a free loopback port; `data_dir` of None keeps everything in memory."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 30.0) -> str:
        if self.data_dir is None:
            run_dir = Path(tempfile.gettempdir())
            store, name = "memory", f"nx-27017-{self.port}"
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            run_dir, store, name = self.data_dir, str(self.data_dir / "db"), "nx-27017"
            _stop_stale_server(run_dir / f"{name}.pid")
        log_path = run_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns it from here
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                *_server_command(),
                "--data-dir",
                store,
                "--host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--pid-file",
                str(run_dir / f"{name}.pid"),
                "--log-file",
                str(log_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_environment(),
            preexec_fn=_die_with_parent,  # runs before exec; no threads exist yet
        )
        log.close()
        self._wait_until_listening(timeout)
        return self.url

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the embedded database exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the embedded database did not start in time")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _stop_stale_server(pid_file: Path) -> None:
    """Stops a server left running on this data directory by a service that died."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if not is_server_command_line(cmdline) or str(pid_file.parent).encode() not in cmdline:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
