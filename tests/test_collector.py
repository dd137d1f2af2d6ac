"""The garbage collector while the app serves: start-up frozen, passes for real garbage only."""

import gc

from fastapi import FastAPI

from api.collector import YOUNG_GENERATION_THRESHOLD, tuned_for_serving


def _watched(value: object) -> bool:
    """Whether the collector's passes look at `value` (frozen objects are out of their sight)."""
    return any(tracked is value for tracked in gc.get_objects())


def test_serving_freezes_start_up_and_raises_the_young_threshold_until_it_ends() -> None:
    original = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        built_at_start_up: list[int] = []
        assert _watched(built_at_start_up)
        with tuned_for_serving():
            assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)
            made_by_a_request: list[int] = []
            assert not _watched(built_at_start_up)
            assert _watched(made_by_a_request)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*original)


def test_the_app_serves_with_the_tuned_collector(app: FastAPI) -> None:
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
