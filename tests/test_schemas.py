"""Collection schemas: what compiles, what a compiled schema accepts, and the field map."""

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.fields import FieldSpec
from api.schema_compiler import MAX_PROPERTIES, compile_schema
from api.schemas import CompiledSchema, DocumentInvalid, SchemaError

# A serializer falling back to guesswork warns; that would be a bug here.
pytestmark = pytest.mark.filterwarnings("error")


def obj(properties: dict, **keywords: object) -> dict:
    return {"type": "object", "properties": properties, **keywords}


def compiled(properties: dict, **keywords: object) -> CompiledSchema:
    return compile_schema(obj(properties, **keywords))


def field(schema: dict, **keywords: object) -> CompiledSchema:
    """A schema with a single optional property `x`."""
    return compiled({"x": schema}, **keywords)


def schema_errors(schema: object) -> list[dict]:
    with pytest.raises(SchemaError) as caught:
        compile_schema(schema)
    return caught.value.errors


def document_errors(schema: CompiledSchema, document: object) -> list[dict]:
    with pytest.raises(DocumentInvalid) as caught:
        schema.validate(document)
    return caught.value.errors


def locs(errors: list[dict]) -> list[list]:
    return [error["loc"] for error in errors]


# --- the schema itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [{"type": "string"}, {"type": ["object", "null"]}, {"properties": {}}, [], "object", None],
)
def test_top_level_must_be_an_object_schema(schema: object) -> None:
    assert locs(schema_errors(schema)) == [["schema"]]


def test_minimal_schema_compiles_to_a_model() -> None:
    result = compile_schema({"type": "object"})
    assert result.schema == {"type": "object"}
    assert result.fields == {}
    assert result.validate({}) == {}
    assert result.model.model_config["strict"] is True


def test_unknown_keyword_is_rejected_with_its_path() -> None:
    errors = schema_errors(
        obj({"a": {"type": "object", "properties": {"b": {"type": "string", "$ref": "#"}}}})
    )
    assert locs(errors) == [["schema", "properties", "a", "properties", "b", "$ref"]]
    assert "$ref" in errors[0]["msg"]


@pytest.mark.parametrize("keyword", ["oneOf", "allOf", "const", "patternProperties", "if", "$defs"])
def test_other_json_schema_keywords_are_rejected(keyword: str) -> None:
    assert locs(schema_errors(obj({}, **{keyword: []}))) == [["schema", keyword]]


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "integer", "minLength": 1}, "minLength"),
        ({"type": "string", "minimum": 1}, "minimum"),
        ({"type": "string", "items": {"type": "string"}}, "items"),
        ({"type": "array", "properties": {}}, "properties"),
        ({"type": "number", "format": "email"}, "format"),
    ],
)
def test_keyword_of_another_type_is_rejected(schema: dict, keyword: str) -> None:
    assert locs(schema_errors(obj({"x": schema}))) == [["schema", "properties", "x", keyword]]


def test_keyword_of_one_member_of_a_type_list_is_accepted() -> None:
    result = field({"type": ["string", "integer"], "minLength": 2, "minimum": 10})
    assert result.validate({"x": "ab"}) == {"x": "ab"}
    assert result.validate({"x": 10}) == {"x": 10}
    assert locs(document_errors(result, {"x": "a"})) == [["x"]]
    assert locs(document_errors(result, {"x": 9})) == [["x"]]


@pytest.mark.parametrize(
    "type_", ["text", ["string", "string"], [], ["string", 1], {"a": 1}, None, 3, ["null", "any"]]
)
def test_type_must_name_json_types_once(type_: object) -> None:
    assert locs(schema_errors(obj({"x": {"type": type_}}))) == [
        ["schema", "properties", "x", "type"]
    ]


def test_subschema_without_type_is_rejected() -> None:
    errors = schema_errors(obj({"x": {"minLength": 1}}))
    assert locs(errors) == [["schema", "properties", "x", "type"]]
    assert errors[0]["msg"].startswith("type should be one of")


def test_subschema_must_be_an_object() -> None:
    assert locs(schema_errors(obj({"x": "string"}))) == [["schema", "properties", "x"]]


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "string", "minLength": "3"}, "minLength"),
        ({"type": "string", "minLength": -1}, "minLength"),
        ({"type": "string", "maxLength": 2.0}, "maxLength"),
        ({"type": "string", "maxLength": True}, "maxLength"),
        ({"type": "string", "pattern": 5}, "pattern"),
        ({"type": "string", "format": "hostname"}, "format"),
        ({"type": "string", "format": ["email"]}, "format"),
        ({"type": "integer", "minimum": "0"}, "minimum"),
        ({"type": "integer", "maximum": True}, "maximum"),
        ({"type": "number", "maximum": 10**400}, "maximum"),
        ({"type": "array", "minItems": None}, "minItems"),
        ({"type": "array", "uniqueItems": "yes"}, "uniqueItems"),
        ({"type": "array", "items": [{"type": "string"}]}, "items"),
        ({"type": "object", "properties": []}, "properties"),
        ({"type": "object", "additionalProperties": {}}, "additionalProperties"),
        ({"type": "object", "required": "a"}, "required"),
        ({"type": "string", "writeOnly": "true"}, "writeOnly"),
        ({"type": "string", "title": 1}, "title"),
        ({"type": "string", "description": None}, "description"),
        ({"type": "string", "enum": "a"}, "enum"),
    ],
)
def test_keyword_values_must_have_the_right_json_type(schema: dict, keyword: str) -> None:
    assert locs(schema_errors(obj({"x": schema}))) == [["schema", "properties", "x", keyword]]


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "string", "minLength": 3, "maxLength": 2}, "minLength"),
        ({"type": "integer", "minimum": 3, "maximum": 2.5}, "minimum"),
        ({"type": "array", "minItems": 3, "maxItems": 2}, "minItems"),
    ],
)
def test_lower_bound_above_upper_bound_is_rejected(schema: dict, keyword: str) -> None:
    errors = schema_errors(obj({"x": schema}))
    assert locs(errors) == [["schema", "properties", "x", keyword]]
    assert "greater than" in errors[0]["msg"]


