"""The served profile's reading of py-spy's raw stacks (the sampling itself needs py-spy)."""

import pytest

from bench.served_profile import Profile, differences

RAW = [
    "run (server.py:10);handle (app.py:5);handle (app.py:9);encode (bson.py:3) 6\n",
    "run (server.py:10);handle (app.py:7) 3\n",
    "run (server.py:12) 1\n",
    "\n",
    "a line py-spy never writes\n",
]


def test_a_function_counts_once_per_stack_whatever_its_lines_or_depth() -> None:
    profile = Profile.of_raw(RAW)
    assert profile.samples == 10
    assert profile.on_stack["handle (app.py)"] == 9  # not 15: it recurs in the first stack
    assert profile.on_stack["run (server.py)"] == 10  # its two lines are one function
    assert profile.on_top == {"encode (bson.py)": 6, "handle (app.py)": 3, "run (server.py)": 1}


def test_time_per_request_is_the_share_of_samples_of_the_cpu_a_request_took() -> None:
    profile = Profile.of_raw(RAW)
    assert profile.per_request("handle (app.py)", 2.0) == pytest.approx(1.8)
    assert profile.per_request("handle (app.py)", 2.0, own=True) == pytest.approx(0.6)
    assert profile.per_request("absent (x.py)", 2.0) == 0.0
    assert Profile.of_raw([]).per_request("run (server.py)", 2.0) == 0.0


def test_differences_put_what_only_ours_spends_first() -> None:
    ours = Profile.of_raw(RAW)
    theirs = Profile.of_raw(["run (server.py:1);encode (bson.py:3) 4\n"])
    rows = differences(ours, 2.0, theirs, 1.0, top=2, own=False)
    assert [function for function, _, _ in rows] == ["handle (app.py)", "run (server.py)"]
    assert rows[0][1:] == pytest.approx((1.8, 0.0))
    assert rows[1][1:] == pytest.approx((2.0, 1.0))


def test_only_a_trailing_line_number_is_dropped() -> None:
    profile = Profile.of_raw(["main (api:x.py:3);poll (libc.so.6) 2\n"])
    assert set(profile.on_stack) == {"main (api:x.py)", "poll (libc.so.6)"}
