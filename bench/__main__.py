"""`python -m bench`: Cabinet against a bare baseline, side by side in one run.

    python -m bench [--scale small|full] [--duration SECONDS] [--rounds N] [--only GROUP ...]

Starts the database (the embedded stand-in, or CABINET_MONGODB_URL), the API with one worker and
the baseline app, seeds data through the API, drives each scenario with wrk (Cabinet and the
baseline loaded at once, round after round; the cursor's two pages in turn), prints the table
and writes it to bench/results/latest.md.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import machine
from bench.cursor_walk import DEPTH, walk
from bench.dataset import READER_EMAIL, READER_PASSWORD, Dataset
from bench.import_load import import_raw, import_through_api, ndjson_rows
from bench.loadgen import Load, LoadGeneratorMissing, find_wrk
from bench.login_load import StallProbe, argon2_ceiling, loop_lag_between, loop_lag_buckets
from bench.measure import Measurement, Rounds, at_once, measure, side_by_side
from bench.report import Figures, Row, cpu_row, markdown, plain_text
from bench.scenarios import JSON, request_scenarios
from bench.servers import Database, Server
from bench.stage import SCALES, Scale, staged

RESULTS = Path(__file__).parent / "results" / "latest.md"
CPU_LIMIT = 1.5
CPU_TARGETS = {"get by id", "list 50, filter + sort", "create", "inc op"}
LOGIN_SHARE = 0.9
STALL_LIMIT_MS = 10.0
IMPORT_SHARE = 0.7
DEPTH_LIMIT = 1.2
GROUPS = ("requests", "login", "cursor", "import")


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Pacing:
    seconds: int  # per measured run
    rounds: int  # runs of each side, in turn


def _round_ratios(ours: Rounds, theirs: Rounds, figure: Callable[[Measurement], float]) -> str:
    pairs = zip(ours.runs, theirs.runs, strict=True)
    return ", ".join(f"{figure(one) / figure(other):.2f}" for one, other in pairs)


def _request_rows(
    wrk: str, api: Server, baseline: Server, data: Dataset, pacing: Pacing, notes: list[str]
) -> list[Row]:
    rows, spreads = [], []
    for scenario in request_scenarios(data):
        _say(f"{scenario.name}: Cabinet and the baseline at once, {pacing.rounds} rounds")
        cabinet, reference = at_once(
            wrk,
            (api, scenario.cabinet),
            (baseline, scenario.baseline),
            pacing.seconds,
            pacing.rounds,
        )
        limit = CPU_LIMIT if scenario.name in CPU_TARGETS else None
        rows.append(cpu_row(scenario.name, cabinet.whole(), reference.whole(), limit))
        cpu = _round_ratios(cabinet, reference, lambda run: run.cpu_per_1k)
        spreads.append(f"{scenario.name} {cpu}")
    notes.append(f"CPU ratio of each round, in order: {'; '.join(spreads)}.")
    return rows


def _login_rows(
    wrk: str, api: Server, database: Database, pacing: Pacing, notes: list[str]
) -> list[Row]:
    _say("login: the Argon2 ceiling, then sign-ins under load with the stall probe")
    # One run as long as a request scenario's rounds together: its reference is not a server.
    seconds = pacing.seconds * pacing.rounds
    ceiling = argon2_ceiling(min(seconds, 5))
    credentials = json.dumps({"email": READER_EMAIL, "password": READER_PASSWORD})
    lag_before = loop_lag_buckets(api.base_url)
    sign_in = Load("POST", ["/v1/auth/login"], JSON, credentials)
    with StallProbe(api.port) as probe:
        clocks = {
            "database": database.cpu_seconds,
            "event loop": api.main_thread_cpu_seconds,
            "steal": machine.steal_seconds,
        }
        login = measure(wrk, api, sign_in, seconds, also=clocks)
    stalls = probe.stalls()
    hash_ms = _hash_ms(ceiling)
    notes.append(_login_budget(login, ceiling) + _stolen(login.also.get("steal"), seconds))
    lag = loop_lag_between(lag_before, loop_lag_buckets(api.base_url))
    share = login.load.per_second / ceiling
    return [
        Row(
            "login",
            Figures.of(login),
            "Argon2 ceiling",
            Figures(ceiling),
            "throughput",
            share,
            f">= {LOGIN_SHARE}x",
            share >= LOGIN_SHARE,
        ),
        # What is the API's own: its CPU per sign-in against one hash's (the database and the
        # load generator, which share these cores, left out).
        Row(
            "login: the API's CPU per sign-in",
            None,
            f"one hash {hash_ms:.1f} ms",
            None,
            "hash / API ms",
            hash_ms / login.cpu_per_1k,  # CPU seconds per 1,000: milliseconds per sign-in
            "-",
            None,
        ),
        Row(
            f"login: event-loop lag ({lag.samples} samples in the API, {lag.over_10ms} > 10 ms)",
            None,
            "cabinet_event_loop_lag_seconds",
            None,
            "worst <= ms",
            lag.worst_ms,
            f"<= {STALL_LIMIT_MS:.0f} ms",  # no stall over it
            lag.over_10ms == 0,
        ),
        Row(
            f"login: probe latency (max of {stalls.probes} probes, {stalls.over_10ms} > 10 ms)",
            None,
            f"probe p99 {stalls.p99_ms:.1f} ms",
            None,
            "max ms",
            stalls.max_ms,
            "-",  # what a client saw, its own scheduling included: the lag above is the loop's
            None,
        ),
    ]


def _hash_ms(ceiling: float) -> float:
    """One hash's CPU, in milliseconds: the ceiling keeps every core hashing."""
    return (os.cpu_count() or 1) / ceiling * 1000