def test_required_names_must_be_declared_properties() -> None:
    errors = schema_errors(obj({"a": {"type": "string"}}, required=["a", "b"]))
    assert locs(errors) == [["schema", "required", 1]]
    assert "'b'" in errors[0]["msg"]


def test_required_names_must_not_repeat() -> None:
    assert locs(schema_errors(obj({"a": {"type": "string"}}, required=["a", "a"]))) == [
        ["schema", "required"]
    ]


@pytest.mark.parametrize(
    "name", ["_x", "$set", "a.b", "__proto__", "1a", "a-b", "", "é", "a" * 65, "a\n", " a"]
)
def test_invalid_field_names_are_rejected(name: str) -> None:
    errors = schema_errors(obj({"ok": obj({name: {"type": "string"}})}))
    assert locs(errors) == [["schema", "properties", "ok", "properties", name]]


def test_underscore_field_name_rejected() -> None:
    errors = schema_errors(obj({"_owner": {"type": "string"}}))
    assert errors == [
        {
            "loc": ["schema", "properties", "_owner"],
            "msg": "Field name '_owner' is not allowed: names start with a letter and "
            "contain only letters, digits and underscores",
        }
    ]


def test_longest_field_name_and_pythonic_names_are_accepted() -> None:
    names = ["a" * 64, "json", "copy", "model_config", "model_dump", "schema", "validate", "f0"]
    result = compiled({name: {"type": "integer"} for name in names})
    document = {name: i for i, name in enumerate(names)}
    assert result.validate(document) == document
    assert set(result.fields) == set(names)


def test_several_problems_are_reported_together() -> None:
    errors = schema_errors(
        obj({"a": {"type": "string", "minLength": "1"}, "b": {"type": "integer", "nope": 1}})
    )
    assert locs(errors) == [
        ["schema", "properties", "a", "minLength"],
        ["schema", "properties", "b", "nope"],
    ]


def test_default_must_match_the_field_schema() -> None:
    errors = schema_errors(obj({"a": {"type": "string", "maxLength": 2, "default": "abc"}}))
    assert locs(errors) == [["schema", "properties", "a", "default"]]
    assert errors[0]["msg"].startswith("Default is invalid")


def test_nested_default_error_points_inside_the_default() -> None:
    schema = obj({"a": obj({"b": {"type": "integer"}}, default={"b": "1"})})
    assert locs(schema_errors(schema)) == [["schema", "properties", "a", "default", "b"]]


def test_required_field_with_a_default_is_rejected() -> None:
    schema = obj({"a": {"type": "string", "default": "x"}}, required=["a"])
    assert locs(schema_errors(schema)) == [["schema", "properties", "a", "default"]]


@pytest.mark.parametrize("keyword", ["default", "writeOnly"])
def test_document_level_default_and_write_only_are_rejected(keyword: str) -> None:
    assert locs(schema_errors(obj({}, **{keyword: True}))) == [["schema", keyword]]


@pytest.mark.parametrize(
    ("schema", "loc"),
    [
        ({"type": "string", "enum": []}, ["enum"]),
        ({"type": "string", "enum": ["a", "a"]}, ["enum"]),
        ({"type": "string", "enum": ["a", 1]}, ["enum", 1]),
        ({"type": "integer", "enum": [1, 1.0]}, ["enum"]),
        ({"type": "string", "enum": ["a", None]}, ["enum", 1]),
        ({"type": "array", "enum": [[1]]}, ["enum"]),
        ({"type": "string", "maxLength": 1, "enum": ["ab"]}, ["enum", 0]),
    ],
)
def test_enum_must_be_distinct_values_valid_for_the_type(schema: dict, loc: list) -> None:
    assert locs(schema_errors(obj({"x": schema}))) == [["schema", "properties", "x", *loc]]


def test_enum_counts_one_and_true_as_distinct() -> None:
    result = field({"type": ["integer", "boolean"], "enum": [1, True]})
    assert result.validate({"x": 1}) == {"x": 1}
    assert result.validate({"x": True}) == {"x": True}
    assert locs(document_errors(result, {"x": False})) == [["x"]]


