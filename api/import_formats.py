"""Reading import bodies record by record: NDJSON lines and JSON array items.

Each reader takes the body as an async stream of byte chunks and yields `Record`s numbered as in
the file, holding at most one record in memory at a time. CSV rows are read by `api.csv_records`
on the same line splitter and the same `Record`s.
"""

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import ijson
from ijson.common import ObjectBuilder

from api.value_checks import MAX_VALUE_DEPTH

# MongoDB stores documents of at most 16 MiB; a longer record could never be written anyway.
MAX_RECORD_BYTES = 16 * 1024 * 1024
_OPENING = frozenset({"start_map", "start_array"})
_CLOSING = frozenset({"end_map", "end_array"})
_PIECE_BYTES = 64 * 1024  # as much of the body as the parser is handed at once


@dataclass(frozen=True, slots=True)
class Record:
    """One record: its line (or, in a JSON array, its position) and either a value or an error."""

    line: int
    value: dict[str, Any] | None = None
    error: str | None = None


class BodyRefused(Exception):
    """The whole body is unusable (a bad CSV header, not a JSON array): nothing is imported."""


class ReadingStopped(Exception):
    """The body breaks off in a way no later record can be read after (malformed JSON array)."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line = line
        self.detail = detail


async def physical_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes | None]:
    """The body's lines without their `\\n`; None stands for a line too long to keep."""
    pieces: list[bytes] = []
    size = 0
    skipping = False
    async for chunk in chunks:
        parts = chunk.split(b"\n")
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if not skipping:
                pieces.append(part)
                size += len(part)
                if size > MAX_RECORD_BYTES:
                    pieces, size, skipping = [], 0, True
            if last:
                break
            if skipping:
                skipping = False
                yield None
            else:
                yield b"".join(pieces)
            pieces, size = [], 0
    if skipping:
        yield None
    elif size:
        yield b"".join(pieces)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json(text: str) -> Any:
    return _DECODER.decode(text)


async def ndjson_records(chunks: AsyncIterator[bytes]) -> AsyncIterator[Record]:
    line = 0
    async for raw in physical_lines(chunks):
        line += 1
        if raw is None:
            yield Record(line, error=f"The line is longer than {MAX_RECORD_BYTES} bytes")
            continue
        if not raw.strip():
            continue
        try:
            value = parse_json(raw.decode("utf-8").removeprefix("\ufeff"))
        except UnicodeDecodeError:
            yield Record(line, error="The line is not valid UTF-8")
            continue
        except (ValueError, RecursionError):
            yield Record(line, error="The line is not valid JSON")
            continue
        if not isinstance(value, dict):
            yield Record(line, error="The record is not a JSON object")
        elif b"\\u" in raw and _unpaired_surrogate(value):  # only an escape can make one
            yield Record(line, error="The record holds text with an unpaired surrogate")
        else:
            yield Record(line, value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unpaired_surrogate(value: object) -> bool:
    """Whether a string in `value` (a key too) holds a surrogate that no pair consumed: valid
    JSON escapes, yet no text BSON can store."""
    stack = [value]
    while stack:  # not recursive: the parser allows deeper nesting than a recursion would
        current = stack.pop()
        if isinstance(current, str):
            if _SURROGATE.search(current) is not None:
                return True
        elif isinstance(current, dict):
            stack.extend(current)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


class _ItemTooLarge(Exception):
    pass


class _ChunkReader:
    """A file-like view of the chunk stream, as ijson reads it."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        # Bytes handed to the parser since the last whole item: ijson builds each item in
        # memory, so one item may not grow past a record's limit.
        self.since_item = 0

    async def _fill(self) -> bool:
        while not self._buffer:
            try:
                self._buffer = await anext(self._chunks)
            except StopAsyncIteration:
                return False
        return True

    async def first_significant_byte(self) -> bytes:
        while await self._fill():
            self._buffer = self._buffer.lstrip()
            if self._buffer:
                return self._buffer[:1]
        return b""

    async def read(self, size: int = -1) -> bytes:
        if size == 0 or not await self._fill():
            return b""
        if size < 0:
            size = len(self._buffer)
        piece, self._buffer = self._buffer[:size], self._buffer[size:]
        self.since_item += len(piece)
        if self.since_item > MAX_RECORD_BYTES:
            raise _ItemTooLarge
        return piece


class _NestedTooDeeply(Exception):
    pass


class _Events(list[tuple[str, Any]]):
    """Where the parser pushes its events, as it meets them."""

    def send(self, event: tuple[str, Any]) -> None:
        self.append(event)


async def _array_items(reader: _ChunkReader) -> AsyncIterator[Any]:
    """The items of the top-level array, built from the parser's events with their depth
    bounded: ijson's own item builder takes memory that grows with the square of an item's
    depth, and a few hundred kilobytes of brackets would exhaust the machine's.

    The parser is pushed a piece at a time and hands over the events it met before any error,
    so every whole item ahead of a syntax error is read, wherever in its piece the error is.
    """
    events = _Events()
    parser = ijson.basic_parse_coro(events, use_float=True)
    depth, builder, more = 0, None, True
    while more:
        piece = await reader.read(_PIECE_BYTES)
        failure = None
        try:
            if piece:
                parser.send(piece)
            else:
                more = False
                parser.close()  # a body that ends inside the array is an error here
        except ijson.JSONError as error:
            failure = error
        for event, value in events:
            if event in _CLOSING:
                depth -= 1
            if depth >= 1:  # within the top-level array: this event is part of an item
                if builder is None:
                    builder = ObjectBuilder()
                builder.event(event, value)
                if depth == 1 and event not in _OPENING:  # a scalar item or an item's last event
                    yield builder.value
                    builder = None
            if event in _OPENING:
                depth += 1
                if depth > MAX_VALUE_DEPTH + 1:  # the array itself is one level
                    raise _NestedTooDeeply
        events.clear()
        if failure is not None:
            raise failure


async def json_records(chunks: AsyncIterator[bytes]) -> AsyncIterator[Record]:
    reader = _ChunkReader(chunks)
    if await reader.first_significant_byte() != b"[":
        raise BodyRefused("The body should be a JSON array of objects")
    position = 0
    try:
        async for item in _array_items(reader):
            reader.since_item = 0
            position += 1
            if isinstance(item, dict):
                yield Record(position, item)
            else:
                yield Record(position, error="The record is not a JSON object")
    except _NestedTooDeeply:
        raise ReadingStopped(
            position + 1, f"A record nests more than {MAX_VALUE_DEPTH} levels deep"
        ) from None
    except _ItemTooLarge:
        raise ReadingStopped(
            position + 1, f"A record is larger than {MAX_RECORD_BYTES} bytes"
        ) from None
    except ijson.JSONError as error:
        reason = str(error).splitlines()[0] if str(error) else "malformed JSON"
        raise ReadingStopped(position + 1, f"The JSON array is malformed here: {reason}") from None
