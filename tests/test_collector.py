"""The garbage collector while the app serves: start-up frozen, passes for real garbage only."""

import gc
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from api import collector
from api.collector import YOUNG_GENERATION_THRESHOLD, tuned_for_serving


@pytest.fixture
def no_app_serving(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """CPython's own thresholds, and no app counted as serving (the session's app is), until
    the test ends."""
    original = gc.get_threshold()
    monkeypatch.setattr(collector, "_serving", 0)
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*original)


def _watched(value: object) -> bool:
    """Whether the collector's passes look at `value` (frozen objects are out of their sight)."""
    return any(tracked is value for tracked in gc.get_objects())


@pytest.mark.usefixtures("no_app_serving")
def test_serving_freezes_start_up_and_raises_the_young_threshold_until_it_ends() -> None:
    built_at_start_up: list[int] = []
    assert _watched(built_at_start_up)
    with tuned_for_serving():
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)
        made_by_a_request: list[int] = []
        assert not _watched(built_at_start_up)
        assert _watched(made_by_a_request)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("no_app_serving")
def test_the_thresholds_come_back_when_the_last_app_stops_whichever_started_first() -> None:
    first, second = tuned_for_serving(), tuned_for_serving()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)  # the second still serves
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_the_app_serves_with_the_tuned_collector(app: FastAPI) -> None:
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
