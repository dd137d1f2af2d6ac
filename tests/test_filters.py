from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.fields import SYSTEM_FIELDS, FieldSpec
from api.filters import ALLOWED_OPERATORS, LOGICAL_OPERATORS, FilterError, check_filter


def spec(*types: str, **options: Any) -> FieldSpec:
    return FieldSpec(frozenset(types), **options)


FIELDS: dict[str, FieldSpec] = {
    "title": spec("string"),
    "year": spec("integer"),
    "rating": spec("number"),
    "published": spec("boolean"),
    "subtitle": spec("string", "null"),
    "released_at": spec("string", format="date-time"),
    "tags": spec("array", items=spec("string")),
    "editions": spec("array", items=spec("object")),
    "editions.isbn": spec("string"),
    "editions.pages": spec("integer"),
    "author": spec("object"),
    "author.name": spec("string"),
    "author.born": spec("integer"),
    "secret": spec("string", write_only=True),
    **SYSTEM_FIELDS,
}
OID = "65a1b2c3d4e5f60718293a4b"


def refused(filter: object, match: str, **options: Any) -> None:
    with pytest.raises(FilterError, match=match):
        check_filter(filter, FIELDS, **options)


# Shape and operators


def test_empty_filter_matches_all() -> None:
    assert check_filter({}, FIELDS) == {}


def test_top_level_must_be_an_object() -> None:
    refused([{"title": "x"}], "filter: expected a JSON object")
    refused("title", "filter: expected a JSON object")


def test_where_operator_is_refused() -> None:
    refused({"$where": "sleep(1000)"}, r"^filter: operator \$where is not allowed$")


@pytest.mark.parametrize("op", ["$expr", "$function", "$text", "$jsonSchema", "$comment"])
def test_forbidden_top_level_operators_are_named(op: str) -> None:
    refused({op: {}}, rf"operator \{op} is not allowed")


@pytest.mark.parametrize("op", ["$type", "$mod", "$where", "$function"])
def test_forbidden_field_operator_is_named_with_its_location(op: str) -> None:
    refused(
        {"$or": [{"year": 1}, {"year": {op: 2}}]},
        rf"^filter\.\$or\[1\]\.year: operator \{op} is not allowed$",
    )


def test_forbidden_operator_inside_not_is_refused() -> None:
    refused({"year": {"$not": {"$where": "1"}}}, r"operator \$where is not allowed")


def test_field_operator_at_filter_level_is_refused() -> None:
    refused({"$eq": 1}, r"operator \$eq must be applied to a field")


def test_logical_operator_inside_field_is_refused() -> None:
    refused({"year": {"$or": [{"$gt": 1}]}}, r"\$or is only allowed at filter level")


def test_logical_operators_take_lists_of_filters() -> None:
    result = check_filter({"$or": [{"year": 1}, {"$nor": [{"title": "a"}]}]}, FIELDS)
    assert result == {"$or": [{"year": 1}, {"$nor": [{"title": "a"}]}]}


def test_empty_or_is_refused() -> None:
    refused({"$or": []}, r"filter\.\$or: expected a list of 1 to 100 filters")


def test_and_branch_must_be_an_object() -> None:
    refused({"$and": [{"year": 1}, 3]}, r"filter\.\$and\[1\]: expected an object")


def test_more_than_100_branches_are_refused() -> None:
    refused({"$or": [{"year": i} for i in range(101)]}, "1 to 100 filters")


# Field paths


def test_unknown_field_is_refused() -> None:
    refused({"colour": "red"}, r"^filter\.colour: unknown field 'colour'$")


def test_write_only_field_looks_unknown() -> None:
    with pytest.raises(FilterError) as hidden:
        check_filter({"secret": "x"}, FIELDS)
    with pytest.raises(FilterError) as missing:
        check_filter({"nothing": "x"}, FIELDS)
    assert str(hidden.value) == "filter.secret: unknown field 'secret'"
    assert str(missing.value).replace("nothing", "secret") == str(hidden.value)


def test_write_only_field_is_filterable_when_allowed() -> None:
    assert check_filter({"secret": "x"}, FIELDS, allow_write_only=True) == {"secret": "x"}


def test_array_index_path_is_refused() -> None:
    refused({"tags.0": "x"}, "array indexes")


def test_empty_path_segment_is_refused() -> None:
    refused({"author..name": "x"}, "empty parts")