def test_pattern_longer_than_the_cap_is_rejected() -> None:
    assert compile_schema(obj({"x": {"type": "string", "pattern": "a" * 512}}))
    errors = schema_errors(obj({"x": {"type": "string", "pattern": "a" * 513}}))
    assert locs(errors) == [["schema", "properties", "x", "pattern"]]


@pytest.mark.parametrize("pattern", ["(?=a)b", r"(a)\1", "(", "a{99999}{99999}", "[z-a]"])
def test_pattern_the_rust_engine_refuses_is_rejected(pattern: str) -> None:
    errors = schema_errors(obj({"x": {"type": "string", "pattern": pattern}}))
    assert locs(errors) == [["schema", "properties", "x", "pattern"]]
    assert errors[0]["msg"].startswith("pattern is not a supported regular expression")


def test_rust_regex_pattern_is_used() -> None:
    result = field({"type": "string", "pattern": "^(a+)+$"})
    assert result.model.model_config["regex_engine"] == "rust-regex"
    # Catastrophic for a backtracking engine, linear for rust-regex.
    started = time.perf_counter()
    assert locs(document_errors(result, {"x": "a" * 5000 + "!"})) == [["x"]]
    assert time.perf_counter() - started < 1.0


def test_pattern_matches_anywhere_in_the_string() -> None:
    result = field({"type": "string", "pattern": "b+"})
    assert result.validate({"x": "abbc"}) == {"x": "abbc"}
    errors = document_errors(result, {"x": "ac"})
    assert errors == [{"loc": ["x"], "msg": "String should match pattern 'b+'"}]


def nested_objects(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = obj({"a": schema})
    return schema


def test_nesting_of_eight_levels_is_accepted() -> None:
    result = compile_schema(nested_objects(8))
    assert "a.a.a.a.a.a.a" in result.fields


def test_nesting_deeper_than_eight_levels_is_rejected() -> None:
    errors = schema_errors(nested_objects(9))
    assert locs(errors) == [["schema", *["properties", "a"] * 8]]


def test_arrays_count_towards_the_nesting_depth() -> None:
    schema: dict = {"type": "string"}
    for _ in range(4):
        schema = {"type": "array", "items": obj({"a": schema})}
    assert compile_schema(obj({"a": schema["items"]["properties"]["a"]}))  # 8 levels
    errors = schema_errors(obj({"a": schema}))  # 9 levels
    assert locs(errors) == [
        ["schema", "properties", "a", *["items", "properties", "a"] * 3, "items"]
    ]


def test_at_most_500_properties_in_all() -> None:
    half = {f"p{i}": {"type": "integer"} for i in range(250)}
    assert (
        len(compile_schema(obj({"a": obj(half), "b": obj(dict(list(half.items())[:248]))})).fields)
        == 500
    )
    errors = schema_errors(obj({"a": obj(half), "b": obj(dict(list(half.items())[:249]))}))
    assert MAX_PROPERTIES == 500
    assert locs(errors) == [["schema", "properties", "b"]]


def test_non_json_values_give_schema_error() -> None:
    for bad in [
        obj({"x": {"type": "number", "maximum": float("nan")}}),
        obj({"x": {"type": "string", "enum": {"a"}}}),
        obj({"x": {"type": "string", "default": object()}}),
        {"type": "object", 1: "x", "a": 2},
    ]:
        assert schema_errors(bad)


def test_deeply_nested_input_gives_schema_error() -> None:
    hostile: object = {}
    for _ in range(100_000):
        hostile = {"properties": hostile, "type": "object"}
    assert schema_errors(hostile)
    deep: object = []
    for _ in range(150):
        deep = [deep]
    errors = schema_errors(obj({"x": {"type": "array", "default": deep}}))
    assert [e["msg"] for e in errors] == ["Default is invalid: Value is nested too deeply"]
    assert errors[0]["loc"][:5] == ["schema", "properties", "x", "default", 0]


KEYWORDS = sorted(
    {"type", "properties", "items", "required", "enum", "default", "minLength", "maxLength"}
    | {"minimum", "maximum", "pattern", "format", "uniqueItems", "minItems", "maxItems"}
    | {"additionalProperties", "writeOnly", "title", "description"}
)
TYPE_NAMES = ["object", "string", "integer", "number", "boolean", "array", "null"]


def json_values(floats: st.SearchStrategy) -> tuple[st.SearchStrategy, st.SearchStrategy]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | floats
        | st.text(max_size=5)
        | st.sampled_from([*TYPE_NAMES, "date-time", "email", "uri", "uuid", "^a", "(?=a)", "a"])
    )
    values = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from([*KEYWORDS, "a", "_c"]) | st.text(max_size=3), children
            )
        ),
        max_leaves=30,
    )
    return scalars, values


_, JSON = json_values(st.floats())  # NaN and infinities included: Python's json reads them
SCALARS, FINITE_JSON = json_values(st.floats(allow_nan=False, allow_infinity=False))
NAMES = st.sampled_from(["a", "b", "c", "d", "json", "copy", "model_config", "x", "y", "_c"])
SMALL_INTS = st.integers(min_value=-1, max_value=4)


