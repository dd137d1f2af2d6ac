"""The load generator: wrk, run as its own process, driven by a generated Lua script.

wrk keeps a fixed number of connections busy for a fixed time and reports latency percentiles
from its own histogram; the Lua script cycles through the request paths and sets the method,
headers and body, then prints a one-line JSON summary the harness reads back.
"""

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CONNECTIONS = 8
THREADS = 2
MARKER = "BENCH_RESULT "
_SCRIPT = """
local method = [==[{method}]==]
local body = {body}
local headers = {headers}
local paths = {{ {paths} }}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
end

function init(args)
  counter = offset or 0
end

function request()
  counter = counter + 1
  return wrk.format(method, paths[(counter % #paths) + 1], headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "{marker}{{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, "
    .. "\\"mean_us\\": %d, \\"errors\\": %d, \\"bad_status\\": %d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
"""


class LoadGeneratorMissing(RuntimeError):
    pass


def find_wrk() -> str:
    """The wrk executable, or a clear error saying how to get it."""
    found = shutil.which("wrk")
    if found is None:
        raise LoadGeneratorMissing(
            "the benchmark needs the wrk load generator on PATH "
            "(Debian/Ubuntu: `apt-get install wrk`; macOS: `brew install wrk`)"
        )
    return found


@dataclass(frozen=True)
class Load:
    """What wrk sends: one method, paths cycled in turn, the same headers and body each time."""

    method: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _lua_string(text: str) -> str:
    if "]==]" in text:
        raise ValueError("text cannot be quoted as a Lua long string")
    return f"[==[{text}]==]"


def lua_script(load: Load) -> str:
    headers = ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in load.headers.items())
    return _SCRIPT.format(
        method=load.method,
        body=_lua_string(load.body) if load.body is not None else "nil",
        headers="{" + headers + "}",
        paths=", ".join(_lua_string(path) for path in load.paths),
        marker=MARKER,
    )


def run_wrk(wrk: str, base_url: str, load: Load, seconds: int, share: int = 1) -> LoadResult:
    """Runs wrk for `seconds` against `base_url`; fails if any request errored or was not 2xx.

    `share`: how many wrk processes run at once, splitting the connections and threads."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(lua_script(load))
        script.flush()
        completed = subprocess.run(
            [
                wrk,
                f"--threads={max(1, THREADS // share)}",
                f"--connections={max(1, CONNECTIONS // share)}",
                f"--duration={seconds}s",
                "--timeout=30s",
                f"--script={Path(script.name)}",
                base_url,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    summary = json.loads(lines[-1].removeprefix(MARKER))
    if summary["errors"] or summary["bad_status"]:
        raise RuntimeError(
            f"{load.method} {load.paths[0]}: {summary['errors']} socket errors and "
            f"{summary['bad_status']} error responses out of {summary['requests']}"
        )
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        mean_ms=summary["mean_us"] / 1000,
    )
