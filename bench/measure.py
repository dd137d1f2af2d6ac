"""Measured runs: warm a server up, then load it while reading its CPU time around the run."""

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.loadgen import Load, LoadResult, run_wrk
from bench.servers import Server

WARM_UP_SECONDS = 1


@dataclass(frozen=True)
class Measurement:
    load: LoadResult
    cpu_seconds: float
    # Other CPU times over the same run, by name (the database's, one thread's of the server),
    # those asked for and known.
    also: Mapping[str, float] = field(default_factory=dict)

    @property
    def cpu_per_1k(self) -> float:
        """CPU seconds the server process spent per 1,000 requests."""
        return self.cpu_seconds / self.load.requests * 1000


def measure(
    wrk: str,
    server: Server,
    load: Load,
    seconds: int,
    also: Mapping[str, Callable[[], float | None]] | None = None,
) -> Measurement:
    """`also`: CPU clocks read around the run besides the server's; one that reads None (out
    of sight) is left out of the answer."""
    clocks = also or {}
    run_wrk(wrk, server.base_url, load, WARM_UP_SECONDS)
    before, also_before = server.cpu_seconds(), {name: read() for name, read in clocks.items()}
    result = run_wrk(wrk, server.base_url, load, seconds)
    cpu = server.cpu_seconds() - before
    spent = {}
    for name, read in clocks.items():
        start, end = also_before[name], read()
        if start is not None and end is not None:
            spent[name] = end - start
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


# A server and the load it takes; the two sides' rounds.
Side = tuple[Server, Load]
Both = tuple[Rounds, Rounds]


def side_by_side(wrk: str, first: Side, second: Side, seconds: int, rounds: int) -> Both:
    """Each server measured `rounds` times, the two in turn: a shared machine's load that
    changes over the minutes of a run then falls on both alike, rather than on whichever
    happened to run while it lasted."""
    return _rounds(rounds, lambda: (measure(wrk, *first, seconds), measure(wrk, *second, seconds)))


def at_once(wrk: str, first: Side, second: Side, seconds: int, rounds: int) -> Both:
    """Both servers loaded at the same time, each by its own wrk with half the connections,
    `rounds` times over: each round's two CPU times cover the same seconds of the machine.

    On a shared host the CPU time a request takes moves with the neighbours' load from one
    second to the next (by 10-17 % between runs of a few seconds on the machine of
    docs/performance.md, with no steal counted), and runs taken in turn each catch their own
    seconds of it; loaded together, both sides catch the same. The rounds' ratios then have a
    standard deviation of ~0.05, where in turn they had 0.14-0.38.
    """
    together(wrk, first, second, WARM_UP_SECONDS)
    return _rounds(rounds, lambda: together(wrk, first, second, seconds))


def _rounds(rounds: int, take: Callable[[], tuple[Measurement, Measurement]]) -> Both:
    taken = [take() for _ in range(rounds)]
    return Rounds([ours for ours, _ in taken]), Rounds([theirs for _, theirs in taken])


def together(wrk: str, first: Side, second: Side, seconds: int) -> tuple[Measurement, Measurement]:
    """One round of `at_once`, with no warm-up."""
    pair = (first, second)
    before = [server.cpu_seconds() for server, _ in pair]
    with ThreadPoolExecutor(len(pair)) as pool:
        loads = [
            pool.submit(run_wrk, wrk, server.base_url, load, seconds, len(pair))
            for server, load in pair
        ]
        results = [load.result() for load in loads]
    ours, theirs = (
        Measurement(result, server.cpu_seconds() - start)
        for (server, _), result, start in zip(pair, results, before, strict=True)
    )
    return ours, theirs
