from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from api.field_op_guards import unread_inc_guards, unread_inc_range
from api.field_ops import MAX_PATHS, OpsError, OpsPlan, parse_ops, plan_ops
from api.fields import SYSTEM_FIELDS
from api.schema_compiler import compile_schema
from api.schemas import DocumentInvalid
from api.value_checks import INT64_MAX, INT64_MIN

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "likes": {"type": "integer", "minimum": 0, "maximum": 10},
        "count": {"type": "integer"},
        "rank": {"type": "integer", "minimum": 5},
        "score": {"type": "number"},
        "ratio": {"type": "number", "maximum": 1.5},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "maybe": {"type": ["integer", "null"]},
        "title": {"type": "string"},
        "secret": {"type": "string", "writeOnly": True},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3, "uniqueItems": True},
        "notes": {"type": "array"},
        "crew": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "pair": {"type": "array", "minItems": 2},
        "people": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
        "stats": {
            "type": "object",
            "properties": {
                "views": {"type": "integer", "minimum": 0},
                "deep": {"type": "object", "properties": {"n": {"type": "integer"}}},
            },
        },
        "box": {
            "type": "object",
            "required": ["label"],
            "properties": {"label": {"type": "string"}, "qty": {"type": "integer", "maximum": 5}},
        },
    },
}
COMPILED = compile_schema(SCHEMA)
FIELDS = COMPILED.fields
SYSTEM = {"_id": "abc", "_version": 3, "_owner": None}


def parse(body: object, **options: Any) -> dict:
    return parse_ops(body, FIELDS, **options)


def refused(body: object, loc: list, match: str, **options: Any) -> None:
    with pytest.raises(OpsError, match=match) as caught:
        parse(body, **options)
    assert loc in [error["loc"] for error in caught.value.errors]


def plan(ops: dict, stored: dict | None = None) -> OpsPlan:
    return plan_ops(ops, {**SYSTEM, **(stored or {})}, SCHEMA)


# --- request shape -------------------------------------------------------------------------------


def test_non_dict_body_refused() -> None:
    refused([{"inc": {"likes": 1}}], ["body"], "JSON object")


def test_empty_body_refused() -> None:
    refused({}, ["body"], "at least one operation")
    refused({"inc": {}, "push": {}}, ["body"], "at least one operation")


def test_unknown_operator_set_refused() -> None:
    refused({"set": {"title": "x"}, "inc": {"likes": 1}}, ["body", "set"], "Unknown operator")


def test_mongo_style_operator_refused() -> None:
    refused({"$inc": {"likes": 1}}, ["body", "$inc"], "Unknown operator")


def test_operator_value_must_be_object() -> None:
    refused({"inc": ["likes"]}, ["body", "inc"], "object of field")


def test_too_many_paths_refused() -> None:
    body = {"inc": {f"f{i}": 1 for i in range(MAX_PATHS + 1)}}
    refused(body, ["body"], f"At most {MAX_PATHS}")


def test_unknown_path_refused() -> None:
    refused({"inc": {"nope": 1}}, ["body", "inc", "nope"], "Unknown field")


def test_system_path_version_refused() -> None:
    fields = {**FIELDS, **SYSTEM_FIELDS}  # even when the caller passes system fields along
    with pytest.raises(OpsError, match="read-only") as caught:
        parse_ops({"inc": {"_version": 1}}, fields)
    assert caught.value.errors[0]["loc"] == ["body", "inc", "_version"]


def test_write_only_field_hidden_as_unknown() -> None:
    refused(
        {"push": {"secret": "x"}}, ["body", "push", "secret"], "^body.push.secret: Unknown field$"
    )


def test_write_only_field_allowed_when_asked_then_type_checked() -> None:
    refused({"push": {"secret": "x"}}, ["body", "push", "secret"], "array", allow_write_only=True)


def test_path_in_two_operators_refused() -> None:
    refused({"push": {"tags": "a"}, "pull": {"tags": "b"}}, ["body", "pull", "tags"], "Conflicts")


def test_parent_and_child_paths_conflict() -> None:
    body = {"inc": {"stats.views": 1}, "pull": {"stats": 1}}
    refused(body, ["body", "pull", "stats"], "Conflicts with 'stats.views' in inc")


