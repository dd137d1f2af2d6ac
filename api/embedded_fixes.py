"""Two fixes to neosqlite, applied only inside the embedded stand-in's own process.

`python -m api.embedded_fixes <nx-27017 arguments>` applies them, then runs nx-27017. They let
keyset pages (`{"_owner": x, "_id": {"$gt": oid}}` sorted on `_id`, limited) run as one indexed
SQL query instead of a read and JSON decode of the whole collection per page:

A. `Cursor._handle_python_fallback` sorts in SQL and says so by setting `_sql_handled_sort`, but it
   is a generator: the flag lands only once iteration starts, after `_execute_query` has decided
   to sort again in Python, which drains every matching document before `limit` can stop it.
B. `_build_id_operator_clause` gives up on `$gt/$gte/$lt/$lte` over `_id` (mixed `_id` types
   could compare wrongly in SQL), so any filter holding one falls back to Python. ObjectId
   operands are safe: the `_id` column holds an ObjectId as its 24 lowercase hex characters, whose
   text order is ObjectId order. The SQL keeps MongoDB's type bracketing by matching only rows
   whose stored `_id` is an ObjectId; any other operand keeps the original behaviour.

Both reach into neosqlite's internals, so they apply only to the exact version they were written
and tested against; with any other the stand-in runs unpatched (correct, only slower).
"""

import logging
import sys
from importlib import metadata
from typing import Any

logger = logging.getLogger(__name__)

WRITTEN_FOR = "1.17.2"
_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_PATCHED = "__cabinet_patched__"


def installed_version() -> str | None:
    try:
        return metadata.version("neosqlite")
    except metadata.PackageNotFoundError:
        return None


def apply() -> bool:
    """Applies both fixes if neosqlite is the version they were written for; whether it did."""
    version = installed_version()
    if version != WRITTEN_FOR:
        logger.warning("neosqlite %s is not %s: keyset fixes not applied", version, WRITTEN_FOR)
        return False
    try:
        from bson import ObjectId as BsonObjectId
        from neosqlite.collection.cursor import Cursor
        from neosqlite.collection.query_helper._sql_query_builder import SqlQueryBuilderMixin
        from neosqlite.objectid import ObjectId as NeoObjectId

        fallback = Cursor._handle_python_fallback
        SqlQueryBuilderMixin._build_id_operator_clause  # noqa: B018 - must exist
    except (ImportError, AttributeError) as error:
        logger.warning("neosqlite internals moved (%s): keyset fixes not applied", error)
        return False
    if getattr(fallback, _PATCHED, False):
        return True
    _fix_fallback_sort(Cursor)
    # Filters arrive from the wire with neosqlite ObjectIds (find) or still as bson ones
    # (aggregate's $match, which nx-27017 passes through unconverted).
    _fix_id_ranges(SqlQueryBuilderMixin, (NeoObjectId, BsonObjectId))
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


def main() -> None:
    """Applies the fixes, then runs nx-27017's own command line with this one's arguments."""
    apply()
    from nx_27017.nx_27017 import main as serve

    sys.exit(serve())


if __name__ == "__main__":
    main()
