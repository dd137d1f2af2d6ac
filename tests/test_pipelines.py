"""check_pipeline: allowlisted stages and operators only, rule filters inside every $lookup."""

import contextlib
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.fields import SYSTEM_FIELDS, FieldSpec
from api.pipelines import LookupTarget, PipelineError, check_pipeline

STRING = FieldSpec(frozenset({"string"}))
INTEGER = FieldSpec(frozenset({"integer"}))
NOTES = {
    **SYSTEM_FIELDS,
    "title": STRING,
    "year": INTEGER,
    "tags": FieldSpec(frozenset({"array"}), items=STRING),
    "author_id": FieldSpec(frozenset({"objectid"})),
    "secret": FieldSpec(frozenset({"string"}), write_only=True),
    "reviews": FieldSpec(frozenset({"array"}), items=FieldSpec(frozenset({"object"}))),
    "reviews.stars": INTEGER,
    "reviews.pin": FieldSpec(frozenset({"string"}), write_only=True),
}
BOOKS = {**SYSTEM_FIELDS, "title": STRING, "author_id": STRING, "password": NOTES["secret"]}
AUTHORS = {**SYSTEM_FIELDS, "name": STRING, "ssn": NOTES["secret"]}
OWNED = {"_owner": "u1"}
TARGETS = {
    "books": LookupTarget("c_books", BOOKS, OWNED, ("password",)),
    "authors": LookupTarget("c_authors", AUTHORS, OWNED, ("ssn",)),
    "public": LookupTarget("c_public", {**SYSTEM_FIELDS, "name": STRING}, {}, ()),
    "notes": LookupTarget("c_notes", NOTES, {"_owner": "u1"}, ("private",)),
}
FORBIDDEN_STAGES = [
    "$out", "$merge", "$unionWith", "$graphLookup", "$collStats", "$currentOp", "$function",
    "$indexStats", "$listSessions", "$planCacheStats", "$documents", "$changeStream", "$search",
    "$where", "$redact", "$geoNear",
]  # fmt: skip
FORBIDDEN_OPERATORS = ["$function", "$accumulator", "$where", "$expr"]
OID = "0123456789abcdef01234567"


def resolve(name: str) -> LookupTarget:
    if name not in TARGETS:
        raise PipelineError(f"collection {name!r} not found")
    return TARGETS[name]


def check(pipeline: Any, **options: Any) -> list[dict]:
    return check_pipeline(pipeline, fields=NOTES, resolve_lookup=resolve, **options)


def refusal(pipeline: Any, **options: Any) -> str:
    with pytest.raises(PipelineError) as caught:
        check(pipeline, **options)
    return str(caught.value)


# Stages


def test_allowed_stages_pass_through_as_written() -> None:
    pipeline = [
        {"$match": {"year": {"$gte": 2000}}},
        {"$sort": {"year": -1, "title": 1}},
        {"$skip": 0},
        {"$limit": 20},
        {"$sample": {"size": 5}},
        {"$project": {"title": 1, "decade": {"$subtract": ["$year", {"$mod": ["$year", 10]}]}}},
        {"$addFields": {"meta.upper": {"$toUpper": "$title"}}},
        {"$set": {"n": {"$size": {"$ifNull": ["$tags", []]}}}},
        {"$unwind": {"path": "$tags", "preserveNullAndEmptyArrays": True}},
        {"$unset": ["meta"]},
        {"$group": {"_id": "$decade", "count": {"$sum": 1}, "titles": {"$push": "$title"}}},
        {"$bucket": {"groupBy": "$count", "boundaries": [0, 10, 100], "default": "many"}},
        {"$replaceWith": {"$mergeObjects": ["$$CURRENT", {"at": "$$NOW"}]}},
        {"$replaceRoot": {"newRoot": "$$CURRENT"}},
        {"$sortByCount": "$_id"},
        {"$bucketAuto": {"groupBy": "$count", "buckets": 4, "output": {"n": {"$sum": 1}}}},
        {"$count": "total"},
    ]
    assert check(pipeline) == pipeline


def test_empty_pipeline_is_allowed() -> None:
    assert check([]) == []


@pytest.mark.parametrize("stage", FORBIDDEN_STAGES)
def test_forbidden_stage_at_top_level_is_refused(stage: str) -> None:
    message = refusal([{"$match": {}}, {stage: {}}])
    assert message == f"pipeline[1]: stage {stage} is not allowed"


@pytest.mark.parametrize("stage", FORBIDDEN_STAGES)
def test_forbidden_stage_inside_facet_is_refused(stage: str) -> None:
    message = refusal([{"$facet": {"byYear": [{"$limit": 1}, {stage: "x"}]}}])
    assert message == f"pipeline[0].$facet.byYear[1]: stage {stage} is not allowed"


@pytest.mark.parametrize("stage", FORBIDDEN_STAGES)
def test_forbidden_stage_inside_lookup_pipeline_is_refused(stage: str) -> None:
    message = refusal([{"$lookup": {"from": "books", "pipeline": [{stage: {}}], "as": "b"}}])
    assert message == f"pipeline[0].$lookup.pipeline[0]: stage {stage} is not allowed"