def test_path_through_array_items_refused() -> None:
    assert "people.name" in FIELDS
    refused({"push": {"people.name": "x"}}, ["body", "push", "people.name"], "not arrays")


def test_bool_increment_refused() -> None:
    refused({"inc": {"likes": True}}, ["body", "inc", "likes"], "finite number")


def test_string_increment_refused() -> None:
    refused({"inc": {"likes": "1"}}, ["body", "inc", "likes"], "finite number")


def test_float_on_integer_field_refused() -> None:
    refused({"inc": {"likes": 1.5}}, ["body", "inc", "likes"], "should be an integer")


def test_integral_float_on_integer_field_becomes_int() -> None:
    ops = parse({"inc": {"likes": 2.0}})
    assert ops == {"inc": {"likes": 2}}
    assert type(ops["inc"]["likes"]) is int


def test_float_on_number_field_kept() -> None:
    assert parse({"inc": {"score": 0.5}}) == {"inc": {"score": 0.5}}


def test_non_finite_and_huge_increments_refused() -> None:
    refused({"inc": {"score": float("inf")}}, ["body", "inc", "score"], "finite")
    refused({"inc": {"count": 2**63}}, ["body", "inc", "count"], "64-bit")


def test_inc_on_string_field_refused() -> None:
    refused({"inc": {"title": 1}}, ["body", "inc", "title"], "integer and number fields")


def test_push_on_non_array_refused() -> None:
    refused({"push": {"title": "x"}}, ["body", "push", "title"], "array fields")
    refused({"add_to_set": {"likes": 1}}, ["body", "add_to_set", "likes"], "array fields")


def test_dollar_key_inside_pushed_object_refused() -> None:
    body = {"push": {"people": {"name": {"$gt": ""}}}}
    refused(body, ["body", "push", "people", "name", "$gt"], "may not start with")


def test_dotted_key_inside_pulled_object_refused() -> None:
    body = {"pull": {"notes": [{"a.b": 1}]}}
    refused(body, ["body", "pull", "notes", 0, "a.b"], "contain '.'")


def test_item_nesting_limit() -> None:
    item: Any = "x"
    for _ in range(17):
        item = [item]
    refused({"push": {"notes": item}}, ["body", "push", "notes", *[0] * 17], "16 levels")
    assert parse({"push": {"notes": item[0]}}) == {"push": {"notes": item[0]}}


def test_all_path_errors_reported_together() -> None:
    with pytest.raises(OpsError) as caught:
        parse({"inc": {"nope": 1, "title": 1}, "push": {"likes": 2}})
    assert [e["loc"] for e in caught.value.errors] == [
        ["body", "inc", "nope"],
        ["body", "inc", "title"],
        ["body", "push", "likes"],
    ]


def test_valid_request_parsed() -> None:
    body = {"inc": {"likes": 1}, "push": {"tags": "x"}, "add_to_set": {"notes": {"a": 1}}}
    assert parse(body) == body


# --- result semantics ----------------------------------------------------------------------------


def test_inc_adds_to_existing_value_and_keeps_int() -> None:
    result = plan({"inc": {"likes": 2}}, {"likes": 3}).result
    assert result == {"likes": 5}
    assert type(result["likes"]) is int


def test_inc_missing_field_starts_from_zero() -> None:
    assert plan({"inc": {"count": -4}}).result == {"count": -4}


def test_inc_float() -> None:
    assert plan({"inc": {"score": 0.5}}, {"score": 2}).result == {"score": 2.5}


def test_inc_dotted_path_creates_intermediate_objects() -> None:
    result = plan({"inc": {"stats.deep.n": 1}}, {"title": "t"}).result
    assert result == {"title": "t", "stats": {"deep": {"n": 1}}}
    result = plan({"inc": {"stats.views": 1}}, {"stats": {"views": 4, "deep": {}}}).result
    assert result == {"stats": {"views": 5, "deep": {}}}


def test_inc_on_stored_null_refused_as_mongodb_would() -> None:
    with pytest.raises(OpsError, match="non-number") as caught:
        plan({"inc": {"maybe": 1}}, {"maybe": None})
    assert caught.value.errors[0]["loc"] == ["body", "inc", "maybe"]


def test_inc_overflowing_int64_refused() -> None:
    with pytest.raises(OpsError, match="overflow"):
        plan({"inc": {"count": 1}}, {"count": 2**63 - 1})


