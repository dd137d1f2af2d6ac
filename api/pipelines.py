"""Checking a client's aggregation pipeline so that running it cannot escape the access rules.

Only allowlisted stages and operators pass; the first `$match` goes through the filter checker
(which knows the schema and converts ids and dates); every `$lookup` is rewritten into its pipeline
form with the target's rule filter first, so a join never reaches documents the caller could not
list. The result is a fresh pipeline: the caller's objects are never returned or changed.
"""

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from api.expressions import (
    VARIABLE_NAME,
    ExpressionScope,
    PipelineError,
    at,
    check_accumulator,
    check_expression,
    check_field_path,
    check_literal,
    check_output_name,
    check_query,
    is_hidden,
)
from api.fields import FieldSpec
from api.filters import FilterError, check_filter

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
MAX_LOOKUP_DEPTH = 4
MAX_SAMPLE_SIZE = 10_000
MAX_INT64 = 2**63 - 1  # larger integers cannot be encoded as BSON
COLLECTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class LookupTarget:
    """What `resolve_lookup` answers for a collection the caller may list."""

    collection: str
    fields: Mapping[str, FieldSpec]
    rule_filter: dict
    hidden_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Context:
    """The collection a (sub)pipeline runs over, and the variables its `$lookup` lets bind."""

    fields: Mapping[str, FieldSpec]
    hidden: frozenset[str]
    variables: frozenset[str]
    lookup_depth: int
    in_facet: bool

    @property
    def scope(self) -> ExpressionScope:
        return ExpressionScope(self.hidden, self.variables)


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
    context = _Context(fields, checker.hidden_paths(fields), frozenset(), 0, in_facet=False)
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


def _is_known_path(path: str, fields: Mapping[str, FieldSpec]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:n]) in fields for n in range(1, len(parts) + 1))


def _integer(value: object, pos: str, low: int, high: int = MAX_INT64) -> int:
    if type(value) is not int or not low <= value <= high:
        raise PipelineError(f"{pos}: expected an integer from {low} to {high}")
    return value


