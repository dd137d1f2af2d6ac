"""`python -m bench.served_profile [get|list|create|inc|aggregate] [--seconds N] [--top N] [--own]`.

One request scenario as `python -m bench` serves it, sampled with py-spy: the database, the
API and the baseline app started and seeded the same way, both servers loaded at once by wrk,
and py-spy, its own process, sampling each. Prints each side's CPU per request, then, function
by function, the time per request it was on the stack in Cabinet and in the baseline (with
`--own`, at its top), ordered by the difference: where Cabinet spends more.

py-spy samples the thread holding the GIL (`--gil`: Python's work, not threads waiting or
system calls made without it) and reads its stack while it runs (`--nonblocking`: pausing the
servers 250 times a second would slow them down). A stack read as it changed is cut short at
the caller's end, so outer frames' figures are a little low; `--own` counts are whole.

`bench.hot_path` profiles one path in-process, with nothing else running; this one shows what
only serving shows: the HTTP server, the background tasks, and code run cold between requests
on cores shared with the database and the load generator.
"""

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import LoadGeneratorMissing, find_wrk
from bench.measure import Measurement, at_once, together
from bench.scenarios import request_scenarios
from bench.servers import Database, Server
from bench.stage import SCALES, staged

SCENARIOS = {
    "get": "get by id",
    "list": "list 50, filter + sort",
    "create": "create",
    "inc": "inc op",
    "aggregate": "aggregate $group",
}
SAMPLES_PER_SECOND = 250
LINE = re.compile(r":\d+\)$")  # a frame's line number, at the end of `function (file:line)`


@dataclass(frozen=True)
class Profile:
    """How often each function was on a sampled stack, and at its top, of how many samples."""

    on_stack: Counter[str]
    on_top: Counter[str]  # running its own code, or a built-in it called
    samples: int

    @classmethod
    def of_raw(cls, lines: Iterable[str]) -> "Profile":
        """From py-spy's `--format raw`: a line per distinct stack, `frame;frame;... count`, each
        frame `function (file:line)`. A function counts once per stack, however deep it recurs,
        and its lines are one."""
        on_stack: Counter[str] = Counter()
        on_top: Counter[str] = Counter()
        samples = 0
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            samples += int(count)
            functions = [LINE.sub(")", frame) for frame in stack.split(";")]
            on_top[functions[-1]] += int(count)
            for function in set(functions):
                on_stack[function] += int(count)
        return cls(on_stack, on_top, samples)

    def per_request(self, function: str, cpu_per_request: float, own: bool = False) -> float:
        """Its share of the samples, applied to the CPU time a request took: the samples of a
        process that waits are not all CPU time, and the share does not depend on how long
        py-spy ran. `own`: only where it was at the top of the stack."""
        counts = self.on_top if own else self.on_stack
        return counts[function] / self.samples * cpu_per_request if self.samples else 0.0


def differences(
    ours: Profile, ours_cpu: float, theirs: Profile, theirs_cpu: float, top: int, own: bool
) -> list[tuple[str, float, float]]:
    """(function, ours, theirs) per request, the `top` where ours exceeds theirs the most."""
    rows = [
        (
            function,
            ours.per_request(function, ours_cpu, own),
            theirs.per_request(function, theirs_cpu, own),
        )
        for function in ours.on_stack.keys() | theirs.on_stack.keys()
    ]
    rows.sort(key=lambda row: row[2] - row[1])
    return rows[:top]


def _py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("bench.served_profile needs py-spy: pip install py-spy")
    return found


def _sampled(py_spy: str, server: Server, output: Path) -> subprocess.Popen[bytes]:
    command = [py_spy, "record", "--pid", str(server.process.pid), "--format", "raw"]
    command += ["--rate", str(SAMPLES_PER_SECOND), "--gil", "--nonblocking"]
    command += ["--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stopped(sampler: subprocess.Popen[bytes], output: Path) -> Profile:
    sampler.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
    _, errors = sampler.communicate(timeout=60)
    if not output.exists():
        raise SystemExit(f"py-spy wrote nothing: {errors.decode(errors='replace').strip()}")
    with output.open() as raw:
        return Profile.of_raw(raw)


def run(scenario: str, seconds: int, top: int, own: bool) -> int:
    try:
        wrk = find_wrk()
    except LoadGeneratorMissing as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    py_spy = _py_spy()
    database = Database.start()
    try:
        seeded = staged(database, SCALES["small"].owned, print)  # as `python -m bench` seeds
        with seeded as stage, tempfile.TemporaryDirectory() as directory:
            chosen = next(s for s in request_scenarios(stage.data) if s.name == scenario)
            sides = (stage.api, chosen.cabinet), (stage.baseline, chosen.baseline)
            at_once(wrk, *sides, seconds=1, rounds=1)  # caches filled, code paths imported
            outputs = [Path(directory) / "cabinet.raw", Path(directory) / "baseline.raw"]
            samplers = [
                _sampled(py_spy, server, output)
                for (server, _), output in zip(sides, outputs, strict=True)
            ]
            ours, theirs = together(wrk, *sides, seconds)
            profiles = [_stopped(s, o) for s, o in zip(samplers, outputs, strict=True)]
    finally:
        database.stop()
    _report(scenario, ours, theirs, profiles[0], profiles[1], top, own)
    return 0


def _report(
    scenario: str,
    ours: Measurement,
    theirs: Measurement,
    mine: Profile,
    base: Profile,
    top: int,
    own: bool,
) -> None:
    ours_ms, theirs_ms = ours.cpu_per_1k, theirs.cpu_per_1k  # CPU ms per request
    print(
        f"{scenario}: Cabinet {ours_ms:.3f} ms of CPU per request ({ours.load.requests:,} "
        f"requests, {mine.samples:,} samples), the baseline {theirs_ms:.3f} ms "
        f"({theirs.load.requests:,}, {base.samples:,}): {ours_ms / theirs_ms:.2f}x\n"
    )
    where = "at the top of" if own else "on"
    print(f"µs per request {where} the stack: Cabinet, the baseline, the difference")
    for function, mine_ms, base_ms in differences(mine, ours_ms, base, theirs_ms, top, own):
        print(
            f"{mine_ms * 1000:8.1f} {base_ms * 1000:8.1f} {(mine_ms - base_ms) * 1000:+8.1f}  ",
            end="",
        )
        print(function)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.served_profile", description=__doc__)
    parser.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS), default="get")
    parser.add_argument("--seconds", type=int, default=20, help="of the sampled load")
    parser.add_argument("--top", type=int, default=60, help="functions to list")
    parser.add_argument(
        "--own", action="store_true", help="count a function only at the top of the stack"
    )
    args = parser.parse_args()
    return run(SCENARIOS[args.scenario], max(1, args.seconds), max(1, args.top), args.own)


if __name__ == "__main__":
    sys.exit(main())
