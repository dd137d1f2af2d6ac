"""One measured run: warm the server up, then load it while reading its CPU time around the run."""

from dataclasses import dataclass

from bench.loadgen import Load, LoadResult, run_wrk
from bench.servers import Server

WARM_UP_SECONDS = 1


@dataclass(frozen=True)
class Measurement:
    load: LoadResult
    cpu_seconds: float

    @property
    def cpu_per_1k(self) -> float:
        """CPU seconds the server process spent per 1,000 requests."""
        return self.cpu_seconds / self.load.requests * 1000


def measure(wrk: str, server: Server, load: Load, seconds: int) -> Measurement:
    run_wrk(wrk, server.base_url, load, WARM_UP_SECONDS)
    before = server.cpu_seconds()
    result = run_wrk(wrk, server.base_url, load, seconds)
    return Measurement(result, server.cpu_seconds() - before)
