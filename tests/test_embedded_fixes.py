"""`_id` ranges and keyset pages answer as MongoDB does; the stand-in's neosqlite fixes are guarded.

The tests through `database_url` hold on MongoDB too (CABINET_TEST_MONGODB_URL); on the stand-in
they run against the patched server. The others patch neosqlite in this process, then restore it.
"""

import logging
import operator
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.collection import Collection

from api import embedded, embedded_fixes

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
LOWEST, HIGHEST = ObjectId("0" * 24), ObjectId("f" * 24)
# An ObjectId's text, but a string: a range on ObjectIds must skip it (the stand-in stores both
# as the same column text, and only the document itself tells them apart).
HEX_STRING = "0123456789abcdef01234567"
NOT_OBJECT_IDS: list[Any] = ["abc", "zzz", "", "0", 7, 2.5, HEX_STRING, HEX_STRING.upper()]


def random_object_id() -> ObjectId:
    # Random rather than fresh ids, so `_id` order is not insertion order.
    return ObjectId(os.urandom(12))


@pytest.fixture(scope="module")
def scratch(database_url: str) -> Iterator[Collection]:
    client: MongoClient = MongoClient(database_url)
    name = f"embedded_fixes_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]["scratch"]
    finally:
        client[name]["scratch"].drop()
        client.drop_database(name)
        client.close()


@pytest.fixture
def docs(scratch: Collection) -> Iterator[list[dict[str, Any]]]:
    owners = ["ann", "bob", "cy"]
    made = [{"_id": random_object_id(), "_owner": owners[i % 3], "n": i % 7} for i in range(90)]
    # Same owner and `n` as matching documents: only the type of `_id` keeps these out.
    made += [{"_id": value, "_owner": "ann", "n": 5} for value in NOT_OBJECT_IDS]
    scratch.insert_many([dict(doc) for doc in made])
    yield made
    scratch.delete_many({})