def test_dotted_path_into_nested_object_is_accepted() -> None:
    assert check_filter({"author.name": "Le Guin"}, FIELDS) == {"author.name": "Le Guin"}


def test_sub_document_equality_is_refused() -> None:
    refused({"author": {"name": "x"}}, "sub-document equality is not supported")


def test_mixed_operator_and_plain_keys_are_refused() -> None:
    refused({"year": {"$gt": 1, "born": 2}}, "sub-document equality is not supported")


def test_empty_object_value_is_refused() -> None:
    refused({"author": {}}, "sub-document equality is not supported")


# Value types


def test_string_is_not_an_integer_value() -> None:
    refused({"year": "1999"}, r"^filter\.year: expected integer, got string$")


def test_bool_is_not_an_integer_value() -> None:
    refused({"year": True}, "expected integer, got boolean")


def test_bool_is_not_a_number_value() -> None:
    refused({"rating": False}, "expected number, got boolean")


def test_integral_float_fits_an_integer_field() -> None:
    assert check_filter({"year": 1999.0}, FIELDS) == {"year": 1999.0}


def test_fractional_float_does_not_fit_an_integer_field() -> None:
    refused({"year": 1999.5}, "expected integer, got number")


def test_integer_fits_a_number_field() -> None:
    assert check_filter({"rating": 4}, FIELDS) == {"rating": 4}


def test_null_needs_a_nullable_field() -> None:
    assert check_filter({"subtitle": None}, FIELDS) == {"subtitle": None}
    refused({"title": None}, "expected string, got null")


def test_boolean_field_takes_booleans() -> None:
    assert check_filter({"published": {"$ne": True}}, FIELDS) == {"published": {"$ne": True}}


def test_object_id_value_is_converted() -> None:
    result = check_filter({"_id": {"$in": [OID]}}, FIELDS)
    assert result == {"_id": {"$in": [ObjectId(OID)]}}
    assert isinstance(result["_id"]["$in"][0], ObjectId)


@pytest.mark.parametrize("bad", ["65a1b2c3d4e5f60718293a4", OID + "\n", "z" * 24, 12])
def test_malformed_object_id_is_refused(bad: object) -> None:
    refused({"_id": bad}, "filter._id: expected")


def test_system_datetime_value_is_converted_to_utc() -> None:
    result = check_filter({"_created": {"$gte": "2024-03-01T12:00:00+02:00"}}, FIELDS)
    assert result == {"_created": {"$gte": datetime(2024, 3, 1, 10, 0, tzinfo=UTC)}}
    assert result["_created"]["$gte"].utcoffset().total_seconds() == 0


def test_date_time_string_field_value_is_converted() -> None:
    result = check_filter({"released_at": {"$lt": "2020-01-02T03:04:05.123456789Z"}}, FIELDS)
    assert result == {"released_at": {"$lt": datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)}}


@pytest.mark.parametrize(
    "bad", ["2024-03-01", "2024-03-01T12:00:00", "2024-13-01T00:00:00Z", "yesterday"]
)
def test_date_time_without_offset_or_invalid_is_refused(bad: str) -> None:
    refused({"_updated": bad}, "RFC 3339")


def test_date_time_overflowing_utc_is_refused() -> None:
    refused({"released_at": "0001-01-01T00:00:00+01:00"}, "RFC 3339")


def test_array_field_scalar_must_fit_the_item_type() -> None:
    assert check_filter({"tags": "sf"}, FIELDS) == {"tags": "sf"}
    refused({"tags": 3}, "expected string, got integer")


def test_array_field_list_is_an_exact_match_of_items() -> None:
    assert check_filter({"tags": ["a", "b"]}, FIELDS) == {"tags": ["a", "b"]}
    refused({"tags": ["a", 2]}, r"filter\.tags\[1\]: expected string, got integer")


def test_document_inside_a_list_value_is_refused() -> None:
    refused({"tags": [{"$where": "1"}]}, r"filter\.tags\[0\]: sub-document equality")
    refused({"year": {"$in": [{"$gt": 1}]}}, r"filter\.year\.\$in\[0\]: sub-document equality")


def test_list_does_not_fit_a_scalar_field() -> None:
    refused({"year": [1999]}, "expected integer, got array")