def test_forbidden_stage_deep_inside_lookup_in_facet_names_full_position() -> None:
    lookup = {"from": "books", "pipeline": [{"$limit": 1}, {"$merge": "x"}], "as": "b"}
    message = refusal([{"$limit": 1}, {"$facet": {"f": [{"$lookup": lookup}]}}])
    assert message == "pipeline[1].$facet.f[0].$lookup.pipeline[1]: stage $merge is not allowed"


def test_facet_inside_facet_is_refused() -> None:
    message = refusal([{"$facet": {"a": [{"$facet": {"b": []}}]}}])
    assert message == "pipeline[0].$facet.a[0]: stage $facet is not allowed"


def test_lookup_inside_facet_is_allowed() -> None:
    lookup = {"from": "public", "pipeline": [{"$limit": 1}], "as": "p"}
    out = check([{"$facet": {"f": [{"$lookup": lookup}]}}])
    assert out == [{"$facet": {"f": [{"$lookup": {**lookup, "from": "c_public"}}]}}]


@pytest.mark.parametrize("stage", [[], {"$match": {}, "$limit": 1}, {}, "$match", None])
def test_stage_must_be_an_object_with_one_key(stage: Any) -> None:
    assert refusal([stage]) == "pipeline[0]: a stage is an object with exactly one key"


@pytest.mark.parametrize("pipeline", [{"$match": {}}, "[]", None, 3])
def test_pipeline_must_be_a_list(pipeline: Any) -> None:
    assert refusal(pipeline) == "pipeline: expected a list of stages"


@pytest.mark.parametrize(
    ("stage", "position"),
    [
        ({"$limit": 0}, "pipeline[0].$limit"),
        ({"$limit": True}, "pipeline[0].$limit"),
        ({"$limit": 2.0}, "pipeline[0].$limit"),
        ({"$skip": -1}, "pipeline[0].$skip"),
        ({"$sample": {"size": 10_001}}, "pipeline[0].$sample.size"),
        ({"$sample": {"size": 0}}, "pipeline[0].$sample.size"),
        ({"$sort": {"year": 2}}, "pipeline[0].$sort.year"),
        ({"$sort": {"year": {"$meta": "textScore"}}}, "pipeline[0].$sort.year"),
        ({"$count": "a.b"}, "pipeline[0].$count"),
        ({"$count": "$n"}, "pipeline[0].$count"),
        ({"$unwind": "tags"}, "pipeline[0].$unwind.path"),
        ({"$unwind": "$$ROOT"}, "pipeline[0].$unwind.path"),
        ({"$unwind": {"path": "$tags", "as": "x"}}, "pipeline[0].$unwind"),
        ({"$unset": []}, "pipeline[0].$unset"),
        ({"$unset": ["$year"]}, "pipeline[0].$unset[0]"),
        ({"$group": {"total": {"$sum": 1}}}, "pipeline[0].$group"),
        ({"$group": {"_id": None, "total": "$year"}}, "pipeline[0].$group.total"),
        ({"$group": {"_id": None, "a.b": {"$sum": 1}}}, "pipeline[0].$group"),
        ({"$project": {"$where": 1}}, "pipeline[0].$project"),
        ({"$project": {}}, "pipeline[0].$project"),
        ({"$addFields": {"x..y": 1}}, "pipeline[0].$addFields"),
        ({"$replaceRoot": {"root": "$x"}}, "pipeline[0].$replaceRoot"),
        ({"$bucket": {"groupBy": "$year", "boundaries": [1]}}, "pipeline[0].$bucket.boundaries"),
    ],
)
def test_malformed_stage_is_refused_with_its_position(stage: dict, position: str) -> None:
    assert refusal([stage]).startswith(position + ":")


def test_pipeline_of_more_than_50_stages_is_refused() -> None:
    assert check([{"$limit": 1}] * 50) == [{"$limit": 1}] * 50
    assert refusal([{"$limit": 1}] * 51) == "pipeline: more than 50 stages"


def test_more_than_200_stages_in_all_is_refused() -> None:
    facet = {"$facet": {f"f{i}": [{"$limit": 1}] * 49 for i in range(4)}}
    assert len(check([facet])[0]["$facet"]) == 4  # 1 + 4 * 49 = 197 stages
    message = refusal([facet, {"$facet": {"g": [{"$limit": 1}] * 3}}])
    assert message == "pipeline[1].$facet.g[2]: more than 200 stages in all"


def test_nesting_deeper_than_32_is_refused() -> None:
    def nested(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value]
        return value

    # list, stage, $project spec, then the expression's own levels
    assert check([{"$project": {"x": {"$literal": nested(28)}}}])
    assert refusal([{"$project": {"x": {"$literal": nested(29)}}}]) == (
        "pipeline: nested deeper than 32 levels"
    )


def test_more_than_10000_values_is_refused() -> None:
    message = refusal([{"$project": {"x": {"$literal": list(range(10_000))}}}])
    assert message == "pipeline: more than 10000 values"


def test_self_referencing_input_is_refused_not_looped() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert refusal([{"$project": {"x": {"$literal": loop}}}]).startswith("pipeline: ")


