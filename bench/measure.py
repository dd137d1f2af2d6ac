"""Measured runs: warm a server up, then load it while reading its CPU time around the run."""

from collections.abc import Callable
from dataclasses import dataclass

from bench.loadgen import Load, LoadResult, run_wrk
from bench.servers import Server

WARM_UP_SECONDS = 1


@dataclass(frozen=True)
class Measurement:
    load: LoadResult
    cpu_seconds: float
    # Another process's CPU time over the same run (the database's), when asked for and known.
    other_cpu_seconds: float | None = None

    @property
    def cpu_per_1k(self) -> float:
        """CPU seconds the server process spent per 1,000 requests."""
        return self.cpu_seconds / self.load.requests * 1000


def measure(
    wrk: str,
    server: Server,
    load: Load,
    seconds: int,
    other: Callable[[], float | None] = lambda: None,
) -> Measurement:
    run_wrk(wrk, server.base_url, load, WARM_UP_SECONDS)
    before, other_before = server.cpu_seconds(), other()
    result = run_wrk(wrk, server.base_url, load, seconds)
    cpu, other_after = server.cpu_seconds() - before, other()
    spent = None if other_before is None or other_after is None else other_after - other_before
    return Measurement(result, cpu, spent)


@dataclass(frozen=True)
class Rounds:
    """Runs of one server under one load, taken in turn with another's."""

    runs: list[Measurement]

    def whole(self) -> Measurement:
        """The runs as one: requests, seconds and CPU summed; latencies those of the run whose
        median latency is the median of the runs' (one run's, never a blend)."""
        loads = [run.load for run in self.runs]
        typical = sorted(loads, key=lambda load: load.p50_ms)[(len(loads) - 1) // 2]
        requests = sum(load.requests for load in loads)
        load = LoadResult(
            requests=requests,
            seconds=sum(load.seconds for load in loads),
            p50_ms=typical.p50_ms,
            p99_ms=typical.p99_ms,
            mean_ms=sum(load.mean_ms * load.requests for load in loads) / requests,
        )
        return Measurement(load, sum(run.cpu_seconds for run in self.runs))


def side_by_side(
    wrk: str,
    first: tuple[Server, Load],
    second: tuple[Server, Load],
    seconds: int,
    rounds: int,
) -> tuple[Rounds, Rounds]:
    """Each server measured `rounds` times, the two in turn: a shared machine's load that
    changes over the minutes of a run then falls on both alike, rather than on whichever
    happened to run while it lasted."""
    runs: tuple[list[Measurement], list[Measurement]] = ([], [])
    for _ in range(rounds):
        runs[0].append(measure(wrk, *first, seconds))
        runs[1].append(measure(wrk, *second, seconds))
    return Rounds(runs[0]), Rounds(runs[1])