def test_output_is_a_fresh_copy() -> None:
    source = {"$or": [{"tags": {"$in": [["a"], "b"]}}]}
    result = check_filter(source, FIELDS)
    assert result == source
    assert result is not source
    assert result["$or"] is not source["$or"]
    assert result["$or"][0]["tags"]["$in"][0] is not source["$or"][0]["tags"]["$in"][0]


# Operators


def test_range_operator_takes_a_value_of_the_field_type() -> None:
    assert check_filter({"year": {"$gt": 1990, "$lte": 2000}}, FIELDS) == {
        "year": {"$gt": 1990, "$lte": 2000}
    }
    refused({"year": {"$gt": "1990"}}, r"filter\.year\.\$gt: expected integer")


def test_range_operator_refuses_null() -> None:
    refused({"subtitle": {"$gt": None}}, "expected a single non-null value")


def test_in_operator_checks_every_value() -> None:
    assert check_filter({"year": {"$nin": [1, 2]}}, FIELDS) == {"year": {"$nin": [1, 2]}}
    refused({"year": {"$in": [1, "2"]}}, r"filter\.year\.\$in\[1\]: expected integer")


def test_in_operator_needs_a_list() -> None:
    refused({"year": {"$in": 1}}, r"\$in: expected a list")


def test_in_operator_list_is_capped() -> None:
    refused({"year": {"$in": list(range(1001))}}, "at most 1000 values")


def test_all_operator_needs_an_array_field() -> None:
    assert check_filter({"tags": {"$all": ["a", "b"]}}, FIELDS) == {"tags": {"$all": ["a", "b"]}}
    refused({"title": {"$all": ["a"]}}, "only array fields")
    refused({"tags": {"$all": [1]}}, "expected string, got integer")


def test_size_operator_takes_a_non_negative_integer_on_arrays() -> None:
    assert check_filter({"tags": {"$size": 2}}, FIELDS) == {"tags": {"$size": 2}}
    refused({"tags": {"$size": -1}}, "non-negative integer")
    refused({"tags": {"$size": True}}, "non-negative integer")
    refused({"year": {"$size": 1}}, "only array fields")


def test_exists_operator_is_strictly_boolean() -> None:
    assert check_filter({"author": {"$exists": False}}, FIELDS) == {"author": {"$exists": False}}
    refused({"author": {"$exists": 1}}, "expected true or false")


def test_regex_is_output_with_options() -> None:
    result = check_filter({"title": {"$regex": "^dune", "$options": "im"}}, FIELDS)
    assert result == {"title": {"$regex": "^dune", "$options": "im"}}
    assert check_filter({"tags": {"$regex": "^s"}}, FIELDS) == {
        "tags": {"$regex": "^s", "$options": ""}
    }


def test_regex_only_on_string_fields() -> None:
    refused({"year": {"$regex": "1"}}, r"filter\.year\.\$regex: only string fields")
    refused({"released_at": {"$regex": "2024"}}, "only string fields")


def test_regex_length_is_capped() -> None:
    assert check_filter({"title": {"$regex": "a" * 256}}, FIELDS)
    refused({"title": {"$regex": "a" * 257}}, "at most 256 characters")


def test_invalid_regex_is_refused() -> None:
    refused({"title": {"$regex": "(unclosed"}}, "not a valid regular expression")


@pytest.mark.parametrize("pattern", ["(a+)+", "(a|aa)*", "(.*)*", "((ab)*c)+", r"(\w+\s?){2,}"])
def test_nested_quantifier_regex_refused(pattern: str) -> None:
    refused({"title": {"$regex": pattern}}, "repeated group")


@pytest.mark.parametrize("pattern", ["a*a*a*a*a*a*a*a*b", "a+b+c+d+", "x{1,}y*z*w+", ".*.*.*.*"])
def test_more_than_three_unbounded_repetitions_are_refused(pattern: str) -> None:
    refused({"title": {"$regex": pattern}}, "at most 3 unbounded repetitions")


@pytest.mark.parametrize("pattern", ["^.*dune.*messiah.*$", "a?b?c?d?e?", "a{1,9}b{2}c{3,4}d*"])
def test_three_unbounded_repetitions_or_bounded_ones_are_accepted(pattern: str) -> None:
    assert check_filter({"title": {"$regex": pattern}}, FIELDS)["title"]["$regex"] == pattern


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?P<w>a)(?P=w)", "(a)?(?(1)b|c)"])
def test_backreference_regex_refused(pattern: str) -> None:
    refused({"title": {"$regex": pattern}}, "backreferences are not allowed")