@pytest.mark.parametrize("value", [{1, 2}, b"x", (1, 2), 2**63, object()])
def test_non_json_values_are_refused(value: Any) -> None:
    assert refusal([{"$project": {"x": {"$literal": value}}}]).startswith("pipeline: ")


def test_non_string_keys_are_refused() -> None:
    assert refusal([{"$project": {1: 1}}]) == "pipeline: invalid object key"


# Operators


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
def test_forbidden_operator_in_group_is_refused(operator: str) -> None:
    message = refusal([{"$group": {"_id": None, "total": {operator: {"body": "x"}}}}])
    assert message == f"pipeline[0].$group.total: operator {operator} is not allowed"


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
def test_forbidden_operator_nested_in_accumulator_is_refused(operator: str) -> None:
    message = refusal([{"$group": {"_id": None, "t": {"$sum": [1, {operator: "x"}]}}}])
    assert message == f"pipeline[0].$group.t.$sum[1]: operator {operator} is not allowed"


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
def test_forbidden_operator_in_project_is_refused(operator: str) -> None:
    message = refusal([{"$project": {"x": {"$cond": [{operator: "1"}, 1, 0]}}}])
    assert message == f"pipeline[0].$project.x.$cond[0]: operator {operator} is not allowed"


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
def test_forbidden_operator_in_first_match_is_refused(operator: str) -> None:
    message = refusal([{"$match": {operator: "this.secret == 'x'"}}])
    assert message == f"pipeline[0].$match: operator {operator} is not allowed"


@pytest.mark.parametrize("operator", FORBIDDEN_OPERATORS)
def test_forbidden_operator_in_match_after_group_is_refused(operator: str) -> None:
    message = refusal([{"$group": {"_id": "$year"}}, {"$match": {operator: "1"}}])
    assert message == f"pipeline[1].$match: operator {operator} is not allowed"


@pytest.mark.parametrize("operator", ["$text", "$function", "$type", "$mod", "$jsonSchema"])
def test_match_after_reshaping_refuses_operators_outside_filter_language(operator: str) -> None:
    message = refusal([{"$unwind": "$tags"}, {"$match": {"$or": [{"tags": {operator: 1}}]}}])
    assert message == f"pipeline[1].$match.$or[0].tags: operator {operator} is not allowed"


@pytest.mark.parametrize(
    "operator", ["$setField", "$unsetField", "$meta", "$toHashedIndexKey", "$rand()", "$out"]
)
def test_operator_outside_the_allowlist_is_refused(operator: str) -> None:
    message = refusal([{"$addFields": {"x": {operator: {}}}}])
    assert message == f"pipeline[0].$addFields.x: operator {operator} is not allowed"


def test_harmless_operators_are_allowed() -> None:
    stage = {
        "$addFields": {"r": {"$rand": {}}, "d": {"$dateTrunc": {"date": "$$NOW", "unit": "day"}}}
    }
    assert check([stage]) == [stage]


def test_operator_object_with_two_keys_is_refused() -> None:
    message = refusal([{"$project": {"x": {"$add": [1, 2], "$where": "1"}}}])
    assert message == "pipeline[0].$project.x: an operator object must hold exactly one key"


def test_literal_may_hold_dollar_strings_but_not_dollar_keys() -> None:
    stage = {"$project": {"x": {"$literal": ["$secret", "$$SEARCH_META"]}}}
    assert check([stage]) == [stage]
    message = refusal([{"$project": {"x": {"$literal": {"$where": "1"}}}}])
    assert message == "pipeline[0].$project.x.$literal: operator $where is not allowed here"


def test_regex_operator_needs_a_literal_short_pattern() -> None:
    ok = {"$addFields": {"m": {"$regexMatch": {"input": "$title", "regex": "^a", "options": "i"}}}}
    assert check([ok]) == [ok]
    computed = {"$regexFind": {"input": "$title", "regex": "$title"}}
    assert refusal([{"$addFields": {"m": {"$regexFind": {"input": "$title", "regex": 1}}}}]) == (
        "pipeline[0].$addFields.m.$regexFind.regex: expected a string of at most 256 characters"
    )
    assert check([{"$addFields": {"m": computed}}])  # "$title" here is the pattern text itself
    long = {"$regexFindAll": {"input": "$title", "regex": "a" * 257}}
    assert "at most 256" in refusal([{"$addFields": {"m": long}}])
    bad_options = {"$regexMatch": {"input": "$title", "regex": "a", "options": "g"}}
    assert "options" in refusal([{"$addFields": {"m": bad_options}}])


# Variables


@pytest.mark.parametrize("variable", ["$$SEARCH_META", "$$CLUSTER_TIME", "$$USER_ROLES", "$$x"])
def test_unknown_variable_is_refused(variable: str) -> None:
    message = refusal([{"$project": {"v": variable}}])
    assert message == f"pipeline[0].$project.v: variable {variable} is not allowed"


def test_unknown_variable_with_path_is_refused() -> None:
    message = refusal([{"$project": {"v": "$$USER_ROLES.role"}}])
    assert message == "pipeline[0].$project.v: variable $$USER_ROLES is not allowed"