def _object(value: object, pos: str, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(value, dict):
        raise PipelineError(f"{pos}: expected an object")
    if unknown := sorted(set(value) - allowed):
        raise PipelineError(f"{pos}: unknown option {unknown[0]!r}")
    if missing := sorted(required - set(value)):
        raise PipelineError(f"{pos}: missing option {missing[0]!r}")
    return value


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

    def stages(self, pipeline: object, pos: str, context: _Context, reshaped: bool) -> list[dict]:
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

    def stage(self, name: str, spec: Any, pos: str, context: _Context, reshaped: bool) -> Any:
        scope = context.scope
        if name == "$match":
            return self.match(spec, pos, context, reshaped)
        if name == "$project":
            if not isinstance(spec, dict) or not spec:
                raise PipelineError(f"{pos}: expected a non-empty object")
            return self.projection(spec, pos, "", scope)
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
            return _integer(spec, pos, 1)
        if name == "$skip":
            return _integer(spec, pos, 0)
        if name == "$sample":
            size = _object(spec, pos, {"size"}, {"size"})["size"]
            return {"size": _integer(size, at(pos, "size"), 1, MAX_SAMPLE_SIZE)}
        if name == "$count":
            return check_output_name(spec, pos, dotted=False)
        if name == "$unwind":
            return self.unwind(spec, pos, context)
        if name == "$facet":
            if not isinstance(spec, dict) or not spec:
                raise PipelineError(f"{pos}: expected a non-empty object of sub-pipelines")
            inner = _Context(context.fields, context.hidden, context.variables,
                             context.lookup_depth, in_facet=True)  # fmt: skip
            return {
                check_output_name(key, pos, dotted=False): self.stages(
                    value, at(pos, key), inner, reshaped
                )
                for key, value in spec.items()
            }
        if name in ("$bucket", "$bucketAuto"):
            return self.bucket(name, spec, pos, scope)
        if name in ("$sortByCount", "$replaceWith"):
            return check_expression(spec, pos, scope)
        if name == "$replaceRoot":
            root = _object(spec, pos, {"newRoot"}, {"newRoot"})["newRoot"]
            return {"newRoot": check_expression(root, at(pos, "newRoot"), scope)}
        if name == "$lookup":
            return self.lookup(spec, pos, context, reshaped)
        raise PipelineError(f"{pos}: stage {name} is not allowed")  # pragma: no cover

    def match(self, spec: Any, pos: str, context: _Context, reshaped: bool) -> dict:
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

    def projection(self, spec: dict, pos: str, prefix: str, scope: ExpressionScope) -> dict:
        out = {}
        for key, value in spec.items():
            path = prefix + check_output_name(key, pos, dotted=True)
            if is_hidden(path, scope.hidden):
                raise PipelineError(f"{pos}: unknown field {path!r}")
            here = at(pos, key)
            # `{"a": {"b": 1}}` is the nested spelling of `{"a.b": 1}`: its keys are paths too.
            if isinstance(value, dict) and value and not any(k.startswith("$") for k in value):
                out[key] = self.projection(value, here, path + ".", scope)
            else:
                out[key] = check_expression(value, here, scope)
        return out

    def unwind(self, spec: Any, pos: str, context: _Context) -> Any:
        options = {"path": spec} if isinstance(spec, str) else spec
        allowed = {"path", "includeArrayIndex", "preserveNullAndEmptyArrays"}
        options = _object(options, pos, allowed, {"path"})
        path = options["path"]
        if not isinstance(path, str) or not path.startswith("$") or path.startswith("$$"):
            raise PipelineError(f"{at(pos, 'path')}: expected a field path such as '$tags'")
        check_field_path(
            path[1:], pos if isinstance(spec, str) else at(pos, "path"), context.hidden
        )
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

    def bucket(self, name: str, spec: Any, pos: str, scope: ExpressionScope) -> dict:
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
        spec = _object(spec, pos, allowed, required)
        out: dict = {"groupBy": check_expression(spec["groupBy"], at(pos, "groupBy"), scope)}
        if "boundaries" in spec:
            if not isinstance(spec["boundaries"], list) or len(spec["boundaries"]) < 2:
                raise PipelineError(f"{at(pos, 'boundaries')}: expected at least two values")
            out["boundaries"] = check_literal(spec["boundaries"], at(pos, "boundaries"))
        if "default" in spec:
            out["default"] = check_literal(spec["default"], at(pos, "default"))
        if "buckets" in spec:
            out["buckets"] = _integer(spec["buckets"], at(pos, "buckets"), 1, MAX_SAMPLE_SIZE)
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

    def lookup(self, spec: Any, pos: str, context: _Context, reshaped: bool) -> dict:
        allowed = {"from", "localField", "foreignField", "let", "pipeline", "as"}
        spec = _object(spec, pos, allowed, {"from", "as"})
        if context.lookup_depth >= MAX_LOOKUP_DEPTH:
            raise PipelineError(f"{pos}: $lookup nested deeper than {MAX_LOOKUP_DEPTH} levels")
        source = spec["from"]
        if not isinstance(source, str) or not COLLECTION_NAME.fullmatch(source):
            raise PipelineError(f"{at(pos, 'from')}: expected a collection name")
        joined = ("localField" in spec, "foreignField" in spec)
        if joined[0] != joined[1]:
            raise PipelineError(f"{pos}: localField and foreignField go together")
        if not joined[0] and "pipeline" not in spec:
            raise PipelineError(f"{pos}: expected localField and foreignField, or a pipeline")
        as_name = check_output_name(spec["as"], at(pos, "as"), dotted=True)
        let = spec.get("let", {})
        if not isinstance(let, dict):
            raise PipelineError(f"{at(pos, 'let')}: expected an object")
        for name in let:
            if not VARIABLE_NAME.fullmatch(name):
                raise PipelineError(f"{at(pos, 'let')}: invalid variable name {name!r}")
        # `let` values are evaluated over the current documents, so the current scope applies.
        variables = {
            name: check_expression(value, at(at(pos, "let"), name), context.scope)
            for name, value in let.items()
        }
        try:
            target = self.resolve_lookup(source)
        except PipelineError as error:
            if type(error) is not PipelineError:
                raise
            raise PipelineError(f"{at(pos, 'from')}: {error}") from None
        if not self.late_joins and (reshaped or context.lookup_depth or context.in_facet):
            raise PipelineError(
                f"{pos}: this database cannot apply access rules to a $lookup placed after "
                "stages that reshape documents or inside a sub-pipeline; move it before them"
            )
        hidden = self.hidden_paths(target.fields) | frozenset(target.hidden_fields)
        # The target's rule filter comes first, then its hidden fields go, before anything the
        # caller wrote can see a joined document.
        prefix: list[dict] = []
        if target.rule_filter:
            prefix.append({"$match": copy.deepcopy(dict(target.rule_filter))})
        if hidden:
            extra = sorted(hidden - frozenset(target.hidden_fields))
            prefix.append({"$unset": [*target.hidden_fields, *extra]})
        out: dict = {"from": target.collection}
        if joined[0]:
            local = check_field_path(spec["localField"], at(pos, "localField"), context.hidden)
            if not reshaped and not _is_known_path(local, context.fields):
                raise PipelineError(f"{at(pos, 'localField')}: unknown field {local!r}")
            foreign = check_field_path(spec["foreignField"], at(pos, "foreignField"), hidden)
            if not _is_known_path(foreign, target.fields):
                raise PipelineError(f"{at(pos, 'foreignField')}: unknown field {foreign!r}")
            # Kept beside the pipeline (MongoDB 5+): the join keeps MongoDB's own matching,
            # arrays included, and its index on foreignField, while the rule filter still runs.
            out["localField"], out["foreignField"] = local, foreign
        inner = _Context(target.fields, hidden, context.variables | frozenset(let),
                         context.lookup_depth + 1, in_facet=False)  # fmt: skip
        checked = []
        if "pipeline" in spec:
            checked = self.stages(spec["pipeline"], at(pos, "pipeline"), inner, reshaped=False)
        if variables:
            out["let"] = variables
        out["pipeline"] = prefix + checked
        out["as"] = as_name
        return out
