"""Reading CSV import bodies: the header planned against the schema, rows as the csv module reads
them, cells converted by the schema's types."""

from collections.abc import AsyncIterator

import pytest

from api.csv_records import convert_cell, csv_records, plan_columns
from api.import_formats import BodyRefused, ReadingStopped, Record

GEAR = {"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}}}
OPEN = {
    "type": "object",
    "additionalProperties": True,
    "properties": {"n": {"type": "integer"}},
}


async def read(body: bytes, schema: dict = GEAR) -> list[Record]:
    async def chunks() -> AsyncIterator[bytes]:
        yield body

    return [record async for record in csv_records(chunks(), schema)]


def test_one_and_zero_are_numbers_where_the_field_takes_numbers() -> None:
    assert convert_cell("1", frozenset({"boolean", "integer"})) == 1
    assert convert_cell("1", frozenset({"boolean", "integer"})) is not True
    assert convert_cell("0", frozenset({"boolean", "number"})) == 0


def test_one_and_zero_are_booleans_in_a_boolean_field() -> None:
    assert convert_cell("1", frozenset({"boolean"})) is True
    assert convert_cell("FALSE", frozenset({"boolean", "integer"})) is False


def test_a_cell_that_fits_no_type_is_refused() -> None:
    with pytest.raises(ValueError, match="is not an integer"):
        convert_cell("x", frozenset({"integer"}))


def test_an_integer_cell_of_thousands_of_digits_is_refused_in_the_services_words() -> None:
    digits = "9" * 5000
    with pytest.raises(ValueError, match="is not an integer") as refused:
        convert_cell(digits, frozenset({"integer"}))
    assert "sys." not in str(refused.value)
    assert convert_cell("-9223372036854775808", frozenset({"integer"})) == -(2**63)
    assert convert_cell("1" + "0" * 30, frozenset({"number"})) == 1e30


async def test_a_header_wider_than_the_column_limit_refuses_the_body() -> None:
    header = ",".join(f"c{index}" for index in range(1001))
    with pytest.raises(BodyRefused) as refused:
        await read(f"{header}\nx\n".encode(), OPEN)
    assert str(refused.value) == "line 1: the header has 1001 columns; at most 1000 are allowed"


def test_a_header_at_the_column_limit_is_planned() -> None:
    header = ["n", "_id", *(f"c{index}" for index in range(997)), "extra.deep.field"]
    columns = plan_columns(header, OPEN, 1)
    assert [column.name for column in columns] == header
    assert (columns[0].path, columns[0].types) == (("n",), frozenset({"integer"}))
    assert (columns[1].path, columns[1].types) == (("_id",), None)
    assert (columns[-1].path, columns[-1].types) == (("extra", "deep", "field"), None)


@pytest.mark.parametrize(
    ("header", "first", "second"),
    [
        (["a.b", "x", "a"], "a", "a.b"),
        (["x", "y", "x"], "x", "x"),
        (["a.b", "a.b!", "a.bc", "a.b.c"], "a.b", "a.b.c"),
        (["_id", "n", "_id"], "_id", "_id"),
    ],
)
def test_columns_that_set_the_same_field_refuse_the_body(
    header: list[str], first: str, second: str
) -> None:
    with pytest.raises(BodyRefused) as refused:
        plan_columns(header, OPEN, 1)
    assert str(refused.value) == f'line 1: columns "{first}" and "{second}" both set the same field'


def test_columns_whose_names_share_only_a_prefix_are_planned() -> None:
    header = ["a.b", "a.bc", "ab", "a.b!"]
    assert [column.path for column in plan_columns(header, OPEN, 1)] == [
        ("a", "b"),
        ("a", "bc"),
        ("ab",),
        ("a", "b!"),
    ]


async def test_a_stray_quote_in_an_unquoted_cell_is_plain_text() -> None:
    body = b'title,n\nTV 5" screen,1\na,2\nb,3\nRadio 7" dial,4\nc,5\n'
    assert await read(body) == [
        Record(2, {"title": 'TV 5" screen', "n": 1}),
        Record(3, {"title": "a", "n": 2}),
        Record(4, {"title": "b", "n": 3}),
        Record(5, {"title": 'Radio 7" dial', "n": 4}),
        Record(6, {"title": "c", "n": 5}),
    ]


async def test_a_stray_quote_does_not_run_on_to_the_end_of_the_body() -> None:
    assert await read(b'title,n\nTV 5" screen,1\na,2\n') == [
        Record(2, {"title": 'TV 5" screen', "n": 1}),
        Record(3, {"title": "a", "n": 2}),
    ]


async def test_quoted_cells_span_lines_around_stray_quotes() -> None:
    body = b'title,n\r\nTV 5" screen,1\r\n"two\r\n""quoted"" lines",2\r\n"a ""b""",3\r\n'
    assert await read(body) == [
        Record(2, {"title": 'TV 5" screen', "n": 1}),
        Record(3, {"title": 'two\r\n"quoted" lines', "n": 2}),
        Record(5, {"title": 'a "b"', "n": 3}),
    ]


async def test_a_carriage_return_inside_a_row_fails_the_row_rather_than_hiding_one() -> None:
    [broken, last] = await read(b"title,n\na,1\rb,2\nc,3\n")
    assert broken.line == 2
    assert broken.error is not None
    assert broken.error.startswith("The row is not valid CSV: new-line character seen")
    assert last == Record(3, {"title": "c", "n": 3})


async def test_an_unterminated_quoted_cell_stops_reading_at_its_row() -> None:
    with pytest.raises(ReadingStopped) as stopped:
        await read(b'title,n\na,1\n"open,2\nb,3\n')
    assert (stopped.value.line, stopped.value.detail) == (
        3,
        "The row has an unterminated quoted cell",
    )