def _stolen(seconds_stolen: float | None, seconds: float) -> str:
    """The share of the cores the hypervisor kept from this machine over `seconds`, as a note."""
    if seconds_stolen is None or seconds <= 0:
        return ""
    share = seconds_stolen / (seconds * (os.cpu_count() or 1))
    return f" The hypervisor kept {share:.0%} of the cores' time from this machine (steal)."


def _login_budget(login: Measurement, ceiling: float) -> str:
    """Where a sign-in's CPU went, against what the target leaves on these cores."""
    cores = os.cpu_count() or 1
    allowed = cores / (LOGIN_SHARE * ceiling)  # seconds of CPU per sign-in, everything included

    def per_sign_in(seconds: float) -> str:
        return f"{seconds / login.load.requests * 1000:.1f} ms"

    loop = login.also.get("event loop")
    # The API's threads other than its event loop's are its hashing pool's.
    split = (
        f" (its event loop {per_sign_in(loop)}, its hashing threads "
        f"{per_sign_in(login.cpu_seconds - loop)})"
        if loop is not None
        else ""
    )
    database = login.also.get("database")
    return (
        f"Per sign-in under the login load: {login.cpu_per_1k:.1f} ms of the API's CPU{split}, "
        f"against {_hash_ms(ceiling):.1f} ms for one hash with nothing else running"
        + (f"; the database {per_sign_in(database)}" if database is not None else "")
        + f". {LOGIN_SHARE}x the ceiling on {cores} cores leaves {allowed * 1000:.1f} ms for "
        "all of it."
    )


def _import_row(
    http: httpx.Client,
    api: Server,
    database: Database,
    name: str,
    data: Dataset,
    rows: int,
    work: Path,
) -> Row:
    _say(f"import of {rows:,} NDJSON rows: through the API, then raw insert_many")
    body = ndjson_rows(rows)
    ndjson = work / "import.ndjson"
    ndjson.write_bytes(body)
    cabinet = import_through_api(http, api, data.admin_token, data.reader_headers, body, rows)
    raw = import_raw(database.url, name, ndjson, data.reader_id)
    share = cabinet.per_second / raw.per_second
    return Row(
        f"import {rows:,} NDJSON rows (rows/s)",
        Figures(cabinet.per_second, cpu_per_1k=cabinet.cpu_per_1k),
        "raw insert_many",
        Figures(raw.per_second, cpu_per_1k=raw.cpu_per_1k),
        "rows/s",
        share,
        f">= {IMPORT_SHARE}x",
        share >= IMPORT_SHARE,
    )


