"""Prometheus metrics: requests by route and status, and their latency.

With several worker processes, `python -m api` points PROMETHEUS_MULTIPROC_DIR at a directory
they share, so one scrape sees all of them.
"""

import asyncio
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import Scope

REQUESTS = Counter(
    "cabinet_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "cabinet_request_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def route_label(scope: Scope) -> str:
    """The path with its parameters named, not valued, so ids do not make a series each;
    requests that matched no route share one label, whatever they asked for."""
    template = getattr(scope.get("route"), "path_format", None)
    if template is None:
        return "unmatched"
    path: str = scope["path"]
    try:
        rendered = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return "unmatched"
    # The route knows its own part of the path; what comes before it is the router's prefix.
    return path.removesuffix(rendered) + template if path.endswith(rendered) else template


LOOP_LAG = Histogram(
    "cabinet_event_loop_lag_seconds",
    "How late the event loop woke a task that asked to sleep, sampled every 10 ms",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
LAG_SAMPLE_INTERVAL = 0.01


async def watch_loop_lag(histogram: Histogram = LOOP_LAG) -> None:
    """Samples the event loop's lag into `histogram` until cancelled: a request waits at least
    this long for the loop, so anything that blocks it (CPU work on the loop, a collector pass)
    shows here."""
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle

    # A timer callback rather than a task that sleeps: no coroutine to resume and no future per
    # sample, a third less CPU at 100 samples a second.
    def sample(asked: float) -> None:
        nonlocal timer
        now = loop.time()
        # Scheduled first: a sample that fails to be recorded does not end the sampling.
        timer = loop.call_later(LAG_SAMPLE_INTERVAL, sample, now)
        histogram.observe(max(0.0, now - asked - LAG_SAMPLE_INTERVAL))

    timer = loop.call_later(LAG_SAMPLE_INTERVAL, sample, loop.time())
    try:
        await asyncio.Future()  # until cancelled
    finally:
        timer.cancel()


# Any other method a client sends is counted as OTHER, so no client can add series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
Series = tuple[Counter, Histogram]  # a request's counter and latency histogram, labelled
_series: dict[tuple[str, str, int], Series] = {}


def observe(method: str, route: str, status: int, seconds: float) -> None:
    """Counts a request answered: `route` is its `route_label`."""
    method = method if method in METHODS else "OTHER"
    key = (method, route, status)
    series = _series.get(key)
    if series is None:  # labelling takes a lock and builds the key anew: once per series
        series = (REQUESTS.labels(method, key[1], str(status)), LATENCY.labels(method, key[1]))
        _series[key] = series
    series[0].inc()
    series[1].observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