def typed(type_: object, **keywords: st.SearchStrategy) -> st.SearchStrategy:
    common = {"enum": st.lists(SCALARS, min_size=1, max_size=3), "default": FINITE_JSON}
    optional = {**common, "writeOnly": st.booleans(), "title": st.text(max_size=3), **keywords}
    types = type_ if isinstance(type_, st.SearchStrategy) else st.just(type_)
    return st.fixed_dictionaries({"type": types}, optional=optional)


def subschemas(children: st.SearchStrategy) -> st.SearchStrategy:
    """Schemas of each type with their own keywords, often well-formed, and some odd mixes."""
    lengths = {"minLength": SMALL_INTS, "maxLength": SMALL_INTS}
    finite = st.floats(allow_nan=False, allow_infinity=False)
    bounds = {"minimum": SMALL_INTS | finite, "maximum": SMALL_INTS | finite}
    patterns = st.sampled_from(["^a", "b$", "(", "(?=x)", r"\d", "é+"])
    formats = st.sampled_from(["date-time", "email", "uri", "uuid", "ipv4"])
    array = {
        "items": children,
        "minItems": SMALL_INTS,
        "maxItems": SMALL_INTS,
        "uniqueItems": st.booleans(),
    }
    object_ = {
        "properties": st.dictionaries(NAMES, children, max_size=3),
        "required": st.lists(NAMES, max_size=2),
        "additionalProperties": st.booleans(),
    }
    return st.one_of(
        typed("string", **lengths, pattern=patterns, format=formats),
        typed("integer", **bounds) | typed("number", **bounds),
        typed("boolean") | typed("null"),
        typed("array", **array) | typed("object", **object_),
        typed(st.sampled_from(TYPE_NAMES), **lengths, **bounds, **array, **object_),
        typed(
            st.lists(st.sampled_from(TYPE_NAMES), max_size=3),
            **lengths,
            **bounds,
            **array,
            **object_,
            format=formats,
            pattern=patterns,
            extra=JSON,
        ),
    )


SCHEMAS = st.builds(
    lambda properties, open_: obj(properties, additionalProperties=open_),
    st.dictionaries(NAMES, st.recursive(subschemas(st.nothing()), subschemas, max_leaves=6)),
    st.booleans(),
)


def assert_clean_schema_error(error: SchemaError) -> None:
    assert error.errors
    for e in error.errors:
        assert e["loc"][0] == "schema"
        assert e["msg"] != "Schema could not be compiled"  # every refusal names its reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=JSON | SCHEMAS | st.builds(obj, st.dictionaries(NAMES, JSON, max_size=3)))
def test_hostile_schema_values_give_schema_error(schema: object) -> None:
    try:
        result = compile_schema(schema)
    except SchemaError as error:
        assert_clean_schema_error(error)
    else:
        assert isinstance(result, CompiledSchema)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schema=SCHEMAS,
    documents=st.lists(st.dictionaries(NAMES | st.sampled_from(["$x", "x", "_id"]), JSON) | JSON),
)
def test_documents_against_random_schemas_give_document_invalid(
    schema: dict, documents: list
) -> None:
    try:
        result = compile_schema(schema)
    except SchemaError as error:
        assert_clean_schema_error(error)
        return
    for document in documents:
        try:
            clean = result.validate(document)
        except DocumentInvalid as error:
            assert error.errors
            for e in error.errors:
                assert all(isinstance(part, str | int) for part in e["loc"])
                assert "pydantic" not in e["msg"] and "http" not in e["msg"]
        else:
            assert isinstance(clean, dict)
            assert result.validate(clean) == clean  # what was stored validates again