def test_path_through_non_object_value_refused() -> None:
    with pytest.raises(OpsError, match="inside 'stats'"):
        plan({"inc": {"stats.views": 1}}, {"stats": None})


def test_push_appends_even_duplicates() -> None:
    assert plan({"push": {"notes": 1}}, {"notes": [1, 2]}).result == {"notes": [1, 2, 1]}


def test_push_missing_field_creates_array() -> None:
    assert plan({"push": {"notes": [1]}}).result == {"notes": [[1]]}


def test_push_on_stored_non_array_refused() -> None:
    with pytest.raises(OpsError, match="non-array"):
        plan({"push": {"notes": 1}}, {"notes": "text"})


def test_add_to_set_skips_equal_element() -> None:
    assert plan({"add_to_set": {"notes": 1}}, {"notes": [1.0]}).result == {"notes": [1.0]}
    assert plan({"add_to_set": {"notes": {"a": [1]}}}, {"notes": [{"a": [1]}]}).result == {
        "notes": [{"a": [1]}]
    }


def test_add_to_set_tells_true_from_one() -> None:
    assert plan({"add_to_set": {"notes": True}}, {"notes": [1]}).result == {"notes": [1, True]}
    assert plan({"add_to_set": {"notes": 0}}, {"notes": [False]}).result == {"notes": [False, 0]}


def test_add_to_set_object_key_order_matters_as_in_mongodb() -> None:
    stored = {"notes": [{"a": 1, "b": 2}]}
    result = plan({"add_to_set": {"notes": {"b": 2, "a": 1}}}, stored).result
    assert result == {"notes": [{"a": 1, "b": 2}, {"b": 2, "a": 1}]}


def test_add_to_set_missing_field_creates_array() -> None:
    assert plan({"add_to_set": {"tags": "x"}}).result == {"tags": ["x"]}


def test_pull_removes_every_equal_element() -> None:
    stored = {"notes": [1, "1", 1.0, True, [1], 2]}
    assert plan({"pull": {"notes": 1}}, stored).result == {"notes": ["1", True, [1], 2]}


def test_pull_array_item_matches_whole_elements_only() -> None:
    stored = {"notes": [[1, 2], [2, 1], 1]}
    assert plan({"pull": {"notes": [1, 2]}}, stored).result == {"notes": [[2, 1], 1]}


def test_pull_object_item_is_a_query_on_object_elements() -> None:
    stored = {"notes": [{"a": 1, "b": 2}, {"a": 2}, {"a": [0, 1]}, {"b": 1}, "a"]}
    result = plan({"pull": {"notes": {"a": 1}}}, stored).result
    assert result == {"notes": [{"a": 2}, {"b": 1}, "a"]}
    result = plan({"pull": {"notes": {"a": None}}}, stored).result
    assert result == {"notes": [{"a": 1, "b": 2}, {"a": 2}, {"a": [0, 1]}, "a"]}


def test_pull_missing_field_creates_nothing() -> None:
    assert plan({"pull": {"stats.deep.n": 1}}, {"title": "t"}).result == {"title": "t"}


def test_result_is_fresh_copy_without_system_fields() -> None:
    stored = {**SYSTEM, "notes": [{"a": 1}], "stats": {"views": 1}}
    planned = plan_ops({"push": {"notes": 2}, "inc": {"stats.views": 1}}, stored, SCHEMA)
    assert planned.result == {"notes": [{"a": 1}, 2], "stats": {"views": 2}}
    assert stored["notes"] == [{"a": 1}] and stored["stats"] == {"views": 1}
    planned.result["notes"][0]["a"] = 9
    assert stored["notes"][0] == {"a": 1}


def test_update_document_has_only_used_operators() -> None:
    ops = {"inc": {"count": 2}, "add_to_set": {"notes": {"x": 1}}}
    assert plan(ops).update == {"$inc": {"count": 2}, "$addToSet": {"notes": {"x": 1}}}
    ops = {"push": {"notes": [1]}, "pull": {"crew": "a"}}
    assert plan(ops, {"crew": ["a"]}).update == {"$push": {"notes": [1]}, "$pull": {"crew": "a"}}


