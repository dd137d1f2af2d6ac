"""Six fixes to neosqlite and nx-27017, applied only inside the embedded stand-in's own process.

`python -m api.embedded_fixes <nx-27017 arguments>` applies them, then runs nx-27017. The first
three let keyset pages (`{"_owner": x, "_id": {"$gt": oid}}` sorted on `_id`, limited) run as one
indexed SQL query instead of a read and JSON decode of the whole collection per page:

A. `Cursor._handle_python_fallback` sorts in SQL and says so by setting `_sql_handled_sort`, but it
   is a generator: the flag lands only once iteration starts, after `_execute_query` has decided
   to sort again in Python, which drains every matching document before `limit` can stop it.
B. `_build_id_operator_clause` gives up on `$gt/$gte/$lt/$lte` over `_id` (mixed `_id` types
   could compare wrongly in SQL), so any filter holding one falls back to Python. ObjectId
   operands are safe: the `_id` column holds an ObjectId as its 24 lowercase hex characters, whose
   text order is ObjectId order. The SQL keeps MongoDB's type bracketing by matching only rows
   whose stored `_id` is an ObjectId; any other operand keeps the original behaviour.
C. `IndexManager.create_index` builds a compound index on `json_extract(data, path)` of each field,
   but `parse_json_path("_id")` is `_id`, not a JSON path (`_id` has a column of its own, which the
   single-field branch does index), so `{_owner: 1, _id: 1}` holds a malformed path and every
   later insert fails. A compound key naming `_id` now indexes the `_id` column: the index MongoDB
   would build, which gives an owner's rows in `_id` order, so a keyset page needs no sort. Two
   more changes let it serve. The listing (`index_information`, which nx-27017's `listIndexes`
   returns) read keys off the JSON paths only; it now gives such an index the keys it was created
   with, in order, as Cabinet's index sync compares them. `_field_has_index` keeps an equality a
   plain, indexable comparison (no array-element arms) for a field whose index *name* ends in it,
   which `idx_<table>__owner__id` does not for `_owner`; it now also counts the leading field of
   such an index, so `_owner` is matched as it was under the `_owner` index Cabinet built before.
   nx-27017's `buildInfo` reply then says `compoundIdIndexes: true`: Cabinet asks for the
   `_owner, _id` index only where the server says so (or on MongoDB), never on an unpatched one.

D. (`api/embedded_await_data.py`) holds a change stream's empty getMore until an event or its
   `maxTimeMS`, as MongoDB's awaitData does, where nx-27017 answers it at once.

E. (`api/embedded_joins.py`) refuses a `$lookup` with a pipeline where neosqlite would run it in
   Python, which skips the pipeline and with it the joined collection's rule filter.

F. (`api/embedded_replies.py`) answers an error when a command's result cannot be encoded, where
   nx-27017 sends nothing and leaves the client's connection waiting for ever.

A-C reach into neosqlite's internals and D into nx-27017's, so each applies only to the exact
version it was written and tested against (neosqlite 1.17.2, nx-27017 0.8.1); with any other the
stand-in runs without it (correct, only slower), and logs that it does.
"""

import inspect
import logging
import re
import sys
from importlib import metadata
from typing import Any

from api import embedded_await_data, embedded_joins, embedded_replies

logger = logging.getLogger(__name__)

WRITTEN_FOR = "1.17.2"
_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_PATCHED = "__cabinet_patched__"
# Added by fix C to nx-27017's `buildInfo` reply; `api.database.server_traits` reads it.
COMPOUND_ID_INDEXES = "compoundIdIndexes"
# The `_id` column itself, as one entry of an index's column list (a JSON path is `'$._id'`).
_ID_COLUMN = re.compile(r"[(,]\s*_id\s*[,)]")


def installed_version() -> str | None:
    try:
        return metadata.version("neosqlite")
    except metadata.PackageNotFoundError:
        return None


def apply() -> bool:
    """Applies each fix whose guard lets it (A-C on neosqlite's version, D on nx-27017's, E and F
    if what they wrap is there); whether all of them were."""
    held = embedded_await_data.apply()
    joins = embedded_joins.apply()
    replies = embedded_replies.apply()
    keyset = _apply_keyset_fixes()
    return keyset and held and joins and replies


