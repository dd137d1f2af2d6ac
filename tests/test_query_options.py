import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.fields import SYSTEM_FIELDS, FieldSpec
from api.query_options import QueryOptionError, parse_fields, parse_sort


def spec(*types: str, **options: Any) -> FieldSpec:
    return FieldSpec(frozenset(types), **options)


FIELDS: dict[str, FieldSpec] = {
    "title": spec("string"),
    "year": spec("integer"),
    "rating": spec("number", "null"),
    "tags": spec("array", items=spec("string")),
    "author": spec("object"),
    "author.name": spec("string"),
    "author.born": spec("integer"),
    "secret": spec("string", write_only=True),
    **SYSTEM_FIELDS,
}


# parse_sort


def test_sort_string_is_split_on_commas_with_directions() -> None:
    assert parse_sort("-year, title ,+rating", FIELDS) == [
        ("year", -1),
        ("title", 1),
        ("rating", 1),
    ]


def test_sort_list_is_accepted() -> None:
    assert parse_sort(["-_created", "author.name"], FIELDS) == [
        ("_created", -1),
        ("author.name", 1),
    ]


@pytest.mark.parametrize("empty", [None, "", "  ", []])
def test_empty_sort_is_no_sort(empty: Any) -> None:
    assert parse_sort(empty, FIELDS) == []


def test_sort_on_unknown_field_is_refused() -> None:
    with pytest.raises(QueryOptionError, match=r"^sort: unknown field 'colour'$"):
        parse_sort("colour", FIELDS)


def test_sort_on_write_only_field_looks_unknown() -> None:
    with pytest.raises(QueryOptionError, match=r"^sort: unknown field 'secret'$"):
        parse_sort("-secret", FIELDS)


def test_sort_on_write_only_field_is_allowed_for_admins() -> None:
    assert parse_sort("-secret", FIELDS, allow_write_only=True) == [("secret", -1)]


@pytest.mark.parametrize("key", ["tags", "author"])
def test_sort_on_array_or_object_field_is_refused(key: str) -> None:
    with pytest.raises(QueryOptionError, match=f"^sort: field '{key}' is not sortable$"):
        parse_sort(key, FIELDS)


def test_duplicate_sort_key_is_refused_whatever_the_direction() -> None:
    with pytest.raises(QueryOptionError, match="duplicate key 'year'"):
        parse_sort("year,-year", FIELDS)


def test_sort_key_count_is_capped_at_8() -> None:
    eight = ["title", "year", "rating", "_id", "_created", "_updated", "_version", "_owner"]
    assert len(parse_sort(eight, FIELDS)) == 8
    with pytest.raises(QueryOptionError, match="at most 8 keys"):
        parse_sort([*eight, "author.name"], FIELDS)


def test_empty_sort_entry_is_refused() -> None:
    with pytest.raises(QueryOptionError, match="sort: empty key"):
        parse_sort("year,,title", FIELDS)


def test_double_sign_is_an_unknown_field() -> None:
    with pytest.raises(QueryOptionError, match="unknown field '-year'"):
        parse_sort("--year", FIELDS)


@pytest.mark.parametrize("bad", [3, ["year", 3], {"year": 1}])
def test_sort_of_wrong_shape_is_refused(bad: Any) -> None:
    with pytest.raises(QueryOptionError, match="sort: expected"):
        parse_sort(bad, FIELDS)


# parse_fields


def test_fields_string_is_split_in_order() -> None:
    assert parse_fields("year, title", FIELDS) == ["year", "title"]


@pytest.mark.parametrize("empty", [None, "", []])
def test_no_fields_means_whole_documents(empty: Any) -> None:
    assert parse_fields(empty, FIELDS) is None


def test_duplicate_fields_are_removed_keeping_order() -> None:
    assert parse_fields(["title", "year", "title"], FIELDS) == ["title", "year"]


def test_fields_accept_array_and_object_fields() -> None:
    assert parse_fields("tags,author", FIELDS) == ["tags", "author"]


def test_sub_path_of_a_requested_field_is_dropped() -> None:
    assert parse_fields("author.name,author,year", FIELDS) == ["author", "year"]


def test_unknown_field_in_projection_is_refused() -> None:
    with pytest.raises(QueryOptionError, match=r"^fields: unknown field 'colour'$"):
        parse_fields("title,colour", FIELDS)


def test_write_only_field_in_projection_looks_unknown() -> None:
    with pytest.raises(QueryOptionError, match=r"^fields: unknown field 'secret'$"):
        parse_fields("secret", FIELDS)
    assert parse_fields("secret", FIELDS, allow_write_only=True) == ["secret"]


def test_projection_is_capped_at_100_distinct_fields() -> None:
    many = {f"f{i}": spec("string") for i in range(101)}
    assert parse_fields([f"f{i}" for i in range(100)] * 2, many) is not None
    with pytest.raises(QueryOptionError, match="at most 100 fields"):
        parse_fields(list(many), many)


def test_fields_of_wrong_shape_are_refused() -> None:
    with pytest.raises(QueryOptionError, match="fields: expected"):
        parse_fields(["title", None], FIELDS)  # type: ignore[list-item]


@given(st.one_of(st.none(), st.text(max_size=30), st.lists(st.text(max_size=8), max_size=12)))
def test_options_only_ever_raise_query_option_errors(value: Any) -> None:
    for parse in (parse_sort, parse_fields):
        with contextlib.suppress(QueryOptionError):
            parse(value, FIELDS)