def test_result_validates_with_compiled_schema() -> None:
    ok = plan({"inc": {"likes": 1}, "push": {"tags": "c"}}, {"likes": 9, "tags": ["a", "b"]})
    assert COMPILED.validate(ok.result) == {"likes": 10, "tags": ["a", "b", "c"]}
    too_many = plan({"push": {"tags": "d"}}, {"tags": ["a", "b", "c"]})
    with pytest.raises(DocumentInvalid):
        COMPILED.validate(too_many.result)


# --- guards --------------------------------------------------------------------------------------


def test_inc_up_under_maximum_guard_allows_missing_field() -> None:
    planned = plan({"inc": {"likes": 2}}, {"likes": 1})
    assert planned.guard == {"$or": [{"likes": {"$lte": 8}}, {"likes": {"$exists": False}}]}
    assert planned.needs_version_guard is False


def test_inc_past_maximum_from_zero_drops_missing_branch() -> None:
    assert plan({"inc": {"likes": 11}}).guard == {"likes": {"$lte": -1}}


def test_inc_down_over_minimum_guard() -> None:
    # A missing field would become -3, below the minimum 0, so it must exist.
    assert plan({"inc": {"likes": -3}}, {"likes": 5}).guard == {"likes": {"$gte": 3}}


def test_inc_away_from_the_only_bound_needs_no_guard() -> None:
    assert plan({"inc": {"stats.views": 1}}).guard == {}
    assert plan({"inc": {"likes": 0}}, {"likes": 4}).guard == {}


def test_inc_down_on_nested_field_with_minimum() -> None:
    assert plan({"inc": {"stats.views": -1}}, {"stats": {"views": 3}}).guard == {
        "stats.views": {"$gte": 1}
    }


def test_inc_field_whose_minimum_rules_out_creation_must_exist() -> None:
    assert plan({"inc": {"rank": 1}}, {"rank": 6}).guard == {"rank": {"$exists": True}}


def test_inc_unbounded_field_needs_no_guard() -> None:
    planned = plan({"inc": {"count": 100}}, {"count": 1})
    assert (planned.guard, planned.needs_version_guard) == ({}, False)


def test_inc_float_bound_uses_exact_difference() -> None:
    planned = plan({"inc": {"ratio": 0.25}}, {"ratio": 1})
    assert planned.guard == {"$or": [{"ratio": {"$lte": 1.25}}, {"ratio": {"$exists": False}}]}


def test_inc_float_rounding_that_would_refuse_a_valid_value_falls_back_to_version() -> None:
    schema = {"type": "object", "properties": {"r": {"type": "number", "maximum": 1.42}}}
    planned = plan_ops({"inc": {"r": 0.35}}, {"r": 1.07}, schema)
    assert planned.result["r"] <= 1.42
    assert (planned.guard, planned.needs_version_guard) == ({}, True)


def test_inc_on_enum_needs_version_guard() -> None:
    planned = plan({"inc": {"level": 1}}, {"level": 1})
    assert (planned.guard, planned.needs_version_guard) == ({}, True)


def test_push_guard_room_and_uniqueness() -> None:
    planned = plan({"push": {"tags": "x"}}, {"tags": ["a"]})
    assert planned.guard == {
        "$and": [{"$nor": [{"tags": {"$size": 3}}]}, {"tags": {"$nin": ["x"]}}]
    }
    assert planned.needs_version_guard is False


def test_add_to_set_guard_room_or_already_present() -> None:
    planned = plan({"add_to_set": {"tags": "x"}}, {"tags": ["a", "b", "x"]})
    assert planned.guard == {"$or": [{"$nor": [{"tags": {"$size": 3}}]}, {"tags": "x"}]}
    assert planned.needs_version_guard is False


def test_push_on_array_without_constraints_needs_no_guard() -> None:
    assert plan({"push": {"notes": {"a": 1}}}).guard == {}
    assert plan({"push": {"crew": "x"}}).guard == {}  # minItems 1: [x] is long enough


def test_push_where_recreated_array_would_be_too_short_must_exist() -> None:
    assert plan({"push": {"pair": 3}}, {"pair": [1, 2]}).guard == {"pair": {"$exists": True}}