def test_variables_bound_by_map_filter_reduce_let_are_allowed_inside_only() -> None:
    expression = {
        "$let": {
            "vars": {"base": 10},
            "in": {
                "$reduce": {
                    "input": {
                        "$map": {
                            "input": {"$filter": {"input": "$tags", "as": "t", "cond": "$$t"}},
                            "as": "tag",
                            "in": {"$strLenCP": "$$tag"},
                        }
                    },
                    "initialValue": "$$base",
                    "in": {"$add": ["$$value", "$$this"]},
                }
            },
        }
    }
    assert check([{"$project": {"n": expression}}]) == [{"$project": {"n": expression}}]
    outside = {"$add": [{"$map": {"input": "$tags", "as": "tag", "in": "$$tag"}}, "$$tag"]}
    assert refusal([{"$project": {"n": outside}}]) == (
        "pipeline[0].$project.n.$add[1]: variable $$tag is not allowed"
    )
    assert "variable $$this" in refusal([{"$project": {"n": "$$this"}}])


def test_system_variable_names_cannot_be_rebound() -> None:
    message = refusal([{"$project": {"n": {"$let": {"vars": {"ROOT": 1}, "in": "$$ROOT"}}}}])
    assert message == "pipeline[0].$project.n.$let.vars: invalid variable name"


# Write-only fields


@pytest.mark.parametrize(
    ("stage", "position"),
    [
        ({"$project": {"x": "$secret"}}, "pipeline[0].$project.x"),
        ({"$project": {"x": {"$concat": ["$secret.a"]}}}, "pipeline[0].$project.x.$concat[0]"),
        ({"$project": {"secret": 1}}, "pipeline[0].$project"),
        ({"$project": {"secret": {"inner": 1}}}, "pipeline[0].$project"),
        ({"$unset": "secret"}, "pipeline[0].$unset[0]"),
        ({"$sort": {"secret": 1}}, "pipeline[0].$sort"),
        ({"$group": {"_id": "$secret"}}, "pipeline[0].$group._id"),
        ({"$unwind": "$secret"}, "pipeline[0].$unwind"),
        ({"$addFields": {"x": "$$ROOT.secret"}}, "pipeline[0].$addFields.x"),
        ({"$addFields": {"x": "$$CURRENT.secret.a"}}, "pipeline[0].$addFields.x"),
        ({"$set": {"x": {"$getField": "secret"}}}, "pipeline[0].$set.x.$getField.field"),
        ({"$match": {"secret": "x"}}, "pipeline[0].$match.secret"),
        ({"$match": {"$or": [{"secret": {"$exists": True}}]}}, "pipeline[0].$match.$or[0].secret"),
    ],
)  # fmt: skip
def test_write_only_field_reference_is_refused_as_unknown(stage: dict, position: str) -> None:
    assert refusal([stage]).startswith(f"{position}: unknown field 'secret")


def test_write_only_field_reference_after_reshaping_is_refused() -> None:
    message = refusal([{"$addFields": {"a": 1}}, {"$match": {"secret": "x"}}])
    assert message == "pipeline[1].$match.secret: unknown field 'secret'"


def test_write_only_field_reference_allowed_when_caller_may_see_them() -> None:
    pipeline = [{"$match": {"secret": "x"}}, {"$project": {"s": "$secret", "secret": 1}}]
    assert check(pipeline, allow_write_only=True) == pipeline


def test_whole_document_references_are_allowed() -> None:
    stage = {"$project": {"doc": "$$CURRENT", "kv": {"$objectToArray": "$$CURRENT"}}}
    assert check([stage]) == [stage]


def test_root_is_read_as_current_so_it_sees_the_rule_stages() -> None:
    stage = {"$project": {"doc": "$$ROOT", "title": "$$ROOT.title"}}
    assert check([stage]) == [{"$project": {"doc": "$$CURRENT", "title": "$$CURRENT.title"}}]


# $match


def test_first_match_is_converted_by_the_filter_checker() -> None:
    out = check([{"$match": {"_id": OID, "_created": {"$gte": "2026-01-31T12:00:00Z"}}}])
    created = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert out == [{"$match": {"_id": ObjectId(OID), "_created": {"$gte": created}}}]


def test_match_before_reshaping_is_converted_even_after_sort_and_limit() -> None:
    out = check([{"$sort": {"year": 1}}, {"$limit": 5}, {"$match": {"author_id": OID}}])
    assert out[2] == {"$match": {"author_id": ObjectId(OID)}}


def test_first_match_refuses_unknown_fields_and_wrong_types() -> None:
    assert refusal([{"$match": {"nope": 1}}]) == "pipeline[0].$match.nope: unknown field 'nope'"
    assert refusal([{"$match": {"year": "1999"}}]).startswith("pipeline[0].$match.year: expected")


def test_match_after_group_is_walked_not_converted() -> None:
    pipeline = [{"$group": {"_id": "$author_id", "n": {"$sum": 1}}}, {"$match": {"_id": OID}}]
    assert check(pipeline) == pipeline  # the group key is whatever it is: no ObjectId guess
    after = [{"$group": {"_id": "$year"}}, {"$match": {"n": {"$gt": 2, "$in": [3, 4]}}}]
    assert check(after) == after