def _apply_keyset_fixes() -> bool:
    version = installed_version()
    if version != WRITTEN_FOR:
        logger.warning("neosqlite %s is not %s: keyset fixes not applied", version, WRITTEN_FOR)
        return False
    try:
        from bson import ObjectId as BsonObjectId
        from neosqlite.collection import index_manager
        from neosqlite.collection.cursor import Cursor
        from neosqlite.collection.query_helper._sql_query_builder import SqlQueryBuilderMixin
        from neosqlite.objectid import ObjectId as NeoObjectId

        fallback = Cursor._handle_python_fallback
        SqlQueryBuilderMixin._build_id_operator_clause  # noqa: B018 - must exist
        manager = index_manager.IndexManager
        for owner, name in (
            (SqlQueryBuilderMixin, "_field_has_index"),
            (manager, "create_index"),
            (manager, "index_information"),
            (index_manager, "parse_json_path"),
            (index_manager, "quote_table_name"),
            (index_manager, "_store_index_keys"),
            (index_manager, "_load_index_keys"),
        ):
            getattr(owner, name)  # must exist
    except (ImportError, AttributeError) as error:
        logger.warning("neosqlite internals moved (%s): keyset fixes not applied", error)
        return False
    if getattr(fallback, _PATCHED, False):
        return True
    _fix_fallback_sort(Cursor)
    # Filters arrive from the wire with neosqlite ObjectIds (find) or still as bson ones
    # (aggregate's $match, which nx-27017 passes through unconverted).
    _fix_id_ranges(SqlQueryBuilderMixin, (NeoObjectId, BsonObjectId))
    _fix_compound_id_indexes(index_manager, SqlQueryBuilderMixin)
    _announce_compound_id_indexes()
    return True


def _fix_fallback_sort(cursor_class: Any) -> None:
    original = cursor_class._handle_python_fallback

    def _handle_python_fallback(self: Any) -> Any:
        # The original puts exactly this clause in its SELECT whenever it is non-empty; a
        # `$meta` direction would be turned into a meaningless DESC, so that one stays in Python.
        sort = self._sort or {}
        in_sql = self._query_helpers._build_sort_clause(self._sort, self._collation)
        if in_sql and all(direction in (1, -1) for direction in sort.values()):
            self._sql_handled_sort = True
        return original(self)

    setattr(_handle_python_fallback, _PATCHED, True)
    cursor_class._handle_python_fallback = _handle_python_fallback


def _fix_id_ranges(builder_class: Any, object_id_types: tuple[type, ...]) -> None:
    original = builder_class._build_id_operator_clause

    def _build_id_operator_clause(self: Any, value: dict) -> tuple[str, list[Any]] | None:
        ranges = {op: operand for op, operand in value.items() if op in _RANGE_SQL}
        if (
            not ranges
            or not all(isinstance(operand, object_id_types) for operand in ranges.values())
            # A JSONB `_id` column has numeric affinity (all-digit hex may not stay text), and a
            # legacy table keeps `_id` in the integer `id`: neither stores the hex text.
            or self.jsonb.jsonb_supported
            or self.collection._id_column != "_id"
        ):
            return original(self, value)
        column = self._id_column_ref()
        clauses = [f"{column} {_RANGE_SQL[op]} ?" for op in ranges]
        params: list[Any] = [str(operand) for operand in ranges.values()]
        # A string `_id` of 24 hex characters has the same column text as an ObjectId; only the
        # document's own encoding tells them apart. The cheap text tests run first.
        clauses.append(
            f"length({column}) = 24 AND {column} NOT GLOB '*[^0-9a-f]*'"
            " AND json_type(data, '$._id.__neosqlite_objectid__') = 'true'"
        )
        rest = {op: operand for op, operand in value.items() if op not in ranges}
        if rest:
            built = original(self, rest)
            if built is None:
                return None
            clauses.append(built[0])
            params.extend(built[1])
        return "(" + " AND ".join(clauses) + ")", params

    builder_class._build_id_operator_clause = _build_id_operator_clause


