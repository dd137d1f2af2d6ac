"""Prometheus metrics: what they count, and who may scrape them."""

import asyncio
import time

from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client import Histogram

from api import metrics
from api.main import create_app
from api.settings import Settings
from bench.login_load import loop_lag_between, loop_lag_buckets_of
from tests.factories import admin, another_app, eventually, register

METRICS_TOKEN = "scrape-" + "t" * 24


async def test_metrics_count_requests_by_route_template(client: AsyncClient) -> None:
    await client.get("/v1/collections/nope/documents/0123456789abcdef01234567")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/v1/collections/{name}/documents/{doc_id}"' in text
    assert "0123456789abcdef01234567" not in text
    assert "cabinet_request_seconds_bucket" in text


async def test_metrics_count_each_request_once_and_unknown_methods_together(
    client: AsyncClient,
) -> None:
    def count(text: str, method: str) -> float:
        line = f'cabinet_requests_total{{method="{method}",route="unmatched",status="404"}} '
        found = [row for row in text.splitlines() if row.startswith(line)]
        return float(found[0].removeprefix(line)) if found else 0.0

    before = (await client.get("/metrics")).text
    for method in ("BREW", "WHEN", "BREW"):
        await client.request(method, "/v1/no-such-route")
    await client.get("/v1/no-such-route")
    after = (await client.get("/metrics")).text
    assert count(after, "OTHER") - count(before, "OTHER") == 3
    assert count(after, "GET") - count(before, "GET") == 1
    assert "BREW" not in after and "WHEN" not in after


async def test_production_metrics_answer_admins_and_the_token_only(
    client: AsyncClient, app: FastAPI, settings: Settings
) -> None:
    production = settings.model_copy(update={"env": "production", "metrics_token": METRICS_TOKEN})
    async with another_app(create_app(production), app) as http:
        boss = await admin(http)
        reader = await register(http)
        anonymous = await http.get("/metrics")
        plain_user = await http.get("/metrics", headers=reader.headers)
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        scraper = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        administrator = await http.get("/metrics", headers=boss.headers)
    assert anonymous.status_code == 401
    assert plain_user.status_code == 403
    assert wrong.status_code == 401
    assert (scraper.status_code, administrator.status_code) == (200, 200)


async def test_scraping_metrics_spends_no_request_budget(
    client: AsyncClient, app: FastAPI, settings: Settings
) -> None:
    update = {"env": "production", "metrics_token": METRICS_TOKEN, "rate_limit": "4/hour"}
    async with another_app(create_app(settings.model_copy(update=update)), app) as http:
        boss = await admin(http)
        refused = [(await http.get("/metrics")).status_code for _ in range(6)]
        scraped = [(await http.get("/metrics", headers=boss.headers)).status_code for _ in range(6)]
        me = [(await http.get("/v1/auth/me", headers=boss.headers)).status_code for _ in range(6)]
    assert refused == [401] * 6
    assert scraped == [200] * 6
    # Six scrapes each, and the API budget is still there to spend.
    assert me[0] == 200 and 429 in me


async def lag_buckets(client: AsyncClient) -> dict[float, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return loop_lag_buckets_of(response.text)


async def test_event_loop_lag_shows_a_blocked_loop(client: AsyncClient) -> None:
    before = await lag_buckets(client)
    # The app shares this event loop: blocking it here is what slow work on it would do.
    time.sleep(0.1)  # noqa: ASYNC251 - the point is to block the loop
    await asyncio.sleep(0.05)  # the sampler wakes and records how late it was

    lag = loop_lag_between(before, await lag_buckets(client))

    assert lag.samples >= 1
    assert lag.over_10ms >= 1
    assert lag.worst_ms >= 50


async def test_the_lag_sampler_goes_on_after_a_sample_it_could_not_record() -> None:
    recorded: list[float] = []
    failures = iter([OSError("once")])

    class Failing(Histogram):
        def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
            if (error := next(failures, None)) is not None:
                raise error
            recorded.append(amount)

    histogram = Failing("test_lag_seconds", "a lag sampled in a test", registry=None)
    sampling = asyncio.create_task(metrics.watch_loop_lag(histogram))
    try:
        assert await eventually(lambda: len(recorded) >= 3)
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
    count = len(recorded)
    await asyncio.sleep(metrics.LAG_SAMPLE_INTERVAL * 5)
    assert len(recorded) == count  # cancelled, it left no timer behind
