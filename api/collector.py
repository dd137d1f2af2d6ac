"""The garbage collector set for a server: start-up's objects frozen, and the youngest
generation large enough that the requests in flight do not set it off."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# CPython collects its youngest generation each time 700 more container objects have been made
# than freed. A few requests in flight hold about that many, so under load a pass ran every
# request or two and found next to nothing (a request's objects are freed by their reference
# counts as it ends), while promoting whatever was in flight to the older generations, whose
# passes cost more: ~0.43 s of collecting in ~25,000 reads by id over 8 connections, ~17 µs a
# request. At 10,000 the passes are left to real garbage; one over 10,000 objects takes ~0.2 ms.
YOUNG_GENERATION_THRESHOLD = 10_000


# The thresholds are the process's, and apps may serve in one process at once (tests do): the
# first to start raises them and the last to stop puts back what was there before the first.
_serving = 0
_threshold_before = gc.get_threshold()


@contextmanager
def tuned_for_serving() -> Iterator[None]:
    """While the app serves: start-up's objects out of the collector's sight, and passes only
    for real garbage. The previous thresholds come back when no app serves any more."""
    global _serving, _threshold_before
    # What start-up built lives as long as the process: frozen, it is left out of the
    # collector's full passes, which otherwise stop the event loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    if _serving == 0:
        _threshold_before = gc.get_threshold()
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *_threshold_before[1:])
    _serving += 1
    try:
        yield
    finally:
        _serving -= 1
        if _serving == 0:
            gc.set_threshold(*_threshold_before)