def test_verbose_regex_flag_is_refused() -> None:
    refused({"title": {"$regex": "(?x)(a + # )\n)+"}}, "verbose flag")


@pytest.mark.parametrize(
    "pattern", ["^(?:ab)+$", "(a+)?b", r"[(]+\)*", "^[]a]+$", "(?i)dune", "a{2,3}(bc)*"]
)
def test_harmless_regex_is_accepted(pattern: str) -> None:
    assert check_filter({"title": {"$regex": pattern}}, FIELDS)["title"]["$regex"] == pattern


@pytest.mark.parametrize("options", ["x", "ii", "s", 1])
def test_regex_options_are_limited_to_i_and_m(options: object) -> None:
    refused({"title": {"$regex": "a", "$options": options}}, r"\$options: only the flags")


def test_options_without_regex_is_refused() -> None:
    refused({"title": {"$options": "i"}}, r"\$options needs \$regex")


def test_not_takes_an_operator_object() -> None:
    assert check_filter({"year": {"$not": {"$gt": 5}}}, FIELDS) == {"year": {"$not": {"$gt": 5}}}
    refused({"year": {"$not": 5}}, r"filter\.year\.\$not: expected an operator object")


def test_elem_match_on_object_items_is_a_relative_sub_filter() -> None:
    query = {"editions": {"$elemMatch": {"isbn": "978", "$or": [{"pages": {"$gt": 100}}]}}}
    assert check_filter(query, FIELDS) == query


def test_elem_match_sub_filter_refuses_unknown_sub_fields() -> None:
    refused({"editions": {"$elemMatch": {"title": "x"}}}, "unknown field 'editions.title'")


def test_elem_match_on_scalar_items_takes_an_operator_object() -> None:
    assert check_filter({"tags": {"$elemMatch": {"$in": ["a"]}}}, FIELDS) == {
        "tags": {"$elemMatch": {"$in": ["a"]}}
    }
    refused({"tags": {"$elemMatch": {"$gt": 1}}}, "expected string, got integer")
    refused({"tags": {"$elemMatch": {"x": 1}}}, "expected an operator object")


def test_elem_match_needs_an_array_field() -> None:
    refused({"title": {"$elemMatch": {"$eq": "a"}}}, "only array fields")


# Caps and hostile input


def wrapped_in_and(filter: dict[str, Any], times: int) -> dict[str, Any]:
    for _ in range(times):  # each wrap adds two levels: the $and object and its list
        filter = {"$and": [filter]}
    return filter


def test_depth_cap() -> None:
    ten_levels = wrapped_in_and({"tags": {"$in": [["a"]]}}, 3)
    eleven_levels = wrapped_in_and({"year": {"$in": [1]}}, 4)
    assert check_filter(ten_levels, FIELDS) == ten_levels
    refused(eleven_levels, "^filter is too deep")


def test_size_cap() -> None:
    refused(
        {"$or": [{"year": {"$in": list(range(900))}} for _ in range(3)]}, "^filter is too large"
    )


def test_non_json_value_is_refused() -> None:
    refused({"year": {"$in": {1, 2}}}, "a set is not a JSON value")
    refused({"year": (1,)}, "a tuple is not a JSON value")


def test_non_string_key_is_refused() -> None:
    refused({1: "x"}, "keys must be strings")


def test_long_string_is_refused() -> None:
    refused({"title": "x" * 4097}, "at most|limited to 4096")


def test_int_beyond_64_bits_is_refused() -> None:
    refused({"year": 2**63}, "64 bits")


def test_non_finite_number_is_refused() -> None:
    refused({"rating": float("nan")}, "finite")


def test_self_containing_list_is_refused_not_crashed() -> None:
    loop: list[Any] = []
    loop.append(loop)
    refused({"tags": {"$in": loop}}, "too deep")


# Properties

FORBIDDEN = ["$where", "$expr", "$function", "$type", "$mod", "$text", "$comment"]
KEYS = st.one_of(
    st.sampled_from(sorted(FIELDS)),
    st.sampled_from(sorted(ALLOWED_OPERATORS)),
    st.sampled_from([*FORBIDDEN, "isbn", "pages", "tags.0", "author..name", "nothing"]),
    st.text(max_size=6),
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from([OID, "2024-01-01T00:00:00Z", "(a+)+", "^a", "im", "x"])
    | st.text(max_size=8)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=30,
)


