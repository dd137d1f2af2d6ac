"""`_id` ranges, keyset pages, `_owner, _id` indexes and change streams' awaitData work as on
MongoDB; the stand-in's fixes to neosqlite and nx-27017 are guarded.

The tests through `database_url` hold on MongoDB too (CABINET_TEST_MONGODB_URL); on the stand-in
they run against the patched server. The others patch neosqlite in this process, then restore it.
"""

import logging
import operator
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, IndexModel, MongoClient
from pymongo.collection import Collection

from api import embedded, embedded_fixes
from api.catalog import _signature
from api.database import server_traits

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


# `{_owner: 1, _id: 1}`, the owner index Cabinet builds where the server takes `_id` in a compound.

OWNER_ID = [("_owner", 1), ("_id", 1)]


@pytest.fixture
def indexed(scratch: Collection) -> Iterator[Collection]:
    """An empty collection with the owner index, built before any document as Cabinet does."""
    collection = scratch.database[f"indexed_{uuid.uuid4().hex[:8]}"]
    collection.create_index(OWNER_ID, name="owner_id")
    yield collection
    collection.drop()


def listed(collection: Collection) -> dict[str, list[tuple[str, int]]]:
    """Each listed index's keys (the stand-in names indexes its own way)."""
    return {
        name: [(path, int(direction)) for path, direction in info["key"]]
        for name, info in collection.index_information().items()
    }


def walk(collection: Collection, owner: str, direction: int, size: int) -> list[Any]:
    """Every page of one owner's documents in `_id` order, as Cabinet's cursors ask for them."""
    op = "$gt" if direction == 1 else "$lt"
    walked: list[Any] = ids(collection, {"_owner": owner}, direction, size)
    while walked:
        page = ids(collection, {"_owner": owner, "_id": {op: walked[-1]}}, direction, size)
        if not page:
            break
        walked += page
    return walked


def test_an_owner_id_index_keeps_writes_working_and_answers_keyset_pages(
    indexed: Collection,
) -> None:
    made = [
        {"_id": random_object_id(), "_owner": ["ann", "bob", "cy"][i % 3], "n": i % 7}
        for i in range(120)
    ]
    made += [{"_id": value, "_owner": "ann", "n": 5} for value in NOT_OBJECT_IDS]
    indexed.insert_many([dict(doc) for doc in made])
    # Writes through the index: in place, a move to another owner, a replacement, deletions.
    indexed.update_many({"_owner": "bob"}, {"$set": {"n": 9}})
    moved, replaced = made[0]["_id"], made[4]["_id"]
    indexed.update_one({"_id": moved}, {"$set": {"_owner": "cy"}})
    indexed.replace_one({"_id": replaced}, {"_owner": "ann", "n": 1})
    indexed.delete_many({"n": 3})
    indexed.delete_one({"_id": HEX_STRING})
    added = {"_id": random_object_id(), "_owner": "bob", "n": 2}
    indexed.insert_one(dict(added))
    for doc in made:
        doc["n"] = 9 if doc["_owner"] == "bob" else doc["n"]
        doc["_owner"] = "cy" if doc["_id"] == moved else doc["_owner"]
        if doc["_id"] == replaced:
            doc.update({"_owner": "ann", "n": 1})
    kept = [doc for doc in made if doc["n"] != 3 and doc["_id"] != HEX_STRING] + [added]
    assert indexed.count_documents({}) == len(kept)
    assert sorted(map(str, (d["_id"] for d in indexed.find({})))) == sorted(
        str(doc["_id"]) for doc in kept
    )

    for owner in ("ann", "bob", "cy", "nobody"):

        def keep(doc: dict[str, Any], owner: str = owner) -> bool:
            return bool(doc["_owner"] == owner)

        for direction in (1, -1):
            if owner != "ann":  # whose first page starts with other types, in their own order
                assert walk(indexed, owner, direction, 4) == oracle(kept, {}, keep, direction, 0)
            for pivot in pivots(kept):
                for op in ("$gt", "$lt") if direction == 1 else ("$lt", "$gt"):
                    query = {"_owner": owner, "_id": {op: pivot}}
                    expected = oracle(kept, {op: pivot}, keep, direction, 5)
                    assert ids(indexed, query, direction, 5) == expected, (query, direction)


