"""Stored documents as the JSON a client sees: ids as strings, dates in ISO 8601 UTC."""

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from bson.tz_util import utc as bson_utc  # what the driver reads dates in

SYSTEM_KEYS = ("_id", "_owner", "_created", "_updated", "_version")


def iso(moment: datetime) -> str:
    """To the millisecond, `Z` for UTC; a naive moment is taken as UTC, as stored dates are."""
    if moment.tzinfo is not None and moment.tzinfo is not UTC and moment.tzinfo is not bson_utc:
        moment = moment.astimezone(UTC)
    text = moment.isoformat()  # with `timespec`, or after `replace`, it is several times slower
    if moment.tzinfo is not None:
        text = text[:-6]  # "+00:00"
    return (text[:23] if moment.microsecond else text) + "Z"


# Checked by exact type first, inline: this runs for every value of every document a page
# returns, and most values are plain scalars that need no call at all.
_AS_IS = frozenset({str, int, float, bool, type(None)})


def to_json(value: Any) -> Any:
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is dict or isinstance(value, dict):
        return {key: item if type(item) in _AS_IS else to_json(item) for key, item in value.items()}
    if kind is list or isinstance(value, list):
        return [item if type(item) in _AS_IS else to_json(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


def _drop(document: dict, path: str) -> None:
    document.pop(path, None)  # a sub-field some servers return under its dotted name
    head, _, rest = path.partition(".")
    if not rest:
        return
    inner = document.get(head)
    for item in inner if isinstance(inner, list) else [inner]:
        if isinstance(item, dict):
            _drop(item, rest)


def render(stored: dict, hidden: tuple[str, ...] = ()) -> dict:
    """The client's view of a stored document, without the fields it may not see."""
    document = to_json(stored)
    for path in hidden:
        _drop(document, path)
    return document


def system_only(stored: dict) -> dict:
    """What a writer whose read rule does not admit them gets back: the system fields alone."""
    return to_json({key: stored[key] for key in SYSTEM_KEYS if key in stored})


def user_fields(stored: dict) -> dict:
    return {key: value for key, value in stored.items() if not key.startswith("_")}