def test_match_after_group_still_refuses_where() -> None:
    message = refusal([{"$group": {"_id": "$year"}}, {"$match": {"$where": "sleep(1000)"}}])
    assert message == "pipeline[1].$match: operator $where is not allowed"


def test_match_after_reshaping_refuses_operator_keys_inside_values() -> None:
    message = refusal([{"$count": "n"}, {"$match": {"n": {"$eq": {"$function": {}}}}}])
    assert message == "pipeline[1].$match.n.$eq: operator $function is not allowed here"


def test_match_after_reshaping_caps_regex_length() -> None:
    message = refusal([{"$count": "n"}, {"$match": {"n": {"$regex": "a" * 257}}}])
    assert message == "pipeline[1].$match.n.$regex: expected a string of at most 256 characters"


def test_match_refuses_hidden_paths_inside_elem_match() -> None:
    query = {"reviews": {"$elemMatch": {"stars": {"$gt": 3}, "pin": "1234"}}}
    assert refusal([{"$match": query}]) == (
        "pipeline[0].$match.reviews.$elemMatch.pin: unknown field 'reviews.pin'"
    )
    after = refusal([{"$addFields": {"a": 1}}, {"$match": query}])
    assert after == "pipeline[1].$match.reviews.$elemMatch.pin: unknown field 'pin'"
    allowed = [{"$addFields": {"a": 1}}, {"$match": {"reviews": {"$elemMatch": {"stars": 5}}}}]
    assert check(allowed) == allowed


# $lookup


def test_local_field_lookup_keeps_the_join_and_puts_target_rule_filter_first() -> None:
    lookup = {"from": "books", "localField": "title", "foreignField": "title", "as": "books"}
    assert check([{"$lookup": lookup}]) == [
        {
            "$lookup": {
                "from": "c_books",
                "localField": "title",
                "foreignField": "title",
                "pipeline": [{"$match": {"_owner": "u1"}}, {"$unset": ["password"]}],
                "as": "books",
            }
        }
    ]


def test_local_field_lookup_to_unrestricted_target_gets_an_empty_pipeline() -> None:
    lookup = {"from": "public", "localField": "tags", "foreignField": "name", "as": "p"}
    assert check([{"$lookup": lookup}]) == [
        {
            "$lookup": {
                "from": "c_public",
                "localField": "tags",
                "foreignField": "name",
                "pipeline": [],
                "as": "p",
            }
        }
    ]


def test_pipeline_lookup_gets_the_rule_filter_prepended() -> None:
    lookup = {
        "from": "authors",
        "let": {"author": "$author_id"},
        "pipeline": [
            {"$match": {"_id": OID}},
            {"$project": {"name": 1, "same": {"$eq": ["$_id", "$$author"]}}},
        ],
        "as": "author",
    }
    assert check([{"$lookup": lookup}]) == [
        {
            "$lookup": {
                "from": "c_authors",
                "let": {"author": "$author_id"},
                "pipeline": [
                    {"$match": {"_owner": "u1"}},
                    {"$unset": ["ssn"]},
                    {"$match": {"_id": ObjectId(OID)}},  # checked against the target's fields
                    {"$project": {"name": 1, "same": {"$eq": ["$_id", "$$author"]}}},
                ],
                "as": "author",
            }
        }
    ]


def test_combined_lookup_joins_then_appends_the_user_pipeline() -> None:
    lookup = {"from": "books", "localField": "tags", "foreignField": "title", "as": "b"}
    out = check([{"$lookup": {**lookup, "pipeline": [{"$limit": 3}]}}])
    assert out == [
        {
            "$lookup": {
                "from": "c_books",
                "localField": "tags",
                "foreignField": "title",
                "pipeline": [{"$match": OWNED}, {"$unset": ["password"]}, {"$limit": 3}],
                "as": "b",
            }
        }
    ]


def test_lookup_to_unrestricted_target_adds_no_empty_match() -> None:
    out = check([{"$lookup": {"from": "public", "pipeline": [], "as": "p"}}])
    assert out == [{"$lookup": {"from": "c_public", "pipeline": [], "as": "p"}}]


def test_lookup_to_refused_collection_is_refused() -> None:
    message = refusal([{"$limit": 1}, {"$lookup": {"from": "secret", "pipeline": [], "as": "s"}}])
    assert message == "pipeline[1].$lookup.from: collection 'secret' not found"


@pytest.mark.parametrize("source", ["Books", "../books", "a" * 64, "", {"db": "x", "coll": "y"}, 1])
def test_lookup_from_must_be_a_collection_name(source: Any) -> None:
    calls: list[str] = []

    def spy(name: str) -> LookupTarget:
        calls.append(name)
        return TARGETS["books"]

    with pytest.raises(PipelineError, match=r"pipeline\[0\]\.\$lookup\.from: expected a coll"):
        check_pipeline(
            [{"$lookup": {"from": source, "pipeline": [], "as": "b"}}],
            fields=NOTES,
            resolve_lookup=spy,
        )
    assert calls == []


