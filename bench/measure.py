"""One measured run: warm the server up, then load it while reading its CPU time around the run."""

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