def test_an_owner_id_index_is_listed_by_its_keys_and_can_be_dropped(
    indexed: Collection,
) -> None:
    indexed.insert_many([{"_owner": f"o{i % 2}", "n": i} for i in range(10)])
    [(name, keys)] = [(name, keys) for name, keys in listed(indexed).items() if name != "_id_"]
    assert keys == OWNER_ID
    info = indexed.index_information()[name]
    assert not info.get("unique")
    # As Cabinet's index sync sees it: the very index it asks for, nothing to rebuild or drop.
    assert _signature(info) == _signature(IndexModel(OWNER_ID, name="cabinet_owner").document)

    indexed.drop_index(name)
    assert list(listed(indexed)) == ["_id_"]
    indexed.insert_one({"_owner": "o0", "n": 10})
    # Built again over documents already there, as a changed definition would.
    indexed.create_index(OWNER_ID, name="owner_id")
    assert [keys for n, keys in listed(indexed).items() if n != "_id_"] == [OWNER_ID]
    indexed.insert_one({"_owner": "o1", "n": 11})
    assert ids(indexed, {"_owner": "o0"}, 1, 0) == sorted(
        d["_id"] for d in indexed.find({"n": {"$in": [0, 2, 4, 6, 8, 10]}})
    )


async def test_the_server_takes_id_in_a_compound_index(database_url: str) -> None:
    # MongoDB always does; the stand-in once patched, and says so in its buildInfo.
    client: AsyncMongoClient = AsyncMongoClient(database_url)
    try:
        traits = await server_traits(client)
    finally:
        await client.close()
    assert traits.id_in_compound_index is True


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
    assert "fix not applied" not in log.read_text()
    assert "not announced" not in log.read_text()
    client: MongoClient = MongoClient(database_url)
    try:
        info = client.admin.command("buildInfo")
    finally:
        client.close()
    assert info["process"] == "nx_27017"
    assert info[embedded_fixes.COMPOUND_ID_INDEXES] is True


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


def patch_targets() -> list[tuple[Any, str]]:
    """Every attribute the fixes replace."""
    from neosqlite.collection.cursor import Cursor
    from neosqlite.collection.index_manager import IndexManager
    from neosqlite.collection.query_helper._sql_query_builder import SqlQueryBuilderMixin
    from nx_27017.handler import NeoSQLiteHandler

    return [
        (Cursor, "_handle_python_fallback"),
        (SqlQueryBuilderMixin, "_build_id_operator_clause"),
        (SqlQueryBuilderMixin, "_field_has_index"),
        (IndexManager, "create_index"),
        (IndexManager, "index_information"),
        (NeoSQLiteHandler, "_handle_server_status"),
    ]


