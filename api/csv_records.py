"""Reading a CSV import body: the header planned against the schema, each row a typed record.

Cells are text, so each is converted to the JSON type its field's schema calls for; a row whose
quoted cells span several lines is read whole, still one record at a time.
"""

import csv
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from api.import_formats import (
    MAX_RECORD_BYTES,
    BodyRefused,
    ReadingStopped,
    Record,
    parse_json,
    physical_lines,
)

SYSTEM_COLUMNS = frozenset({"_id", "_owner", "_created", "_updated", "_version"})
# Far above any exported header (a schema declares at most 500 properties), yet a header can
# never make the column plan itself a long job.
MAX_COLUMNS = 1000
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_SHOWN_CHARACTERS = 40

# Whether a line ends a row, read as the csv module reads it: a quote opens a quoted cell only as
# the cell's first character (in `TV 5" screen` it is plain text), inside one "" is a quote, and
# whatever follows the closing quote up to the comma stays in the cell. A line that does not match
# in full leaves a quoted cell open. The possessive quantifiers keep a failed match linear.
_QUOTED_REST = r'[^"]*+(?:""[^"]*+)*+"[^,]*+'
_CELL = rf'(?:"{_QUOTED_REST}|(?!")[^,]*+)'
_ENDS_ROW = re.compile(rf"{_CELL}(?:,{_CELL})*+")
_ENDS_QUOTED_CELL_AND_ROW = re.compile(rf"{_QUOTED_REST}(?:,{_CELL})*+")


def _shown(text: str) -> str:
    return json.dumps(text[:_SHOWN_CHARACTERS] + ("…" if len(text) > _SHOWN_CHARACTERS else ""))


@dataclass(frozen=True, slots=True)
class Column:
    """A CSV column: where its cells go in the record, and the JSON types they convert to.

    `types` is None for system columns and for columns an open object admits without a schema:
    their cells stay strings.
    """

    name: str
    path: tuple[str, ...]
    types: frozenset[str] | None


def _types(node: dict) -> frozenset[str]:
    raw = node.get("type", ())
    return frozenset([raw] if isinstance(raw, str) else raw)


class _Unknown(Exception):
    pass


def _column_types(path: tuple[str, ...], schema: dict) -> frozenset[str] | None:
    """The types of the field a column path names (None inside an open object), or _Unknown."""
    node = schema
    for part in path:
        if "object" not in _types(node):
            raise _Unknown
        properties = node.get("properties", {})
        if part not in properties:
            if node.get("additionalProperties") is True:
                return None  # an open object takes any name; such cells stay text
            raise _Unknown
        node = properties[part]
    return _types(node)


def plan_columns(header: list[str], schema: dict, line: int) -> list[Column]:
    """The columns of a header row, or BodyRefused naming one the schema has no room for."""
    if len(header) > MAX_COLUMNS:
        raise BodyRefused(
            f"line {line}: the header has {len(header)} columns; at most {MAX_COLUMNS} are allowed"
        )
    columns: list[Column] = []
    for name in header:
        if name in SYSTEM_COLUMNS:
            columns.append(Column(name, (name,), None))
            continue
        path = tuple(name.split("."))
        try:
            types = _column_types(path, schema)
        except _Unknown:
            raise BodyRefused(f"line {line}: unknown column {json.dumps(name)}") from None
        columns.append(Column(name, path, types))
    # Sorted, a path comes right before its duplicates and the paths it is a prefix of, so
    # comparing neighbours finds every clash without comparing every pair of columns.
    ordered = sorted(columns, key=lambda column: column.path)
    for first, second in itertools.pairwise(ordered):
        if second.path[: len(first.path)] == first.path:
            raise BodyRefused(
                f"line {line}: columns {json.dumps(first.name)} and "
                f"{json.dumps(second.name)} both set the same field"
            )
    return columns