def test_compile_is_memoised_by_canonical_json() -> None:
    first = compile_schema(obj({"a": {"type": "string"}, "b": {"type": "integer"}}))
    again = compile_schema(
        {"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "type": "object"}
    )
    assert again is first
    assert compile_schema(obj({"a": {"type": "string"}})) is not first


def test_compiled_schema_keeps_the_canonical_schema() -> None:
    source = obj({"a": {"type": "string", "enum": ["x"]}})
    result = compile_schema(source)
    source["properties"]["a"]["enum"].append("y")
    assert result.schema == obj({"a": {"type": "string", "enum": ["x"]}})


# --- validating documents ----------------------------------------------------------------------


def test_document_must_be_an_object() -> None:
    result = compiled({})
    bad: object
    for bad in ([], "x", None, 1):
        assert document_errors(result, bad) == [
            {"loc": [], "msg": "Document should be a JSON object"}
        ]


def test_string_is_not_an_integer() -> None:
    assert document_errors(field({"type": "integer"}), {"x": "1999"}) == [
        {"loc": ["x"], "msg": "Input should be a valid integer"}
    ]


def test_boolean_is_not_an_integer() -> None:
    assert locs(document_errors(field({"type": "integer"}), {"x": True})) == [["x"]]


def test_boolean_is_not_a_number() -> None:
    assert document_errors(field({"type": "number"}), {"x": True}) == [
        {"loc": ["x"], "msg": "Input should be a valid number"}
    ]


def test_yes_is_not_a_boolean() -> None:
    result = field({"type": "boolean"})
    assert document_errors(result, {"x": "yes"}) == [
        {"loc": ["x"], "msg": "Input should be a valid boolean"}
    ]
    assert locs(document_errors(result, {"x": 1})) == [["x"]]
    assert result.validate({"x": False}) == {"x": False}


def test_number_is_not_a_string() -> None:
    assert document_errors(field({"type": "string"}), {"x": 1}) == [
        {"loc": ["x"], "msg": "Input should be a valid string"}
    ]


def test_integral_float_is_stored_as_an_integer() -> None:
    clean = field({"type": "integer"}).validate({"x": 3.0})
    assert clean == {"x": 3}
    assert type(clean["x"]) is int


def test_fractional_float_is_not_an_integer() -> None:
    assert locs(document_errors(field({"type": "integer"}), {"x": 3.5})) == [["x"]]


def test_number_accepts_ints_and_floats_keeping_ints() -> None:
    result = field({"type": "number"})
    assert type(result.validate({"x": 3})["x"]) is int
    assert result.validate({"x": 2.5}) == {"x": 2.5}


def test_non_finite_numbers_are_rejected() -> None:
    result = field({"type": "number"})
    for value in (float("nan"), float("inf"), float("-inf")):
        assert document_errors(result, {"x": value}) == [
            {"loc": ["x"], "msg": "Input should be a finite number"}
        ]


def test_integer_beyond_int64_is_rejected() -> None:
    result = field({"type": "integer"})
    assert result.validate({"x": 2**63 - 1}) == {"x": 2**63 - 1}
    assert locs(document_errors(result, {"x": 2**63})) == [["x"]]


def test_minimum_and_maximum_are_inclusive() -> None:
    for type_ in ("integer", "number"):
        result = field({"type": type_, "minimum": 1, "maximum": 3})
        assert result.validate({"x": 1}) == {"x": 1}
        assert result.validate({"x": 3}) == {"x": 3}
        assert document_errors(result, {"x": 0}) == [
            {"loc": ["x"], "msg": "Input should be greater than or equal to 1"}
        ]
        assert locs(document_errors(result, {"x": 4})) == [["x"]]
    assert locs(document_errors(field({"type": "number", "maximum": 3}), {"x": 3.01})) == [["x"]]


def test_fractional_bounds_on_an_integer() -> None:
    result = field({"type": "integer", "minimum": 0.5, "maximum": 2.5})
    assert result.validate({"x": 1}) == {"x": 1}
    assert locs(document_errors(result, {"x": 0})) == [["x"]]
    assert locs(document_errors(result, {"x": 3})) == [["x"]]


def test_min_and_max_length_count_characters() -> None:
    result = field({"type": "string", "minLength": 2, "maxLength": 3})
    assert result.validate({"x": "éé"}) == {"x": "éé"}
    assert document_errors(result, {"x": "a"}) == [
        {"loc": ["x"], "msg": "String should have at least 2 characters"}
    ]
    assert locs(document_errors(result, {"x": "abcd"})) == [["x"]]


def test_string_enum() -> None:
    result = field({"type": "string", "enum": ["draft", "published"]})
    assert result.validate({"x": "draft"}) == {"x": "draft"}
    assert document_errors(result, {"x": "gone"}) == [
        {"loc": ["x"], "msg": "Input should be one of: 'draft', 'published'"}
    ]


def test_numeric_enum_is_exact() -> None:
    result = field({"type": "number", "enum": [1, 2.5]})
    assert result.validate({"x": 2.5}) == {"x": 2.5}
    assert result.validate({"x": 1.0}) == {"x": 1.0}
    assert locs(document_errors(result, {"x": True})) == [["x"]]


def test_nullable_enum_needs_null_listed() -> None:
    result = field({"type": ["string", "null"], "enum": ["a"]})
    assert locs(document_errors(result, {"x": None})) == [["x"]]
    assert field({"type": ["string", "null"], "enum": ["a", None]}).validate({"x": None}) == {
        "x": None
    }


def test_missing_optional_field_stays_absent() -> None:
    result = compiled({"a": {"type": ["string", "null"]}, "b": obj({"c": {"type": "integer"}})})
    assert result.validate({}) == {}
    assert result.validate({"b": {}}) == {"b": {}}


def test_missing_required_field_is_reported() -> None:
    result = compiled({"a": obj({"b": {"type": "string"}}, required=["b"])}, required=["a"])
    assert document_errors(result, {}) == [{"loc": ["a"], "msg": "Field required"}]
    assert document_errors(result, {"a": {}}) == [{"loc": ["a", "b"], "msg": "Field required"}]


def test_null_accepted_only_where_the_type_allows_it() -> None:
    assert field({"type": ["integer", "null"]}).validate({"x": None}) == {"x": None}
    assert document_errors(field({"type": "integer"}), {"x": None}) == [
        {"loc": ["x"], "msg": "Input should be a valid integer"}
    ]
    assert document_errors(field({"type": "null"}), {"x": 0}) == [
        {"loc": ["x"], "msg": "Input should be null"}
    ]


def test_default_filled_for_absent_field() -> None:
    result = field({"type": "string", "default": "draft"})
    assert result.validate({}) == {"x": "draft"}
    assert result.validate({"x": "done"}) == {"x": "done"}


def test_default_filled_for_absent_nested_field() -> None:
    result = compiled({"a": obj({"b": {"type": "integer", "default": 7}, "c": {"type": "string"}})})
    assert result.validate({"a": {}}) == {"a": {"b": 7}}
    assert result.validate({"a": {"c": "x"}}) == {"a": {"b": 7, "c": "x"}}


def test_default_not_filled_when_the_parent_is_absent() -> None:
    result = compiled({"a": obj({"b": {"type": "integer", "default": 7}})})
    assert result.validate({}) == {}


def test_default_filled_in_array_items() -> None:
    result = field({"type": "array", "items": obj({"b": {"type": "integer", "default": 1}})})
    assert result.validate({"x": [{}, {"b": 2}]}) == {"x": [{"b": 1}, {"b": 2}]}


def test_explicit_null_is_not_replaced_by_the_default() -> None:
    result = field({"type": ["string", "null"], "default": "a"})
    assert result.validate({"x": None}) == {"x": None}


def test_mutable_default_is_not_shared_between_documents() -> None:
    result = field({"type": "array", "items": {"type": "integer"}, "default": [1]})
    first = result.validate({})
    first["x"].append(2)
    assert result.validate({}) == {"x": [1]}


def test_date_time_default_is_stored_as_a_datetime() -> None:
    result = field({"type": "string", "format": "date-time", "default": "2026-01-01T00:00:00Z"})
    assert result.validate({}) == {"x": datetime(2026, 1, 1, tzinfo=UTC)}


def test_extra_key_is_rejected_naming_it() -> None:
    result = compiled({"a": obj({"b": {"type": "string"}})})
    assert document_errors(result, {"a": {"b": "x", "zz": 1}}) == [
        {"loc": ["a", "zz"], "msg": "Unknown field 'zz' is not allowed"}
    ]


def test_additional_properties_true_allows_extra_keys() -> None:
    result = compiled({"a": {"type": "string"}}, additionalProperties=True)
    document = {"a": "x", "extra": {"nested": [1, {"deep": None}]}}
    assert result.validate(document) == document


def test_additional_properties_is_per_object() -> None:
    result = compiled({"a": obj({})}, additionalProperties=True)
    assert result.validate({"b": 1}) == {"b": 1}
    assert locs(document_errors(result, {"a": {"b": 1}})) == [["a", "b"]]


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({"$where": 1}, ["$where"]),
        ({"a.b": 1}, ["a.b"]),
        ({"_id": 1}, ["_id"]),
        ({"ok": {"in": [{"$gt": 1}]}}, ["ok", "in", 0, "$gt"]),
        ({"ok": [[{"good": {"_bad": 1}}]]}, ["ok", 0, 0, "good", "_bad"]),
    ],
)
def test_extra_keys_must_be_valid_field_names_at_every_depth(document: dict, loc: list) -> None:
    result = compiled({}, additionalProperties=True)
    errors = document_errors(result, document)
    assert locs(errors) == [loc]
    assert str(loc[-1]) in errors[0]["msg"]