@pytest.fixture
def classes(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    from neosqlite.collection.cursor import Cursor
    from neosqlite.collection.query_helper._sql_query_builder import SqlQueryBuilderMixin
    from nx_27017 import server

    # Setting each to itself makes monkeypatch put the original back after the test.
    for owner, name in [*patch_targets(), (server, "asyncio")]:
        monkeypatch.setattr(owner, name, getattr(owner, name))
    return Cursor, SqlQueryBuilderMixin


def patched_functions(classes: tuple[Any, Any]) -> tuple[Any, ...]:
    return tuple(getattr(owner, name) for owner, name in patch_targets())


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


@pytest.mark.parametrize(
    "moved", ["_build_id_operator_clause", "_field_has_index", "index_information"]
)
def test_moved_internals_are_refused_without_patching(
    classes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, moved: str
) -> None:
    from neosqlite.collection.index_manager import IndexManager

    monkeypatch.delattr(IndexManager if moved == "index_information" else classes[1], moved)
    before = [getattr(owner, name, None) for owner, name in patch_targets()]
    assert embedded_fixes.apply() is False
    assert [getattr(owner, name, None) for owner, name in patch_targets()] == before


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


def test_applying_again_changes_nothing(classes: tuple[Any, Any]) -> None:
    originals = patched_functions(classes)
    assert embedded_fixes.apply() is True
    once = patched_functions(classes)
    assert all(new is not old for new, old in zip(once, originals, strict=True))
    assert embedded_fixes.apply() is True
    assert patched_functions(classes) == once


def test_unpatched_an_id_in_a_compound_index_breaks_every_insert(classes: tuple[Any, Any]) -> None:
    # Why Cabinet asks the server: neosqlite indexes `json_extract(data, '_id')`, not a JSON path.
    import neosqlite
    from neosqlite._sqlite import sqlite3

    collection = neosqlite.Connection(":memory:")["docs"]
    collection.create_index(OWNER_ID)
    with pytest.raises(sqlite3.OperationalError, match="JSON path"):
        collection.insert_one({"_owner": "o0"})


def last_select(statements: list[str]) -> str:
    return [sql for sql in statements if sql.startswith("SELECT id, _id, data")][-1]


def test_keyset_pages_are_read_from_the_owner_id_index_in_order(classes: tuple[Any, Any]) -> None:
    import neosqlite
    from neosqlite.objectid import ObjectId as NeoObjectId

    assert embedded_fixes.apply() is True
    collection = neosqlite.Connection(":memory:")["docs"]
    collection.create_index(OWNER_ID)
    oids = [NeoObjectId(os.urandom(12)) for _ in range(60)]
    collection.insert_many([{"_id": oid, "_owner": f"o{i % 3}"} for i, oid in enumerate(oids)])
    mine = sorted(str(oid) for i, oid in enumerate(oids) if i % 3 == 0)
    pivot = mine[8]
    cases: list[tuple[dict[str, Any], int, list[str]]] = [
        ({"_owner": "o0"}, 1, mine[:3]),
        ({"_owner": "o0"}, -1, mine[::-1][:3]),
        ({"_owner": "o0", "_id": {"$gt": NeoObjectId(pivot)}}, 1, mine[9:12]),
        ({"_owner": "o0", "_id": {"$lt": ObjectId(pivot)}}, -1, mine[7:4:-1]),
    ]
    for query, direction, expected in cases:
        statements: list[str] = []
        collection.db.set_trace_callback(statements.append)
        found = [str(doc["_id"]) for doc in collection.find(query).sort("_id", direction).limit(3)]
        collection.db.set_trace_callback(None)
        assert found == expected, query
        plan = collection.db.execute("EXPLAIN QUERY PLAN " + last_select(statements)).fetchall()
        details = " | ".join(row[-1] for row in plan)
        # Straight from the index: no sort of the owner's other documents.
        assert "USING INDEX idx_docs__owner__id (<expr>=?" in details, details
        assert "TEMP B-TREE" not in details, details


def stand_in_build_info() -> dict[str, Any]:
    """nx-27017's buildInfo reply, from a handler holding just what that reply reads."""
    from nx_27017.handler import NeoSQLiteHandler

    handler = SimpleNamespace(
        start_time=time.time(), _connections_lock=threading.Lock(), _active_connections=0
    )
    _, reply = NeoSQLiteHandler._handle_server_status(handler, 1, None)
    return cast(dict[str, Any], reply)


class Answering:
    """A client whose server answers buildInfo with `reply`."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.admin = self

    async def command(self, name: str) -> dict[str, Any]:
        assert name == "buildInfo"
        return self.reply


async def compound_ids(reply: dict[str, Any]) -> bool:
    return (await server_traits(cast(Any, Answering(reply)))).id_in_compound_index


async def test_a_refused_version_leaves_build_info_and_the_owner_index_as_before(
    classes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_fixes, "installed_version", lambda: "1.17.3")
    assert embedded_fixes.apply() is False
    unpatched = stand_in_build_info()
    assert unpatched["process"] == "nx_27017"
    assert embedded_fixes.COMPOUND_ID_INDEXES not in unpatched
    assert await compound_ids(unpatched) is False  # Cabinet keeps the `_owner` index alone

    monkeypatch.setattr(embedded_fixes, "installed_version", lambda: embedded_fixes.WRITTEN_FOR)
    assert embedded_fixes.apply() is True
    patched = stand_in_build_info()
    assert patched[embedded_fixes.COMPOUND_ID_INDEXES] is True
    assert await compound_ids(patched) is True


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"process": "nx_27017"}, False),
        ({"process": "nx_27017", embedded_fixes.COMPOUND_ID_INDEXES: True}, True),
        ({"process": "nx_27017", embedded_fixes.COMPOUND_ID_INDEXES: 1}, False),
        ({"process": "nx_27017", embedded_fixes.COMPOUND_ID_INDEXES: "true"}, False),
        ({"version": "8.0.4"}, True),  # MongoDB
    ],
)
async def test_id_in_compound_index_follows_build_info(
    reply: dict[str, Any], expected: bool
) -> None:
    assert await compound_ids(reply) is expected


def test_moved_nx_27017_internals_leave_fix_c_unannounced(
    classes: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from neosqlite.collection.index_manager import IndexManager
    from nx_27017.handler import NeoSQLiteHandler

    monkeypatch.delattr(NeoSQLiteHandler, "_handle_server_status")
    with caplog.at_level(logging.WARNING, logger=embedded_fixes.__name__):
        assert embedded_fixes.apply() is True
    assert "compound _id indexes not announced" in caplog.text
    assert getattr(IndexManager.create_index, "__cabinet_patched__", False)
