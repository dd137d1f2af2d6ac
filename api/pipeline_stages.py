"""Checking the stages whose specs have a fixed shape: `$project`, `$unwind`, `$bucket(Auto)`.

Each returns a fresh spec built from checked parts; the caller's objects are never returned.
"""

from typing import Any

from api.expressions import ExpressionScope, check_accumulator, check_expression
from api.pipeline_syntax import (
    PipelineError,
    at,
    check_field_path,
    check_integer,
    check_literal,
    check_options,
    check_output_name,
    is_hidden,
)

MAX_SAMPLE_SIZE = 10_000  # also the most buckets `$bucketAuto` may ask for


def check_projection(spec: dict, pos: str, prefix: str, scope: ExpressionScope) -> dict:
    out = {}
    for key, value in spec.items():
        path = prefix + check_output_name(key, pos, dotted=True)
        if is_hidden(path, scope.hidden):
            raise PipelineError(f"{pos}: unknown field {path!r}")
        here = at(pos, key)
        # `{"a": {"b": 1}}` is the nested spelling of `{"a.b": 1}`: its keys are paths too.
        if isinstance(value, dict) and value and not any(k.startswith("$") for k in value):
            out[key] = check_projection(value, here, path + ".", scope)
        else:
            out[key] = check_expression(value, here, scope)
    return out


def check_unwind(spec: Any, pos: str, hidden: frozenset[str]) -> Any:
    options = {"path": spec} if isinstance(spec, str) else spec
    allowed = {"path", "includeArrayIndex", "preserveNullAndEmptyArrays"}
    options = check_options(options, pos, allowed, {"path"})
    path = options["path"]
    if not isinstance(path, str) or not path.startswith("$") or path.startswith("$$"):
        raise PipelineError(f"{at(pos, 'path')}: expected a field path such as '$tags'")
    check_field_path(path[1:], pos if isinstance(spec, str) else at(pos, "path"), hidden)
    if isinstance(spec, str):
        return spec
    out: dict = {"path": path}
    if "includeArrayIndex" in options:
        index = options["includeArrayIndex"]
        out["includeArrayIndex"] = check_output_name(
            index, at(pos, "includeArrayIndex"), dotted=True
        )
    if "preserveNullAndEmptyArrays" in options:
        preserve = options["preserveNullAndEmptyArrays"]
        if not isinstance(preserve, bool):
            raise PipelineError(f"{at(pos, 'preserveNullAndEmptyArrays')}: expected a boolean")
        out["preserveNullAndEmptyArrays"] = preserve
    return out


def check_bucket(name: str, spec: Any, pos: str, scope: ExpressionScope) -> dict:
    if name == "$bucket":
        allowed, required = (
            {"groupBy", "boundaries", "default", "output"},
            {"groupBy", "boundaries"},
        )
    else:
        allowed, required = (
            {"groupBy", "buckets", "output", "granularity"},
            {"groupBy", "buckets"},
        )
    spec = check_options(spec, pos, allowed, required)
    out: dict = {"groupBy": check_expression(spec["groupBy"], at(pos, "groupBy"), scope)}
    if "boundaries" in spec:
        if not isinstance(spec["boundaries"], list) or len(spec["boundaries"]) < 2:
            raise PipelineError(f"{at(pos, 'boundaries')}: expected at least two values")
        out["boundaries"] = check_literal(spec["boundaries"], at(pos, "boundaries"))
    if "default" in spec:
        out["default"] = check_literal(spec["default"], at(pos, "default"))
    if "buckets" in spec:
        out["buckets"] = check_integer(spec["buckets"], at(pos, "buckets"), 1, MAX_SAMPLE_SIZE)
    if "granularity" in spec:
        if not isinstance(spec["granularity"], str):
            raise PipelineError(f"{at(pos, 'granularity')}: expected a string")
        out["granularity"] = spec["granularity"]
    if "output" in spec:
        output = spec["output"]
        if not isinstance(output, dict):
            raise PipelineError(f"{at(pos, 'output')}: expected an object")
        out["output"] = {
            check_output_name(key, at(pos, "output"), dotted=False): check_accumulator(
                value, at(at(pos, "output"), key), scope
            )
            for key, value in output.items()
        }
    return out