def test_untyped_array_items_must_use_valid_field_names() -> None:
    result = field({"type": "array"})
    assert result.validate({"x": [1, "a", {"b": [None]}]}) == {"x": [1, "a", {"b": [None]}]}
    assert locs(document_errors(result, {"x": [1, {"$b": 1}]})) == [["x", 1, "$b"]]


def test_untyped_values_must_be_storable() -> None:
    result = compiled({}, additionalProperties=True)
    deep: object = 1
    for _ in range(150):
        deep = [deep]
    assert document_errors(result, {"a": deep})[0]["msg"] == "Value is nested too deeply"
    assert locs(document_errors(result, {"a": [2**64]})) == [["a", 0]]
    assert locs(document_errors(result, {"a": {"b": {1, 2}}})) == [["a", "b"]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T13:00:00+01:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31t07:30:00-04:30", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.5z", datetime(2026, 1, 31, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-31 12:00:00.123456789Z", datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_date_time_stored_as_utc_datetime(value: str, expected: datetime) -> None:
    clean = field({"type": "string", "format": "date-time"}).validate({"x": value})
    assert clean == {"x": expected}
    assert clean["x"].utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-31T12:00:00",
        "2026-01-31",
        "12:00:00Z",
        "2026-02-30T12:00:00Z",
        "2026-01-31T25:00:00Z",
        "2026-01-31T12:00Z",
        "1769860800",
        "0001-01-01T00:00:00+01:00",
        " 2026-01-31T12:00:00Z",
    ],
)
def test_date_time_without_a_valid_rfc3339_form_is_rejected(value: str) -> None:
    assert locs(
        document_errors(field({"type": "string", "format": "date-time"}), {"x": value})
    ) == [["x"]]