def test_compound_item_on_unique_or_bounded_array_needs_version_guard() -> None:
    # MongoDB compares embedded documents key order and all, unlike uniqueItems.
    schema = {
        "type": "object",
        "properties": {
            "u": {"type": "array", "uniqueItems": True},
            "m": {"type": "array", "maxItems": 2},
        },
    }
    assert plan_ops({"push": {"u": {"a": 1}}}, {}, schema).needs_version_guard is True
    assert plan_ops({"add_to_set": {"u": [1]}}, {}, schema).needs_version_guard is True
    assert plan_ops({"add_to_set": {"m": None}}, {}, schema).needs_version_guard is True
    assert plan_ops({"push": {"m": {"a": 1}}}, {}, schema).needs_version_guard is False


def test_pull_on_min_items_array_needs_version_guard() -> None:
    planned = plan({"pull": {"crew": "a"}}, {"crew": ["a", "b"]})
    assert (planned.guard, planned.needs_version_guard) == ({}, True)


def test_pull_without_min_items_needs_nothing() -> None:
    planned = plan({"pull": {"tags": "a"}}, {"tags": ["a"]})
    assert (planned.guard, planned.needs_version_guard) == ({}, False)


def test_nested_field_in_object_with_required_keeps_parent() -> None:
    planned = plan({"inc": {"box.qty": 1}}, {"box": {"label": "b"}})
    assert planned.guard == {
        "$and": [
            {"box": {"$exists": True}},
            {"$or": [{"box.qty": {"$lte": 4}}, {"box.qty": {"$exists": False}}]},
        ]
    }


def test_guards_of_several_operations_are_and_ed() -> None:
    ops = {"inc": {"likes": 1, "count": 1}, "push": {"tags": "x"}}
    planned = plan(ops, {"likes": 0, "tags": []})
    assert planned.guard == {
        "$and": [
            {"$or": [{"likes": {"$lte": 9}}, {"likes": {"$exists": False}}]},
            {"$nor": [{"tags": {"$size": 3}}]},
            {"tags": {"$nin": ["x"]}},
        ]
    }
    assert planned.needs_version_guard is False


# --- guards for increments sent without reading the document -----------------------------------

LOWEST = float(INT64_MIN)  # the bottom of the int64 range, a double


def unread(ops: dict) -> list[dict] | None:
    return unread_inc_guards(ops, FIELDS, SCHEMA)


def test_unread_inc_bounds_the_stored_value_on_both_sides() -> None:
    assert unread({"inc": {"likes": 2}}) == [
        {"$or": [{"likes": {"$gte": -2.0, "$lte": 8.0}}, {"likes": {"$exists": False}}]}
    ]


def test_unread_inc_that_no_absent_field_survives_requires_the_field() -> None:
    assert unread({"inc": {"rank": 1}}) == [{"rank": {"$gte": 4.0, "$lte": float(2**63 - 2048)}}]
    assert unread({"inc": {"stats.views": -1}}) == [
        {"stats.views": {"$gte": 1.0, "$lte": float(2**63 - 1024)}}
    ]


def fitting(delta: int | float, sub: dict) -> tuple[float, float]:
    """The stored values an unread increment admits, which must not be none."""
    found = unread_inc_range(delta, sub)
    assert found is not None
    return found


def test_unread_inc_keeps_integer_results_inside_int64() -> None:
    _, high = fitting(5, {})
    assert high + 5 <= INT64_MAX and INT64_MAX - high < 4096
    low, _ = fitting(-5, {})
    assert low - 5 >= INT64_MIN and low - INT64_MIN < 4096


def test_unread_inc_keeps_double_results_finite_and_rounded_within_bounds() -> None:
    _, high = fitting(1e308, {})
    assert high + 1e308 <= 1.7976931348623157e308
    _, high = fitting(0.1, {"maximum": 1.5})
    assert high + 0.1 <= 1.5
    assert unread_inc_range(1e308, {"maximum": -1e308}) is None


def test_unread_inc_below_a_parent_with_required_fields_needs_the_parent() -> None:
    assert unread({"inc": {"box.qty": 1}}) == [
        {"box": {"$exists": True}},
        {"$or": [{"box.qty": {"$gte": LOWEST, "$lte": 4.0}}, {"box.qty": {"$exists": False}}]},
    ]


def test_unread_inc_on_a_nullable_field_requires_a_number_there() -> None:
    # The stand-in's `$exists: false` also matches null, which $inc would then treat as 0.
    assert unread({"inc": {"maybe": 1}}) == [
        {"maybe": {"$gte": LOWEST, "$lte": float(2**63 - 2048)}}
    ]