def convert_cell(text: str, types: frozenset[str]) -> Any:
    """A cell as the JSON value the field's types call for; ValueError if it fits none of them.

    1 and 0 are booleans only in a field that takes no numbers, so an exported integer comes
    back an integer.
    """
    lowered = text.lower()
    numeric = bool(types & {"integer", "number"})
    if "boolean" in types and lowered in _BOOLEANS and not (numeric and lowered in ("1", "0")):
        return _BOOLEANS[lowered]
    # Past 19 digits no integer fits BSON's 64 bits; and int() of one past 4,300 would fail
    # with Python's own message. Either is left to the checks below and the schema's.
    if types & {"integer", "number"} and len(text) <= 20 and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in types and _NUMBER.fullmatch(text):
        number = float(text)
        if number not in (float("inf"), float("-inf")):
            return number
    if types & {"array", "object"} and text.lstrip()[:1] in ("[", "{"):
        try:
            value = parse_json(text)
        except (ValueError, RecursionError):
            value = None
        if ("array" in types and isinstance(value, list)) or (
            "object" in types and isinstance(value, dict)
        ):
            return value
    if "string" in types:
        return text
    if "null" in types and text == "null":
        return None
    wanted = " or ".join(_KIND_NAMES[kind] for kind in sorted(types) if kind in _KIND_NAMES)
    raise ValueError(f"{_shown(text)} is not {wanted or 'a value this field takes'}")


_KIND_NAMES = {
    "array": "a JSON array",
    "boolean": "a boolean (true/false/1/0)",
    "integer": "an integer",
    "null": "null",
    "number": "a number",
    "object": "a JSON object",
    "string": "a string",
}


def _row_record(line: int, cells: list[str], columns: list[Column]) -> Record:
    if len(cells) != len(columns):
        return Record(line, error=f"The row has {len(cells)} cells; the header has {len(columns)}")
    record: dict[str, Any] = {}
    problems: list[str] = []
    for column, text in zip(columns, cells, strict=True):
        if text == "":
            continue  # an empty cell is an absent field
        value: Any = text
        if column.types is not None:
            try:
                value = convert_cell(text, column.types)
            except ValueError as error:
                problems.append(f"column {json.dumps(column.name)}: {error}")
                continue
        target = record
        for part in column.path[:-1]:
            target = target.setdefault(part, {})
        target[column.path[-1]] = value
    if problems:
        return Record(line, error="; ".join(problems))
    return Record(line, record)


async def csv_records(chunks: AsyncIterator[bytes], schema: dict) -> AsyncIterator[Record]:
    """Rows as records; a row whose quoted cells span several lines is numbered by its first."""
    columns: list[Column] | None = None
    line = start = size = 0
    pending: list[str] = []
    async for raw in physical_lines(chunks):
        line += 1
        if raw is None:
            raise ReadingStopped(line, f"The row is longer than {MAX_RECORD_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ReadingStopped(line, "The line is not valid UTF-8") from None
        if line == 1:
            text = text.removeprefix("\ufeff")
        if not pending:
            if not text.strip():
                continue
            start = line
        ends_row = _ENDS_QUOTED_CELL_AND_ROW if pending else _ENDS_ROW
        pending.append(text)
        size += len(raw)
        if ends_row.fullmatch(text) is None:
            if size > MAX_RECORD_BYTES:
                raise ReadingStopped(start, f"The row is longer than {MAX_RECORD_BYTES} bytes")
            continue
        record_text = "\n".join(pending)
        pending, size = [], 0
        try:
            # Given as one line, the row is one record: a line break outside quotes (a lone
            # carriage return) is an error here, where a file reader would start another record.
            cells = next(csv.reader([record_text], strict=True))
        except csv.Error as error:
            if columns is None:
                raise BodyRefused(f"line {start}: the header row is not valid CSV") from None
            yield Record(start, error=f"The row is not valid CSV: {error}")
            continue
        if columns is None:
            columns = plan_columns(cells, schema, start)
            continue
        yield _row_record(start, cells, columns)
    if pending:
        raise ReadingStopped(start, "The row has an unterminated quoted cell")
    if columns is None:
        raise BodyRefused("line 1: the CSV body has no header row")