def test_date_time_must_be_a_string_in_json() -> None:
    result = field({"type": "string", "format": "date-time"})
    assert locs(document_errors(result, {"x": 1769860800})) == [["x"]]


def test_stored_bson_dates_validate_again() -> None:
    result = field({"type": "string", "format": "date-time"})
    naive_utc = datetime(2026, 1, 31, 12)  # as pymongo returns BSON dates
    assert result.validate({"x": naive_utc}) == {"x": datetime(2026, 1, 31, 12, tzinfo=UTC)}
    aware = datetime(2026, 1, 31, 14, tzinfo=timezone(timedelta(hours=2)))
    assert result.validate({"x": aware}) == {"x": datetime(2026, 1, 31, 12, tzinfo=UTC)}


def test_email_format() -> None:
    result = field({"type": "string", "format": "email"})
    assert result.validate({"x": "Ada.Lovelace@example.com"}) == {"x": "Ada.Lovelace@example.com"}
    for bad in ("ada", "ada@", "@example.com", "Ada <ada@example.com>", "a b@example.com"):
        assert document_errors(result, {"x": bad}) == [
            {"loc": ["x"], "msg": "Input should be a valid email address"}
        ]


def test_uri_format() -> None:
    result = field({"type": "string", "format": "uri"})
    for good in ("https://example.com/a?b=c#d", "urn:isbn:0451450523", "mailto:a@example.com"):
        assert result.validate({"x": good}) == {"x": good}
    for bad in ("/relative/path", "example.com", "http://exa mple.com", "1http://x", "http:"):
        assert locs(document_errors(result, {"x": bad})) == [["x"]]


def test_uuid_format_keeps_the_string() -> None:
    result = field({"type": "string", "format": "uuid"})
    value = str(uuid.uuid4())
    assert result.validate({"x": value}) == {"x": value}
    assert result.validate({"x": value.upper()}) == {"x": value.upper()}
    for bad in (value.replace("-", ""), "{" + value + "}", value[:-1], f"urn:uuid:{value}"):
        assert locs(document_errors(result, {"x": bad})) == [["x"]]


def test_array_items_are_validated_with_their_index() -> None:
    result = field({"type": "array", "items": obj({"n": {"type": "integer"}})})
    assert document_errors(result, {"x": [{"n": 1}, {"n": "2"}]}) == [
        {"loc": ["x", 1, "n"], "msg": "Input should be a valid integer"}
    ]


def test_min_and_max_items() -> None:
    result = field({"type": "array", "minItems": 1, "maxItems": 2})
    assert result.validate({"x": [1, "a"]}) == {"x": [1, "a"]}
    assert document_errors(result, {"x": []}) == [
        {"loc": ["x"], "msg": "Array should have at least 1 item"}
    ]
    assert document_errors(result, {"x": [1, 2, 3]}) == [
        {"loc": ["x"], "msg": "Array should have at most 2 items"}
    ]


def test_array_is_not_an_object_nor_a_string() -> None:
    result = compiled({"a": {"type": "array"}, "o": obj({})})
    assert document_errors(result, {"a": "x", "o": []}) == [
        {"loc": ["a"], "msg": "Input should be an array"},
        {"loc": ["o"], "msg": "Input should be an object"},
    ]


@pytest.mark.parametrize(
    "items",
    [[1, 1], ["a", "b", "a"], [{"a": 1, "b": 2}, {"b": 2, "a": 1}], [[1, [2]], [1, [2]]], [1, 1.0]],
)
def test_unique_items_rejects_duplicates(items: list) -> None:
    result = field({"type": "array", "uniqueItems": True})
    assert document_errors(result, {"x": items}) == [
        {"loc": ["x"], "msg": "Array items should be unique"}
    ]


def test_unique_items_tells_one_from_true() -> None:
    result = field({"type": "array", "uniqueItems": True})
    items = [1, True, "1", [1], [True], {"a": 1}, {"a": True}, None, 0, False]
    assert result.validate({"x": items}) == {"x": items}
    assert field({"type": "array", "uniqueItems": False}).validate({"x": [1, 1]}) == {"x": [1, 1]}


def test_type_list_makes_a_union() -> None:
    result = field({"type": ["string", "integer"], "maxLength": 1, "maximum": 5})
    assert result.validate({"x": "a"}) == {"x": "a"}
    assert result.validate({"x": 5}) == {"x": 5}
    assert result.validate({"x": 2.0}) == {"x": 2}
    assert document_errors(result, {"x": True}) == [
        {"loc": ["x"], "msg": "Input should be integer or string"}
    ]
    assert document_errors(result, {"x": "ab"}) == [
        {"loc": ["x"], "msg": "String should have at most 1 character"}
    ]