def _id_indexes(collection: Any, load_keys: Any) -> dict[str, list[str]]:
    """The keys of each of the collection's indexes built by fix C (`_id` column in a compound)."""
    rows = collection.db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
        (collection.name,),
    ).fetchall()
    found = {}
    for name, sql in rows:
        if sql and _ID_COLUMN.search(sql):
            keys = load_keys(collection.db, name)
            if isinstance(keys, list) and len(keys) > 1:
                found[name] = [str(key) for key in keys]
    return found


def _fix_compound_id_indexes(manager_module: Any, builder_class: Any) -> None:
    manager_class = manager_module.IndexManager
    create, information = manager_class.create_index, manager_class.index_information
    has_index = builder_class._field_has_index
    if getattr(create, _PATCHED, False):
        return
    signature = inspect.signature(create)

    def create_index(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs)
        call.apply_defaults()
        options = call.arguments
        key = options["key"]
        if not (
            isinstance(key, list)
            and len(key) > 1
            and all(isinstance(part, tuple) and len(part) == 2 for part in key)
            and all(direction in (1, -1) for _, direction in key)
            and "_id" in (field for field, _ in key)
            # The original's other branches (and its refusals) for these stay as they are.
            and not (options["fts"] or options["datetime_field"])
            and options["expireAfterSeconds"] is None
        ):
            return create(*call.args, **call.kwargs)
        # The original's compound branch, but for `_id`; like it, partial and sparse are ignored.
        fields = [str(field) for field, _ in key]
        prefix = self.jsonb.json_function_prefix
        columns = ", ".join(
            "_id"
            if field == "_id"
            else f"{prefix}_extract(data, '{manager_module.parse_json_path(field)}')"
            for field in fields
        )
        table = manager_module.quote_table_name(self.collection.name)
        name = manager_module.quote_table_name(f"idx_{table}_{'_'.join(fields).replace('.', '_')}")
        unique = "UNIQUE " if options["unique"] else ""
        self.collection.db.execute(
            f"CREATE {unique}INDEX IF NOT EXISTS {name} ON {table}({columns})"
        )
        manager_module._store_index_keys(self.collection.db, name, fields)
        return name

    def index_information(self: Any) -> dict[str, Any]:
        info: dict[str, Any] = information(self)
        for name, keys in _id_indexes(self.collection, manager_module._load_index_keys).items():
            if name in info:
                # Every key ascending, as neosqlite lists (and builds) every index.
                info[name]["key"] = dict.fromkeys(keys, 1)
        return info

    def _field_has_index(self: Any, field: str) -> bool:
        # Equality on a field neosqlite counts as indexed stays `json_extract(...) = ?`, which an
        # index can serve; on any other it adds array-containment arms no index serves. It
        # counts a field by index name suffix, which the leading field of `_owner, _id` lacks.
        if has_index(self, field):
            return True
        found = _id_indexes(self.collection, manager_module._load_index_keys)
        return any(keys[0] == field for keys in found.values())

    for function in (create_index, index_information, _field_has_index):
        setattr(function, _PATCHED, True)
    manager_class.create_index = create_index
    manager_class.index_information = index_information
    builder_class._field_has_index = _field_has_index


def _announce_compound_id_indexes() -> None:
    """Adds `compoundIdIndexes: true` to nx-27017's buildInfo reply (shared with serverStatus)."""
    try:
        from nx_27017.handler import NeoSQLiteHandler

        original = NeoSQLiteHandler._handle_server_status
    except (ImportError, AttributeError) as error:
        # Fix C is in place but unannounced: Cabinet keeps building the `_owner` index alone.
        logger.warning("nx-27017 internals moved (%s): compound _id indexes not announced", error)
        return
    if getattr(original, _PATCHED, False):
        return

    def _handle_server_status(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = original(self, *args, **kwargs)
        if isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], dict):
            answer[1][COMPOUND_ID_INDEXES] = True
        return answer

    setattr(_handle_server_status, _PATCHED, True)
    NeoSQLiteHandler._handle_server_status = _handle_server_status


def main() -> None:
    """Applies the fixes, then runs nx-27017's own command line with this one's arguments."""
    apply()
    from nx_27017.nx_27017 import main as serve

    sys.exit(serve())


if __name__ == "__main__":
    main()