def pivots(docs: list[dict[str, Any]]) -> list[ObjectId]:
    ids = sorted(doc["_id"] for doc in docs if isinstance(doc["_id"], ObjectId))
    return [LOWEST, ids[0], ids[len(ids) // 2], ids[-1], random_object_id(), HIGHEST]


def oracle(
    docs: list[dict[str, Any]],
    id_ops: dict[str, Any],
    keep: Callable[[dict[str, Any]], bool],
    direction: int,
    limit: int,
) -> list[Any]:
    """What MongoDB returns: a range on an ObjectId only ever matches ObjectIds."""
    found = sorted(
        doc["_id"]
        for doc in docs
        if isinstance(doc["_id"], ObjectId)
        and all(OPS[op](doc["_id"], operand) for op, operand in id_ops.items())
        and keep(doc)
    )
    found = found[::-1] if direction == -1 else found
    return found[:limit] if limit else found


def ids(collection: Collection, query: dict, direction: int, limit: int) -> list[Any]:
    return [doc["_id"] for doc in collection.find(query).sort("_id", direction).limit(limit)]


EXTRAS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({}, lambda doc: True),
    ({"_owner": "ann"}, lambda doc: doc["_owner"] == "ann"),
    ({"_owner": "ann", "n": {"$gte": 3}}, lambda doc: doc["_owner"] == "ann" and doc["n"] >= 3),
]


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("op", list(OPS))
def test_object_id_ranges_return_what_mongodb_would(
    scratch: Collection, docs: list[dict[str, Any]], op: str, direction: int
) -> None:
    for pivot in pivots(docs):
        for extra, keep in EXTRAS:
            for limit in (0, 1, 5):
                query = {**extra, "_id": {op: pivot}}
                expected = oracle(docs, {op: pivot}, keep, direction, limit)
                assert ids(scratch, query, direction, limit) == expected, (query, direction, limit)


def test_a_keyset_walk_visits_every_document_of_one_owner_once(
    scratch: Collection, docs: list[dict[str, Any]]
) -> None:
    for direction, op in ((1, "$gt"), (-1, "$lt")):
        walked: list[Any] = ids(scratch, {"_owner": "bob"}, direction, 4)
        while True:
            page = ids(scratch, {"_owner": "bob", "_id": {op: walked[-1]}}, direction, 4)
            if not page:
                break
            walked += page
        assert walked == oracle(docs, {}, lambda doc: doc["_owner"] == "bob", direction, 0)


def test_two_sided_and_mixed_id_conditions(scratch: Collection, docs: list[dict[str, Any]]) -> None:
    low, middle, _, high, _, _ = pivots(docs)
    some = [doc["_id"] for doc in docs[:30]]
    cases: list[tuple[dict[str, Any], Callable[[Any], bool]]] = [
        ({"$gt": low, "$lt": high}, lambda i: low < i < high),
        ({"$gte": middle, "$lte": HIGHEST}, lambda i: i >= middle),
        ({"$gt": LOWEST, "$ne": middle}, lambda i: i != middle),
        ({"$gte": middle, "$in": [*some, "abc", 7]}, lambda i: i >= middle and i in some),
        ({"$lt": middle, "$nin": some}, lambda i: i < middle and i not in some),
        # Each bound brackets its own type: no value is both an ObjectId and a string.
        ({"$gt": LOWEST, "$lt": "zzz"}, lambda i: False),
    ]
    for condition, keep in cases:
        expected = sorted(
            d["_id"] for d in docs if isinstance(d["_id"], ObjectId) and keep(d["_id"])
        )
        assert ids(scratch, {"_id": condition}, 1, 0) == expected, condition


def test_ranges_on_other_types_keep_their_own_type(
    scratch: Collection, docs: list[dict[str, Any]]
) -> None:
    strings = sorted(v for v in NOT_OBJECT_IDS if isinstance(v, str) and v > "0")
    numbers = sorted(v for v in NOT_OBJECT_IDS if isinstance(v, int | float) and v < 10)
    assert ids(scratch, {"_id": {"$gt": "0"}}, 1, 0) == strings
    assert sorted(ids(scratch, {"_id": {"$lt": 10}}, 1, 0)) == numbers


@pytest.mark.parametrize("direction", [1, -1])
def test_sorted_pages_of_an_or_filter(
    scratch: Collection, docs: list[dict[str, Any]], direction: int
) -> None:
    # A filter the stand-in evaluates in Python, over rows it reads in `_id` order.
    ordered = sorted(doc["_id"] for doc in docs if isinstance(doc["_id"], ObjectId))
    low, middle = ordered[len(ordered) // 4], ordered[len(ordered) // 2]
    query = {"_owner": "cy", "$or": [{"_id": {"$lt": low}}, {"_id": {"$gt": middle}}]}
    expected = sorted(
        d["_id"]
        for d in docs
        if isinstance(d["_id"], ObjectId) and d["_owner"] == "cy" and not low <= d["_id"] <= middle
    )
    expected = expected[::-1] if direction == -1 else expected
    for limit in (0, 3):
        assert ids(scratch, query, direction, limit) == (expected[:limit] if limit else expected)


@pytest.mark.skipif(
    bool(os.environ.get("CABINET_TEST_MONGODB_URL")), reason="only the stand-in is patched"
)
def test_the_stand_in_runs_patched(database_url: str) -> None:
    port = urlsplit(database_url).port
    servers = [
        cmdline.split(b"\0")
        for cmdline in children_command_lines()
        if embedded.is_server_command_line(cmdline)
    ]
    assert [sys.executable.encode(), b"-m", b"api.embedded_fixes"] in [argv[:3] for argv in servers]
    assert any(str(port).encode() in argv for argv in servers)
    # The refusal warning goes to the server's log, which is named after its port.
    log = Path(tempfile.gettempdir()) / f"nx-27017-{port}.log"
    assert "Listening on" in log.read_text()
    assert "fixes not applied" not in log.read_text()


def children_command_lines() -> list[bytes]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid():
                found.append((stat.parent / "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    return found


# In-process: neosqlite itself, patched here and restored after each test.


@pytest.fixture
def classes(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    from neosqlite.collection.cursor import Cursor
    from neosqlite.collection.query_helper._sql_query_builder import SqlQueryBuilderMixin

    # Setting each to itself makes monkeypatch put the original back after the test.
    monkeypatch.setattr(Cursor, "_handle_python_fallback", Cursor._handle_python_fallback)
    monkeypatch.setattr(
        SqlQueryBuilderMixin,
        "_build_id_operator_clause",
        SqlQueryBuilderMixin._build_id_operator_clause,
    )
    return Cursor, SqlQueryBuilderMixin


def patched_functions(classes: tuple[Any, Any]) -> tuple[Any, Any]:
    cursor, builder = classes
    return cursor._handle_python_fallback, builder._build_id_operator_clause


def test_an_unknown_neosqlite_version_is_refused_without_patching(
    classes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = patched_functions(classes)
    for version in ("1.17.3", "1.17", "1.17.2.post1", None):
        monkeypatch.setattr(embedded_fixes, "installed_version", lambda v=version: v)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=embedded_fixes.__name__):
            assert embedded_fixes.apply() is False
        assert patched_functions(classes) == before
        assert "not applied" in caplog.text


def test_moved_internals_are_refused_without_patching(
    classes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cursor, builder = classes
    fallback = cursor._handle_python_fallback
    monkeypatch.delattr(builder, "_build_id_operator_clause")
    assert embedded_fixes.apply() is False
    assert cursor._handle_python_fallback is fallback


def make_collection() -> tuple[Any, list[str]]:
    """A neosqlite collection of 40 ObjectId documents (two owners) and two string `_id`s."""
    import neosqlite
    from neosqlite.objectid import ObjectId as NeoObjectId

    collection = neosqlite.Connection(":memory:")["docs"]
    collection.create_index("_owner")
    oids = [NeoObjectId(os.urandom(12)) for _ in range(40)]
    collection.insert_many([{"_id": oid, "_owner": f"o{i % 2}"} for i, oid in enumerate(oids)])
    collection.insert_many([{"_id": HEX_STRING, "_owner": "o0"}, {"_id": "abc", "_owner": "o0"}])
    return collection, sorted(str(oid) for oid in oids)


def owned(collection: Any, owner: str) -> set[str]:
    return {str(doc["_id"]) for doc in collection.find({"_owner": owner})}


@pytest.mark.parametrize("driver_object_id", [False, True])
@pytest.mark.parametrize("pivot_at", [None, 10])
def test_a_keyset_filter_is_built_in_sql_once_patched(
    classes: tuple[Any, Any], driver_object_id: bool, pivot_at: int | None
) -> None:
    from neosqlite.objectid import ObjectId as NeoObjectId

    collection, oids = make_collection()
    pivot = "0" * 24 if pivot_at is None else oids[pivot_at]  # "0"*24 is below HEX_STRING
    operand = ObjectId(pivot) if driver_object_id else NeoObjectId(pivot)
    keyset = {"_owner": "o0", "_id": {"$gt": operand}}
    helpers = collection.query_engine.helpers
    assert helpers._build_simple_where_clause(keyset) is None  # unpatched: the whole-table path

    assert embedded_fixes.apply() is True
    assert helpers._build_simple_where_clause(keyset) is not None
    # Anything but an ObjectId operand is left to the original, which falls back to Python.
    assert helpers._build_simple_where_clause({"_id": {"$gt": "abc"}}) is None
    found = [str(doc["_id"]) for doc in collection.find(keyset).sort("_id", 1).limit(50)]
    assert found == [oid for oid in oids if oid > pivot and oid in owned(collection, "o0")]


def test_a_sorted_python_fallback_is_not_sorted_again(
    classes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from neosqlite.objectid import ObjectId as NeoObjectId

    cursor, _ = classes
    collection, oids = make_collection()
    query = {"$or": [{"_owner": "o1"}, {"_id": {"$lt": NeoObjectId(oids[5])}}]}
    expected = [oid for oid in oids if oid in owned(collection, "o1") or oid < oids[5]]
    assert embedded_fixes.apply() is True

    def no_python_sort(self: Any, docs: Any) -> Any:
        raise AssertionError("sorted again in Python")

    monkeypatch.setattr(cursor, "_apply_sorting", no_python_sort)
    for direction in (1, -1):
        found = [str(doc["_id"]) for doc in collection.find(query).sort("_id", direction).limit(7)]
        assert found == (expected if direction == 1 else expected[::-1])[:7]
