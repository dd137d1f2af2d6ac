"""Checking a client's aggregation pipeline so that running it cannot escape the access rules.

Only allowlisted stages and operators pass; the first `$match` goes through the filter checker
(which knows the schema and converts ids and dates); every `$lookup` is rewritten into its pipeline
form with the target's rule filter first, so a join never reaches documents the caller could not
list. The result is a fresh pipeline: the caller's objects are never returned or changed.
"""

import copy
from collections.abc import Callable, Mapping
from typing import Any

from api.expressions import check_accumulator, check_expression
from api.fields import FieldSpec
from api.filters import FilterError, check_filter
from api.pipeline_lookups import LookupTarget, PipelineContext, check_lookup
from api.pipeline_stages import MAX_SAMPLE_SIZE, check_bucket, check_projection, check_unwind
from api.pipeline_syntax import (
    MAX_INT64,
    PipelineError,
    at,
    check_field_path,
    check_integer,
    check_options,
    check_output_name,
)
from api.reshaped_match import check_query

__all__ = ["LookupTarget", "PipelineError", "check_pipeline"]

STAGES = frozenset({
    "$match", "$project", "$addFields", "$set", "$unset", "$group", "$sort", "$limit", "$skip",
    "$unwind", "$count", "$facet", "$bucket", "$bucketAuto", "$sortByCount", "$replaceRoot",
    "$replaceWith", "$sample", "$lookup",
})  # fmt: skip
# After one of these the documents no longer have the collection's shape, so a later `$match`
# cannot be checked against the schema (only against the filter language).
RESHAPING_STAGES = STAGES - {"$match", "$sort", "$limit", "$skip", "$sample"}
MAX_STAGES_PER_PIPELINE = 50
MAX_TOTAL_STAGES = 200
MAX_DEPTH = 32
MAX_NODES = 10_000


def check_pipeline(
    pipeline: object,
    *,
    fields: Mapping[str, FieldSpec],
    resolve_lookup: Callable[[str], LookupTarget],
    allow_write_only: bool = False,
    late_joins: bool = True,
) -> list[dict]:
    """Return a safe copy of `pipeline`, or raise PipelineError naming what is refused and where.

    `late_joins=False` is for a server that skips a `$lookup`'s own pipeline (and with it the
    target's rule filter) once earlier stages reshaped the documents, or inside a sub-pipeline:
    there a `$lookup` is only allowed before any reshaping, at the top level.
    """
    _check_size(pipeline)
    checker = _PipelineChecker(resolve_lookup, allow_write_only, late_joins)
    context = PipelineContext(fields, checker.hidden_paths(fields), frozenset(), 0, in_facet=False)
    return checker.stages(pipeline, "pipeline", context, reshaped=False)