def test_lookup_pipeline_refuses_target_hidden_fields() -> None:
    sub = [{"$project": {"p": "$password"}}]
    message = refusal([{"$lookup": {"from": "books", "pipeline": sub, "as": "b"}}])
    assert message == "pipeline[0].$lookup.pipeline[0].$project.p: unknown field 'password'"


def test_lookup_foreign_field_must_be_a_visible_target_field() -> None:
    lookup = {"from": "books", "localField": "title", "as": "b"}
    assert refusal([{"$lookup": {**lookup, "foreignField": "password"}}]) == (
        "pipeline[0].$lookup.foreignField: unknown field 'password'"
    )
    assert refusal([{"$lookup": {**lookup, "foreignField": "nope"}}]) == (
        "pipeline[0].$lookup.foreignField: unknown field 'nope'"
    )


def test_lookup_local_field_must_be_known_until_reshaping() -> None:
    lookup = {"from": "books", "localField": "nope", "foreignField": "title", "as": "b"}
    assert refusal([{"$lookup": lookup}]) == "pipeline[0].$lookup.localField: unknown field 'nope'"
    out = check([{"$addFields": {"nope": 1}}, {"$lookup": lookup}])
    assert out[1]["$lookup"]["localField"] == "nope"
    assert "let" not in out[1]["$lookup"]
    secret = {**lookup, "localField": "secret"}
    assert refusal([{"$addFields": {"a": 1}}, {"$lookup": secret}]) == (
        "pipeline[1].$lookup.localField: unknown field 'secret'"
    )


def test_lookup_let_variables_are_usable_only_in_their_sub_pipeline() -> None:
    sub = [{"$match": {"$expr": {"$eq": ["$title", "$$t"]}}}]
    assert "operator $expr is not allowed" in refusal(
        [{"$lookup": {"from": "books", "let": {"t": "$title"}, "pipeline": sub, "as": "b"}}]
    )
    uses_t = [{"$addFields": {"mine": {"$eq": ["$title", "$$t"]}}}]
    lookup = {"from": "books", "let": {"t": "$title"}, "pipeline": uses_t, "as": "b"}
    assert check([{"$lookup": lookup}])[0]["$lookup"]["pipeline"][-1] == uses_t[0]
    assert refusal([{"$addFields": {"x": "$$t"}}]) == (
        "pipeline[0].$addFields.x: variable $$t is not allowed"
    )


def test_lookup_let_may_bind_cabinet_local_like_any_other_name() -> None:
    sub = [{"$addFields": {"x": "$$cabinet_local"}}]
    join = {"localField": "title", "foreignField": "title"}
    lookup = {"from": "books", "let": {"cabinet_local": "$title"}, "pipeline": sub, "as": "b"}
    out = check([{"$lookup": {**lookup, **join}}])[0]["$lookup"]
    assert out["let"] == {"cabinet_local": "$title"}
    assert (out["localField"], out["foreignField"]) == ("title", "title")
    assert out["pipeline"] == [{"$match": OWNED}, {"$unset": ["password"]}, *sub]
    unbound = {"from": "books", "pipeline": sub, "as": "b"}
    assert refusal([{"$lookup": unbound}]) == (
        "pipeline[0].$lookup.pipeline[0].$addFields.x: variable $$cabinet_local is not allowed"
    )


def test_lookup_let_refuses_current_write_only_fields() -> None:
    lookup = {"from": "books", "let": {"s": "$secret"}, "pipeline": [], "as": "b"}
    assert refusal([{"$lookup": lookup}]) == "pipeline[0].$lookup.let.s: unknown field 'secret'"


def test_resolver_hidden_fields_are_unset_and_unnameable_with_write_only_ones() -> None:
    lookup = {"from": "notes", "pipeline": [{"$limit": 1}], "as": "n"}
    pipeline = check([{"$lookup": lookup}])[0]["$lookup"]["pipeline"]
    assert pipeline == [
        {"$match": OWNED},
        {"$unset": ["private", "reviews.pin", "secret"]},
        {"$limit": 1},
    ]
    for reference in ("$private", "$secret", "$reviews.pin"):
        sub = [{"$addFields": {"x": reference}}]
        message = refusal([{"$lookup": {**lookup, "pipeline": sub}}])
        assert message.endswith(f"unknown field {reference[1:]!r}")


def test_admin_lookup_keeps_write_only_fields_but_not_resolver_hidden_ones() -> None:
    lookup = {"from": "notes", "pipeline": [{"$project": {"s": "$secret"}}], "as": "n"}
    pipeline = check([{"$lookup": lookup}], allow_write_only=True)[0]["$lookup"]["pipeline"]
    assert pipeline == [{"$match": OWNED}, {"$unset": ["private"]}, {"$project": {"s": "$secret"}}]


