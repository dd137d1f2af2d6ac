"""Reading import bodies record by record: NDJSON lines and JSON array items.

Each reader takes the body as an async stream of byte chunks and yields `Record`s numbered as in
the file, holding at most one record in memory at a time. CSV rows are read by `api.csv_records`
on the same line splitter and the same `Record`s.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import ijson

# MongoDB stores documents of at most 16 MiB; a longer record could never be written anyway.
MAX_RECORD_BYTES = 16 * 1024 * 1024


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
        if isinstance(value, dict):
            yield Record(line, value)
        else:
            yield Record(line, error="The record is not a JSON object")


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


async def json_records(chunks: AsyncIterator[bytes]) -> AsyncIterator[Record]:
    reader = _ChunkReader(chunks)
    if await reader.first_significant_byte() != b"[":
        raise BodyRefused("The body should be a JSON array of objects")
    position = 0
    try:
        async for item in ijson.items_async(reader, "item", use_float=True):
            reader.since_item = 0
            position += 1
            if isinstance(item, dict):
                yield Record(position, item)
            else:
                yield Record(position, error="The record is not a JSON object")
    except _ItemTooLarge:
        raise ReadingStopped(
            position + 1, f"A record is larger than {MAX_RECORD_BYTES} bytes"
        ) from None
    except ijson.JSONError as error:
        reason = str(error).splitlines()[0] if str(error) else "malformed JSON"
        raise ReadingStopped(position + 1, f"The JSON array is malformed here: {reason}") from None