def _cursor_row(
    wrk: str,
    http: httpx.Client,
    api: Server,
    data: Dataset,
    limit: int,
    pacing: Pacing,
    notes: list[str],
) -> Row:
    _say(f"cursor walk: following cursors to page {DEPTH:,}, then it and page 1 in turn")
    pages = walk(http, data.reader_headers, limit)
    deep_runs, first_runs = side_by_side(
        wrk,
        (api, Load("GET", [pages.deep_page], data.reader_headers)),
        (api, Load("GET", [pages.first_page], data.reader_headers)),
        pacing.seconds,
        pacing.rounds,
    )
    deep, first = deep_runs.whole(), first_runs.whole()
    ratio = first.load.per_second / deep.load.per_second
    each = _round_ratios(first_runs, deep_runs, lambda run: run.load.per_second)
    notes.append(
        f"Reaching page {DEPTH:,} by following cursors took {pages.seconds:.1f} s "
        f"({pages.seconds / DEPTH * 1000:.1f} ms a page); its time per request against page "
        f"1's, round by round: {each}."
    )
    row = Row(
        f"page {DEPTH:,} of {limit} (cursor)",
        Figures.of(deep),
        "page 1",
        Figures.of(first),
        "time/request",
        ratio,
        f"<= {DEPTH_LIMIT}x",
        ratio <= DEPTH_LIMIT,
    )
    return row


def _document(rows: list[Row], command: str, database: Database, notes: list[str]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"# Benchmark results ({stamp})",
            "",
            f"Command: `{command}`  ",
            f"Machine: {machine.describe()}  ",
            f"Database: {database.description}",
            "",
            markdown(rows),
            "",
            *(f"- {note}" for note in notes),
            "",
        ]
    )


def run(scale: Scale, pacing: Pacing, command: str, groups: set[str]) -> int:
    try:
        wrk = find_wrk()
    except LoadGeneratorMissing as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    started, stolen = time.monotonic(), machine.steal_seconds()
    database = Database.start()
    notes = [
        f"wrk, 8 connections on 2 threads. A request scenario loads Cabinet and the baseline at "
        f"once, each with its own wrk of 4 connections on 1 thread, {pacing.rounds} rounds of "
        f"{pacing.seconds} s after a 1 s warm-up; the two cursor pages run in turn, "
        f"{pacing.rounds} runs each of {pacing.seconds} s after a 1 s warm-up; a side's figures "
        "are its runs summed (latencies: the run with the median p50's). The login load runs "
        f"once, for {pacing.seconds * pacing.rounds} s. CPU is the server process's user + "
        "system time over its runs, per 1,000 requests (per 1,000 rows for the import).",
    ]
    try:
        with staged(database, scale.owned, _say) as stage:
            api, baseline, data = stage.api, stage.baseline, stage.data
            rows = []
            if "requests" in groups:
                rows += _request_rows(wrk, api, baseline, data, pacing, notes)
            if "login" in groups:
                rows += _login_rows(wrk, api, database, pacing, notes)
            if "cursor" in groups:
                rows.append(
                    _cursor_row(wrk, stage.http, api, data, scale.page_limit, pacing, notes)
                )
            if "import" in groups:
                rows.append(
                    _import_row(
                        stage.http, api, database, stage.name, data, scale.import_rows, stage.work
                    )
                )
    finally:
        database.stop()
    took = time.monotonic() - started
    stolen_now = machine.steal_seconds()
    steal = None if stolen is None or stolen_now is None else stolen_now - stolen
    notes.append(f"Whole run: {took:.0f} s.{_stolen(steal, took)}")
    print(plain_text(rows))
    for note in notes:
        print(note)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(_document(rows, command, database, notes))
    print(f"written to {RESULTS}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--duration", type=int, default=2, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=6, help="runs of each side of a comparison")
    parser.add_argument(
        "--only", nargs="+", choices=GROUPS, default=GROUPS, help="scenario groups to run"
    )
    args = parser.parse_args()
    command = " ".join(["python -m bench", *sys.argv[1:]])
    pacing = Pacing(max(1, args.duration), max(1, args.rounds))
    return run(SCALES[args.scale], pacing, command, set(args.only))


if __name__ == "__main__":
    sys.exit(main())