def test_nested_lookup_applies_each_targets_rule_filter() -> None:
    inner = {"from": "authors", "pipeline": [{"$limit": 1}], "as": "a"}
    outer = {"from": "books", "pipeline": [{"$lookup": inner}], "as": "b"}
    pipeline = check([{"$lookup": outer}])[0]["$lookup"]["pipeline"]
    assert pipeline[:2] == [{"$match": OWNED}, {"$unset": ["password"]}]
    nested = pipeline[2]["$lookup"]
    assert nested["from"] == "c_authors"
    assert nested["pipeline"] == [{"$match": OWNED}, {"$unset": ["ssn"]}, {"$limit": 1}]


def test_lookup_nesting_is_capped() -> None:
    lookup: dict = {"from": "public", "pipeline": [], "as": "p"}
    for _ in range(4):
        lookup = {"from": "public", "pipeline": [{"$lookup": lookup}], "as": "p"}
    assert refusal([{"$lookup": lookup}]).endswith("$lookup nested deeper than 4 levels")


def test_lookup_needs_a_join_or_a_pipeline() -> None:
    assert refusal([{"$lookup": {"from": "books", "as": "b"}}]) == (
        "pipeline[0].$lookup: expected localField and foreignField, or a pipeline"
    )
    assert refusal([{"$lookup": {"from": "books", "localField": "title", "as": "b"}}]) == (
        "pipeline[0].$lookup: localField and foreignField go together"
    )


def test_resolver_errors_other_than_plain_pipeline_error_propagate_unchanged() -> None:
    class Forbidden(PipelineError):
        pass

    def forbid(name: str) -> LookupTarget:
        raise Forbidden("no")

    with pytest.raises(Forbidden, match=r"^no$"):
        check_pipeline(
            [{"$lookup": {"from": "books", "pipeline": [], "as": "b"}}],
            fields=NOTES,
            resolve_lookup=forbid,
        )


# Output ownership


def test_output_shares_nothing_with_input_or_targets() -> None:
    pipeline = [
        {"$match": {"tags": {"$in": ["a"]}}},
        {"$project": {"t": {"$literal": {"a": [1]}}}},
        {"$lookup": {"from": "books", "pipeline": [{"$match": {"title": "x"}}], "as": "b"}},
    ]
    before = copy.deepcopy(pipeline)
    out = check(pipeline)
    assert pipeline == before
    assert not _containers(out) & _containers(pipeline)
    out[2]["$lookup"]["pipeline"][0]["$match"]["_owner"] = "u2"
    assert TARGETS["books"].rule_filter == {"_owner": "u1"}


def _containers(value: Any) -> set[int]:
    found: set[int] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            found.add(id(item))
            pending.extend(item.values())
        elif isinstance(item, list):
            found.add(id(item))
            pending.extend(item)
    return found


# Property: whatever comes in, what goes out is safe


STAGE_NAMES = [
    "$match", "$project", "$addFields", "$set", "$unset", "$group", "$sort", "$limit", "$skip",
    "$unwind", "$count", "$facet", "$bucket", "$bucketAuto", "$sortByCount", "$replaceRoot",
    "$replaceWith", "$sample", "$lookup", *FORBIDDEN_STAGES,
]  # fmt: skip
OPERATOR_KEYS = [
    "$sum", "$add", "$map", "$filter", "$reduce", "$let", "$literal", "$getField", "$regexMatch",
    "$cond", "$eq", "$gt", "$in", "$and", "$or", "$not", "$exists", "$regex", "$elemMatch",
    "$setField", "$meta", "$text", *FORBIDDEN_OPERATORS, *FORBIDDEN_STAGES,
]  # fmt: skip
NAMES = [
    "_id", "title", "year", "tags", "secret", "password", "x", "input", "as", "in", "vars", "cond",
    "regex", "initialValue", "field", "newRoot", "groupBy", "boundaries", "path", "size", "n",
]  # fmt: skip
STRINGS = [
    "$title", "$year", "$tags", "$secret", "$secret.a", "$password", "$$ROOT", "$$ROOT.secret",
    "$$this", "$$value", "$$t", "$$SEARCH_META", "$$CLUSTER_TIME", "$$cabinet_local", "x", OID,
]  # fmt: skip
FORBIDDEN_KEYS = set(FORBIDDEN_STAGES) | set(FORBIDDEN_OPERATORS) | {"$setField", "$meta"}
BAD_VARIABLES = ("$$SEARCH_META", "$$CLUSTER_TIME")
HIDDEN = {"c_books": "password", "c_authors": "ssn"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 12) | st.sampled_from(STRINGS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(OPERATOR_KEYS), inner, max_size=1)
        | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)
    ),
    max_leaves=12,
)
flat_stages = st.one_of(
    st.dictionaries(st.sampled_from(STAGE_NAMES), json_values, min_size=1, max_size=1),
    st.builds(lambda spec: {"$match": spec}, st.dictionaries(st.sampled_from(NAMES), json_values)),
    st.builds(
        lambda key, op, arg: {"$group": {"_id": key, "n": {op: arg}}},
        json_values,
        st.sampled_from(OPERATOR_KEYS),
        json_values,
    ),
    st.builds(
        lambda spec: {"$project": spec}, st.dictionaries(st.sampled_from(NAMES), json_values)
    ),
    st.builds(lambda value: {"$addFields": {"x": value}}, json_values),
    st.sampled_from([{"$limit": 5}, {"$unwind": "$tags"}, {"$count": "n"}, {"$sort": {"year": 1}}]),
)