@pytest.mark.parametrize(
    "ops",
    [
        {"push": {"tags": "a"}},
        {"inc": {"likes": 1}, "pull": {"tags": "a"}},
        {"inc": {"likes": 1, "level": 1}},
    ],
)
def test_unread_inc_declines_what_needs_the_stored_document(ops: dict) -> None:
    assert unread(ops) is None


# --- guard exactness, by property ----------------------------------------------------------------

_ABSENT = object()


def _resolve(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part, _ABSENT)
        elif isinstance(doc, list) and part.isdigit():
            doc = doc[int(part)] if int(part) < len(doc) else _ABSENT
        else:
            return _ABSENT
    return doc


def _equals(value: Any, wanted: Any) -> bool:
    """MongoDB query equality for the scalars these tests use: the value, or an array holding it."""
    return value == wanted or (isinstance(value, list) and wanted in value)


def _check(op: str, arg: Any, value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if op == "$lte":
        return number and value <= arg
    if op == "$gte":
        return number and value >= arg
    if op == "$exists":
        return (value is not _ABSENT) == arg
    if op == "$ne":
        return not _equals(value, arg)
    if op == "$nin":
        return not any(_equals(value, other) for other in arg)
    if op == "$size":
        return isinstance(value, list) and len(value) == arg
    raise AssertionError(f"the evaluator does not know {op}")


def _matches(doc: dict, guard: dict) -> bool:
    """A tiny MongoDB filter evaluator for the shapes plan_ops produces."""
    for key, condition in guard.items():
        if key == "$and":
            ok = all(_matches(doc, sub) for sub in condition)
        elif key == "$or":
            ok = any(_matches(doc, sub) for sub in condition)
        elif key == "$nor":
            ok = not any(_matches(doc, sub) for sub in condition)
        elif not isinstance(condition, dict):
            ok = _equals(_resolve(doc, key), condition)
        else:
            value = _resolve(doc, key)
            ok = all(_check(op, arg, value) for op, arg in condition.items())
        if not ok:
            return False
    return True


def test_evaluator_can_fail() -> None:
    assert not _matches({"a": 5}, {"$or": [{"a": {"$lte": 4}}, {"a": {"$exists": False}}]})
    assert _matches({}, {"$or": [{"a": {"$lte": 4}}, {"a": {"$exists": False}}]})
    assert not _matches({"t": ["x"]}, {"t": {"$nin": ["x"]}})
    assert not _matches({"t": [1, 2, 3]}, {"$nor": [{"t": {"$size": 3}}]})
    assert _matches({}, {"$nor": [{"t": {"$size": 3}}]})


@st.composite
def bounded_cases(draw: st.DrawFn) -> tuple[int | None, int | None, int | None, int]:
    low = draw(st.none() | st.integers(-5, 5))
    high = draw(st.none() | st.integers(-5, 5).map(lambda h: h if low is None else low + abs(h)))
    lo, hi = -20 if low is None else low, 20 if high is None else high
    # Only valid documents are ever stored: the field is absent or within its bounds.
    value = draw(st.none() | st.integers(lo, hi))
    return low, high, value, draw(st.integers(-15, 15))


@given(bounded_cases())
@example((0, 10, None, 11))
@example((5, None, 6, 1))
@example((0, 10, 10, 0))
def test_inc_guard_matches_exactly_when_result_within_bounds(case: tuple) -> None:
    low, high, value, delta = case
    field: dict[str, Any] = {"type": "integer"}
    field.update({k: v for k, v in (("minimum", low), ("maximum", high)) if v is not None})
    schema = {"type": "object", "properties": {"n": field}}
    stored = {} if value is None else {"n": value}
    planned = plan_ops({"inc": {"n": delta}}, {"_version": 1, **stored}, schema)
    result = planned.result["n"]
    within = (low is None or result >= low) and (high is None or result <= high)
    assert planned.needs_version_guard is False
    assert _matches(stored, planned.guard) is within


@given(
    items=st.lists(st.integers(0, 4), max_size=4, unique=True),
    absent=st.booleans(),
    item=st.integers(0, 4),
    name=st.sampled_from(["push", "add_to_set"]),
    max_items=st.integers(1, 4),
    min_items=st.integers(0, 1),
)
def test_array_guard_matches_exactly_when_result_valid(
    items: list[int], absent: bool, item: int, name: str, max_items: int, min_items: int
) -> None:
    field = {"type": "array", "uniqueItems": True, "maxItems": max_items, "minItems": min_items}
    compiled = compile_schema({"type": "object", "properties": {"a": field}})
    stored = {} if absent else {"a": items}
    try:
        compiled.validate(stored)
    except DocumentInvalid:
        return  # never stored
    planned = plan_ops({name: {"a": item}}, stored, compiled.schema)
    try:
        compiled.validate(planned.result)
        valid = True
    except DocumentInvalid:
        valid = False
    assert planned.needs_version_guard is False
    assert _matches(stored, planned.guard) is valid


@given(bounded_cases())
@example((0, 10, None, 11))
@example((0, 10, 9, 1))
@example((5, None, None, 5))
def test_unread_inc_guard_matches_exactly_when_result_within_bounds(case: tuple) -> None:
    low, high, value, delta = case
    field: dict[str, Any] = {"type": "integer"}
    field.update({k: v for k, v in (("minimum", low), ("maximum", high)) if v is not None})
    compiled = compile_schema({"type": "object", "properties": {"n": field}})
    stored = {} if value is None else {"n": value}
    guards = unread_inc_guards({"inc": {"n": delta}}, compiled.fields, compiled.schema)
    result = (value or 0) + delta
    within = (low is None or result >= low) and (high is None or result <= high)
    assert guards is not None and _matches(stored, {"$and": guards}) is within


_REFUSED = object()


def _mongodb_inc(value: Any, delta: int | float) -> Any:
    """MongoDB's $inc: integers add exactly (refused past int64), anything else in doubles."""
    if value is _ABSENT:
        return delta
    if isinstance(value, int) and isinstance(delta, int):
        total = value + delta
        return total if INT64_MIN <= total <= INT64_MAX else _REFUSED
    return float(value) + float(delta)


_INT64 = st.integers(INT64_MIN, INT64_MAX)
_DOUBLES = st.floats(allow_nan=False, allow_infinity=False)
_EDGES = st.sampled_from(
    [2**53, 2**53 + 1, 2**63 - 1024, INT64_MAX, INT64_MIN, 1.7976931348623157e308]
)
_NUMBERS = _INT64 | _DOUBLES | _EDGES | _EDGES.map(lambda n: -n)


@given(
    kind=st.sampled_from(["integer", "number"]),
    bounds=st.lists(st.none() | _NUMBERS, min_size=2, max_size=2),
    delta=_NUMBERS,
    value=st.sampled_from([_ABSENT, None, "7", True, [1]]) | _NUMBERS,
)
@example(kind="integer", bounds=[None, None], delta=600, value=float(2**63 - 1024))
@example(kind="number", bounds=[None, 2**53 + 1], delta=1.0, value=2**53 + 1)
# MongoDB adds a double in doubles, rounding the delta up first: 3.0 + (2**53 + 4) rounds up too.
@example(kind="number", bounds=[None, 2**53 + 6], delta=2**53 + 3, value=3.0)
def test_unread_inc_guard_admits_only_values_giving_a_valid_result(
    kind: str, bounds: list, delta: int | float, value: Any
) -> None:
    if kind == "integer":
        # What parse_ops lets through, and what a stored document can hold there.
        assume(isinstance(delta, int) and INT64_MIN <= delta <= INT64_MAX)
        assume(not isinstance(value, float) or value.is_integer())
    low, high = bounds
    if low is not None and high is not None and low > high:
        low, high = high, low
    field: dict[str, Any] = {"type": kind}
    field.update({k: v for k, v in (("minimum", low), ("maximum", high)) if v is not None})
    compiled = compile_schema({"type": "object", "properties": {"n": field}})
    guards = unread_inc_guards({"inc": {"n": delta}}, compiled.fields, compiled.schema)
    stored = {} if value is _ABSENT else {"n": value}
    if guards is None or not _matches(stored, {"$and": guards}):
        return  # the request reads the document and plans from it
    assert not isinstance(value, str | bool | list) and value is not None
    result = _mongodb_inc(value, delta)
    assert result is not _REFUSED
    compiled.validate({"n": result})
