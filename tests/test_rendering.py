"""Dates as clients see them: ISO 8601 in UTC to the millisecond, whatever zone they carry."""

from datetime import UTC, datetime, timedelta, timezone

import bson
import pytest
from bson import CodecOptions

from api.rendering import iso

MOMENT = datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def _as_the_driver_reads(moment: datetime) -> datetime:
    """A date stored and read back as the service's client reads it (aware, bson's own UTC)."""
    encoded = bson.encode({"moment": moment})
    read: datetime = bson.decode(encoded, codec_options=CodecOptions(tz_aware=True))["moment"]
    return read


@pytest.mark.parametrize(
    "moment",
    [
        MOMENT,
        _as_the_driver_reads(MOMENT),
        MOMENT.astimezone(timezone(timedelta(hours=-5))),
        MOMENT.replace(tzinfo=None),  # stored dates are UTC, however they are read
    ],
    ids=["utc", "read-by-the-driver", "another-zone", "naive"],
)
def test_a_moment_renders_the_same_in_any_zone(moment: datetime) -> None:
    assert iso(moment) == "2024-01-02T03:04:05.678Z"


def test_a_whole_second_has_no_fraction() -> None:
    assert iso(_as_the_driver_reads(MOMENT.replace(microsecond=0))) == "2024-01-02T03:04:05Z"
