"""Converting CSV cells by the schema's types."""

import pytest

from api.csv_records import convert_cell


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