def _with_sub_pipelines(sub_pipelines: st.SearchStrategy) -> st.SearchStrategy:
    sources = st.sampled_from(["books", "authors", "public", "books", "authors", "secret"])
    joins = st.fixed_dictionaries(
        {
            "from": sources,
            "as": st.just("j"),
            "localField": st.sampled_from(["title", "tags", "title", "secret"]),
            "foreignField": st.sampled_from(["title", "_id", "title", "password"]),
        },
        optional={"pipeline": sub_pipelines},
    )
    sub_queries = st.fixed_dictionaries(
        {"from": sources, "as": st.just("j"), "pipeline": sub_pipelines},
        optional={
            "let": st.dictionaries(st.sampled_from(["t", "t", "cabinet_local"]), json_values)
        },
    )
    return st.lists(
        st.one_of(
            flat_stages,
            st.builds(lambda spec: {"$lookup": spec}, joins | sub_queries),
            st.builds(lambda sub: {"$facet": {"f": sub}}, sub_pipelines),
        ),
        max_size=4,
    )


pipelines = st.recursive(st.lists(flat_stages, max_size=4), _with_sub_pipelines, max_leaves=6)


def _assert_safe(value: Any, hidden: str | None) -> None:
    """No forbidden key (`$expr` included) or variable anywhere, no reference to a hidden field,
    and every $lookup opens with its target's rule filter."""
    if isinstance(value, list):
        for item in value:
            _assert_safe(item, hidden)
    elif isinstance(value, dict):
        for key, item in value.items():
            assert key not in FORBIDDEN_KEYS
            if key == "$literal":
                continue
            if key == "$match":  # a query: its strings are values, its keys are the paths
                _assert_safe_query(item, hidden)
                continue
            if key == "$lookup":
                target = item["from"]
                assert target in ("c_books", "c_authors", "c_public")
                if target in HIDDEN:
                    assert item["pipeline"][:2] == [
                        {"$match": OWNED},
                        {"$unset": [HIDDEN[target]]},
                    ]
                if "localField" in item:  # the join is kept as written, on visible fields only
                    assert not hidden or item["localField"].split(".")[0] != hidden
                    assert item["foreignField"].split(".")[0] != HIDDEN.get(target)
                _assert_safe(item.get("let", {}), hidden)
                _assert_safe(item["pipeline"], HIDDEN.get(target))
                continue
            _assert_safe(item, hidden)
    elif isinstance(value, str):
        assert not value.startswith(BAD_VARIABLES)
        if hidden:
            assert value != f"${hidden}" and not value.startswith(f"${hidden}.")
            assert not value.startswith(f"$$ROOT.{hidden}")


def _assert_safe_query(value: Any, hidden: str | None) -> None:
    if isinstance(value, list):
        for item in value:
            _assert_safe_query(item, hidden)
    elif isinstance(value, dict):
        for key, item in value.items():
            assert key not in FORBIDDEN_KEYS
            assert key != "$expr"
            assert not hidden or key.split(".")[0] != hidden
            if not key.startswith("$") and not _is_operator_document(item):
                continue  # a literal compared by equality: its keys name no field
            _assert_safe_query(item, hidden)


def _is_operator_document(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines)
def test_any_pipeline_is_refused_or_comes_out_safe(pipeline: list) -> None:
    before = copy.deepcopy(pipeline)
    try:
        out = check(pipeline)
    except PipelineError:
        return
    assert pipeline == before
    assert not _containers(out) & _containers(pipeline)
    _assert_safe(out, "secret")


wild_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(STRINGS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(STAGE_NAMES + OPERATOR_KEYS + NAMES),
            inner,
            max_size=3,
        )
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(wild_values)
def test_any_json_raises_nothing_but_pipeline_error(pipeline: Any) -> None:
    for candidate in (pipeline, [pipeline]):
        with contextlib.suppress(PipelineError):
            check(candidate)


# Servers that skip a late $lookup's own pipeline


def test_late_join_is_refused_where_the_server_would_skip_its_rule_filter() -> None:
    join = {"$lookup": {"from": "books", "localField": "title", "foreignField": "title", "as": "b"}}
    message = refusal([{"$addFields": {"x": 1}}, join], late_joins=False)
    assert message.startswith("pipeline[1].$lookup: this database cannot apply access rules")
    assert "move it before them" in refusal([{"$facet": {"f": [join]}}], late_joins=False)
    nested = {"$lookup": {"from": "books", "pipeline": [join], "as": "n"}}
    assert "move it before them" in refusal([nested], late_joins=False)


def test_early_join_passes_where_the_server_skips_late_rule_filters() -> None:
    join = {"$lookup": {"from": "books", "localField": "title", "foreignField": "title", "as": "b"}}
    out = check([{"$match": {"title": "x"}}, {"$sort": {"title": 1}}, join], late_joins=False)
    assert out[2]["$lookup"]["pipeline"][0] == {"$match": {"_owner": "u1"}}