def test_union_of_object_and_array() -> None:
    result = field(
        {
            "type": ["object", "array", "null"],
            "properties": {"a": {"type": "integer"}},
            "items": {"type": "string"},
        }
    )
    assert result.validate({"x": {"a": 1}}) == {"x": {"a": 1}}
    assert result.validate({"x": ["s"]}) == {"x": ["s"]}
    assert result.validate({"x": None}) == {"x": None}
    assert locs(document_errors(result, {"x": {"a": "1"}})) == [["x", "a"]]
    assert locs(document_errors(result, {"x": [1]})) == [["x", 0]]
    assert document_errors(result, {"x": 1})[0]["msg"] == "Input should be array or null or object"


def test_errors_are_short_and_free_of_internals() -> None:
    result = compiled(
        {"a": obj({"b": {"type": "integer"}}), "c": {"type": "array", "items": obj({})}}
    )
    errors = document_errors(result, {"a": 5, "c": [3]})
    assert errors == [
        {"loc": ["a"], "msg": "Input should be an object"},
        {"loc": ["c", 0], "msg": "Input should be an object"},
    ]
    text = str(errors)
    for internal in ("http", "pydantic", "Object", "Document", "#", "dict", "List"):
        assert internal not in text


def test_several_document_errors_are_reported_together() -> None:
    result = compiled({"a": {"type": "integer"}, "b": {"type": "string"}}, required=["a", "b"])
    assert locs(document_errors(result, {"a": "x", "z": 1})) == [["a"], ["b"], ["z"]]


def test_validate_returns_a_fresh_document() -> None:
    document = {"a": {"b": [1]}}
    result = compiled({"a": obj({"b": {"type": "array"}})})
    clean = result.validate(document)
    assert clean == document
    assert clean is not document


def test_validate_is_fast() -> None:
    result = compiled(
        {
            "title": {"type": "string", "maxLength": 100},
            "year": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "author": obj({"name": {"type": "string"}, "born": {"type": "integer", "default": 0}}),
        }
    )
    document = {"title": "Dune", "year": 1965, "tags": ["sf"] * 10, "author": {"name": "Frank"}}
    started = time.perf_counter()
    for _ in range(2000):
        result.validate(document)
    assert time.perf_counter() - started < 1.0  # about 10 µs each when this was written


# --- the field map -----------------------------------------------------------------------------


def test_fields_map_nested_objects_by_dotted_path() -> None:
    result = compiled(
        {"address": obj({"city": {"type": "string"}, "geo": obj({"lat": {"type": "number"}})})}
    )
    assert result.fields == {
        "address": FieldSpec(frozenset({"object"})),
        "address.city": FieldSpec(frozenset({"string"})),
        "address.geo": FieldSpec(frozenset({"object"})),
        "address.geo.lat": FieldSpec(frozenset({"number"})),
    }


def test_fields_map_array_items_and_their_properties() -> None:
    result = compiled(
        {
            "tags": {"type": "array", "items": {"type": ["string", "null"]}},
            "any": {"type": "array"},
            "people": {"type": "array", "items": obj({"name": {"type": "string"}})},
        }
    )
    assert result.fields == {
        "tags": FieldSpec(frozenset({"array"}), items=FieldSpec(frozenset({"string", "null"}))),
        "any": FieldSpec(frozenset({"array"})),
        "people": FieldSpec(frozenset({"array"}), items=FieldSpec(frozenset({"object"}))),
        "people.name": FieldSpec(frozenset({"string"})),
    }


def test_fields_map_records_formats_and_type_lists() -> None:
    result = compiled(
        {
            "when": {"type": ["string", "null"], "format": "date-time"},
            "n": {"type": ["integer", "number"]},
        }
    )
    assert result.fields == {
        "when": FieldSpec(frozenset({"string", "null"}), format="date-time"),
        "n": FieldSpec(frozenset({"integer", "number"})),
    }


def test_fields_map_write_only_is_inherited() -> None:
    result = compiled(
        {
            "secret": obj({"key": {"type": "string"}}, writeOnly=True),
            "open": obj(
                {"hidden": {"type": "string", "writeOnly": True}, "shown": {"type": "string"}}
            ),
            "list": {"type": "array", "writeOnly": True, "items": obj({"a": {"type": "string"}})},
        }
    )
    write_only = {path for path, spec in result.fields.items() if spec.write_only}
    assert write_only == {"secret", "secret.key", "open.hidden", "list", "list.a"}
    assert result.fields["list"].items == FieldSpec(frozenset({"object"}), write_only=True)


def test_write_only_fields_are_still_validated_and_stored() -> None:
    result = field({"type": "string", "writeOnly": True, "minLength": 8})
    assert result.validate({"x": "hunter22"}) == {"x": "hunter22"}
    assert locs(document_errors(result, {"x": "short"})) == [["x"]]


def test_fields_map_merges_object_and_array_children() -> None:
    result = field(
        {
            "type": ["object", "array"],
            "properties": {"a": {"type": "integer"}},
            "items": obj({"a": {"type": "string"}}),
        }
    )
    assert result.fields["x.a"] == FieldSpec(frozenset({"integer", "string"}))


def test_fields_map_holds_no_system_fields() -> None:
    result = compiled({"title": {"type": "string"}})
    assert list(result.fields) == ["title"]