def assert_safe_filter(doc: dict[str, Any], base: str = "") -> None:
    for key, value in doc.items():
        if key in LOGICAL_OPERATORS:
            for branch in value:
                assert_safe_filter(branch, base)
        else:
            assert not key.startswith("$"), key
            spec = FIELDS[base + key]
            assert not spec.write_only
            assert_safe_condition(value, base + key, spec)


def assert_safe_condition(value: Any, path: str, spec: FieldSpec) -> None:
    if not isinstance(value, dict):
        assert_plain_literal(value)
        return
    for op, arg in value.items():
        assert op in ALLOWED_OPERATORS and op not in LOGICAL_OPERATORS, op
        items = spec.items
        if op == "$elemMatch" and items is not None and "object" in items.types:
            assert_safe_filter(arg, path + ".")
        elif op in ("$elemMatch", "$not"):
            assert_safe_condition(arg, path, spec)
        else:
            assert_plain_literal(arg)


def assert_plain_literal(value: Any) -> None:
    """Literals hold no documents, so nothing inside them can act as an operator."""
    assert not isinstance(value, dict), value
    if isinstance(value, list):
        for item in value:
            assert_plain_literal(item)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(JSON | st.dictionaries(KEYS, JSON, max_size=5))
@example({"secret": "x"})
@example({"tags": [{"$where": "1"}]})
@example({"author": {"$exists": True, "name": 1}})
@example({"editions": {"$elemMatch": {"secret": "x", "isbn": {"$function": {}}}}})
def test_any_input_is_refused_or_made_safe(candidate: Any) -> None:
    try:
        result = check_filter(candidate, FIELDS)
    except FilterError:
        return
    assert isinstance(result, dict)
    assert_safe_filter(result)


def values_for(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Values that mostly fit `spec`, so generated filters reach the deep checks."""
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=5) | st.just("2024-01-01T00:00:00Z"),
        "integer": st.integers(-(2**63), 2**63 - 1),
        "number": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-9, 9),
        "boolean": st.booleans(),
        "null": st.none(),
        "objectid": st.just(OID),
        "datetime": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00+05:30"]),
    }
    fitting = [by_type[t] for t in sorted(spec.types) if t in by_type]
    if spec.items is not None:
        item = values_for(spec.items)
        fitting += [item, st.lists(item, max_size=3)]
    # Some misfits, documents included, keep the refusal paths busy too.
    misfits = SCALARS | st.dictionaries(KEYS, SCALARS, max_size=2)
    return st.one_of(*fitting, misfits)


def under(op: str, operand: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return operand.map(lambda arg: {op: arg})


def condition_for(path: str) -> st.SearchStrategy[Any]:
    value = values_for(FIELDS[path])
    elem_match = st.dictionaries(
        st.sampled_from(["isbn", "pages", "$gt", "$in", "$or"]), SCALARS | st.lists(SCALARS)
    )
    operands = {
        "$eq": value,
        "$in": st.lists(value, max_size=3),
        "$gt": value,
        "$exists": st.booleans(),
        "$regex": st.sampled_from(["^a", "(a+)+", "[", "b|c"]),
        "$not": st.fixed_dictionaries({"$ne": value}),
        "$elemMatch": elem_match,
        "$size": st.integers(-1, 3),
        "$all": st.lists(value, max_size=2),
    }
    one_operator = st.one_of(*(under(op, operand) for op, operand in operands.items()))
    operators = st.lists(one_operator, min_size=1, max_size=2).map(lambda ds: {**ds[0], **ds[-1]})
    return value | operators


FIELD_CONDITIONS = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda path: st.tuples(st.just(path), condition_for(path))
)
NEAR_VALID = st.recursive(
    st.lists(FIELD_CONDITIONS, max_size=2).map(dict),
    lambda inner: st.dictionaries(
        st.sampled_from(["$and", "$or", "$nor"]),
        st.lists(inner, min_size=1, max_size=3),
        max_size=2,
    ),
    max_leaves=8,
)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(NEAR_VALID, st.booleans())
def test_near_valid_filters_never_raise_anything_else(candidate: Any, admin: bool) -> None:
    try:
        result = check_filter(candidate, FIELDS, allow_write_only=admin)
    except FilterError:
        return
    if not admin:
        assert_safe_filter(result)