def _check_size(pipeline: object) -> None:
    # Iterative, so that neither a deep nor a self-referencing input can exhaust the stack.
    nodes = 0
    pending: list[tuple[object, int]] = [(pipeline, 1)]
    while pending:
        value, depth = pending.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise PipelineError(f"pipeline: more than {MAX_NODES} values")
        if depth > MAX_DEPTH and isinstance(value, dict | list):
            raise PipelineError(f"pipeline: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or "\x00" in key or len(key) > 256:
                    raise PipelineError("pipeline: invalid object key")
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_INT64 - 1 <= value <= MAX_INT64:
                raise PipelineError("pipeline: integer out of range")
        elif value is not None and not isinstance(value, (str, float, bool)):
            raise PipelineError("pipeline: only JSON values are accepted")


class _PipelineChecker:
    def __init__(
        self,
        resolve_lookup: Callable[[str], LookupTarget],
        allow_write_only: bool,
        late_joins: bool = True,
    ):
        self.resolve_lookup = resolve_lookup
        self.allow_write_only = allow_write_only
        self.late_joins = late_joins
        self.stage_count = 0

    def hidden_paths(self, fields: Mapping[str, FieldSpec]) -> frozenset[str]:
        if self.allow_write_only:
            return frozenset()
        return frozenset(path for path, spec in fields.items() if spec.write_only)

    def stages(
        self, pipeline: object, pos: str, context: PipelineContext, reshaped: bool
    ) -> list[dict]:
        if not isinstance(pipeline, list):
            raise PipelineError(f"{pos}: expected a list of stages")
        if len(pipeline) > MAX_STAGES_PER_PIPELINE:
            raise PipelineError(f"{pos}: more than {MAX_STAGES_PER_PIPELINE} stages")
        out = []
        for index, stage in enumerate(pipeline):
            here = at(pos, index)
            self.stage_count += 1
            if self.stage_count > MAX_TOTAL_STAGES:
                raise PipelineError(f"{here}: more than {MAX_TOTAL_STAGES} stages in all")
            if not isinstance(stage, dict) or len(stage) != 1:
                raise PipelineError(f"{here}: a stage is an object with exactly one key")
            ((name, spec),) = stage.items()
            if name not in STAGES or (name == "$facet" and context.in_facet):
                raise PipelineError(f"{here}: stage {name} is not allowed")
            out.append({name: self.stage(name, spec, at(here, name), context, reshaped)})
            reshaped = reshaped or name in RESHAPING_STAGES
        return out

    def stage(
        self, name: str, spec: Any, pos: str, context: PipelineContext, reshaped: bool
    ) -> Any:
        scope = context.scope
        if name == "$match":
            return self.match(spec, pos, context, reshaped)
        if name == "$project":
            if not isinstance(spec, dict) or not spec:
                raise PipelineError(f"{pos}: expected a non-empty object")
            return check_projection(spec, pos, "", scope)
        if name in ("$addFields", "$set"):
            if not isinstance(spec, dict) or not spec:
                raise PipelineError(f"{pos}: expected a non-empty object")
            return {
                check_output_name(key, pos, dotted=True): check_expression(
                    value, at(pos, key), scope
                )
                for key, value in spec.items()
            }
        if name == "$unset":
            paths = [spec] if isinstance(spec, str) else spec
            if not isinstance(paths, list) or not paths:
                raise PipelineError(f"{pos}: expected a field path or a non-empty list of them")
            checked = [
                check_field_path(path, at(pos, i), context.hidden) for i, path in enumerate(paths)
            ]
            return checked[0] if isinstance(spec, str) else checked
        if name == "$group":
            if not isinstance(spec, dict) or "_id" not in spec:
                raise PipelineError(f"{pos}: expected an object with an _id")
            out = {"_id": check_expression(spec["_id"], at(pos, "_id"), scope)}
            for key, value in spec.items():
                if key != "_id":
                    check_output_name(key, pos, dotted=False)
                    out[key] = check_accumulator(value, at(pos, key), scope)
            return out
        if name == "$sort":
            if not isinstance(spec, dict) or not spec:
                raise PipelineError(f"{pos}: expected a non-empty object")
            for key, direction in spec.items():
                check_field_path(key, pos, context.hidden)
                if type(direction) is not int or direction not in (1, -1):
                    raise PipelineError(f"{at(pos, key)}: expected 1 or -1")
            return dict(spec)
        if name == "$limit":
            return check_integer(spec, pos, 1)
        if name == "$skip":
            return check_integer(spec, pos, 0)
        if name == "$sample":
            size = check_options(spec, pos, {"size"}, {"size"})["size"]
            return {"size": check_integer(size, at(pos, "size"), 1, MAX_SAMPLE_SIZE)}
        if name == "$count":
            return check_output_name(spec, pos, dotted=False)
        if name == "$unwind":
            return check_unwind(spec, pos, context.hidden)
        if name == "$facet":
            if not isinstance(spec, dict) or not spec:
                raise PipelineError(f"{pos}: expected a non-empty object of sub-pipelines")
            inner = PipelineContext(context.fields, context.hidden, context.variables,
                                    context.lookup_depth, in_facet=True)  # fmt: skip
            return {
                check_output_name(key, pos, dotted=False): self.stages(
                    value, at(pos, key), inner, reshaped
                )
                for key, value in spec.items()
            }
        if name in ("$bucket", "$bucketAuto"):
            return check_bucket(name, spec, pos, scope)
        if name in ("$sortByCount", "$replaceWith"):
            return check_expression(spec, pos, scope)
        if name == "$replaceRoot":
            root = check_options(spec, pos, {"newRoot"}, {"newRoot"})["newRoot"]
            return {"newRoot": check_expression(root, at(pos, "newRoot"), scope)}
        if name == "$lookup":
            return check_lookup(self, spec, pos, context, reshaped)
        raise PipelineError(f"{pos}: stage {name} is not allowed")  # pragma: no cover

    def match(self, spec: Any, pos: str, context: PipelineContext, reshaped: bool) -> dict:
        if not reshaped:
            try:
                checked = check_filter(spec, context.fields, allow_write_only=self.allow_write_only)
            except FilterError as error:
                # Its messages are located from "filter"; relocate them into the pipeline.
                message = str(error)
                if message.startswith("filter"):
                    raise PipelineError(pos + message.removeprefix("filter")) from None
                raise PipelineError(f"{pos}: {message}") from None
        # Walked by our own allowlist as well, so the filter checker is not the only guard and
        # paths hidden in a lookup target (not just write-only ones) stay unnamed.
        walked = check_query(spec, pos, context.hidden)
        return walked if reshaped else copy.deepcopy(checked)
