"""Sign-in under load: the Argon2 ceiling of these cores, and event-loop stalls while at it."""

import http.client
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from api.security import PASSWORD_HASHER

PROBE_INTERVAL = 0.005
PROBE_PATH = "/v1/health"


def argon2_ceiling(seconds: float) -> float:
    """Password verifications per second with the API's parameters, one thread per core."""
    password = "a benchmark password"  # noqa: S105
    stored = PASSWORD_HASHER.hash(password)
    deadline = time.monotonic() + seconds

    def verify_until_deadline() -> int:
        done = 0
        while time.monotonic() < deadline:
            PASSWORD_HASHER.verify(stored, password)
            done += 1
        return done

    cores = os.cpu_count() or 1
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cores) as pool:
        total = sum(pool.map(lambda _: verify_until_deadline(), range(cores)))
    return total / (time.perf_counter() - started)


@dataclass(frozen=True)
class Stalls:
    probes: int
    max_ms: float
    p99_ms: float
    over_10ms: int


class StallProbe:
    """Polls a trivial endpoint every 5 ms from a thread, on one kept-alive connection.

    The route does no I/O, so its latency beyond the idle round trip is time the event loop
    spent on something else: a stall.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                connection.request("GET", PROBE_PATH)
                connection.getresponse().read()
                self.latencies.append(time.perf_counter() - started)
                self._stop.wait(PROBE_INTERVAL)
        finally:
            connection.close()

    def __enter__(self) -> "StallProbe":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def stalls(self) -> Stalls:
        ordered = sorted(self.latencies)
        if not ordered:
            raise RuntimeError("the stall probe got no answer")
        return Stalls(
            probes=len(ordered),
            max_ms=ordered[-1] * 1000,
            p99_ms=ordered[int(len(ordered) * 0.99)] * 1000,
            over_10ms=sum(1 for latency in ordered if latency > 0.010),
        )


LAG_BUCKETS = re.compile(
    r'^cabinet_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE
)


def loop_lag_buckets(base_url: str) -> dict[float, float]:
    """The API's own event-loop lag histogram (cumulative counts by upper bound), from /metrics."""
    return loop_lag_buckets_of(httpx.get(f"{base_url}/metrics", timeout=30).raise_for_status().text)


def loop_lag_buckets_of(exposition: str) -> dict[float, float]:
    return {float(bound): float(count) for bound, count in LAG_BUCKETS.findall(exposition)}


@dataclass(frozen=True)
class LoopLag:
    samples: int
    over_10ms: int
    worst_ms: float  # upper bound of the highest bucket any sample reached


def loop_lag_between(before: dict[float, float], after: dict[float, float]) -> LoopLag:
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    total = counts[float("inf")]
    below = [bound for bound, count in sorted(counts.items()) if count >= total]
    return LoopLag(
        samples=int(total),
        over_10ms=int(total - counts[0.01]),
        worst_ms=below[0] * 1000,
    )
