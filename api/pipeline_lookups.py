"""Rewriting a `$lookup` so that a join never reaches documents the caller could not list.

Every `$lookup` becomes its pipeline form: the target's rule filter first, then its hidden fields
removed, then whatever pipeline the caller wrote, checked against the target's own fields.
"""

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from api.expressions import ExpressionScope, check_expression
from api.fields import FieldSpec, outermost
from api.pipeline_syntax import (
    VARIABLE_NAME,
    PipelineError,
    at,
    check_field_path,
    check_options,
    check_output_name,
)

MAX_LOOKUP_DEPTH = 4
COLLECTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class LookupTarget:
    """What `resolve_lookup` answers for a collection the caller may list."""

    collection: str
    fields: Mapping[str, FieldSpec]
    rule_filter: dict
    hidden_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PipelineContext:
    """The collection a (sub)pipeline runs over, and the variables its `$lookup` lets bind."""

    fields: Mapping[str, FieldSpec]
    hidden: frozenset[str]
    variables: frozenset[str]
    lookup_depth: int
    in_facet: bool

    @property
    def scope(self) -> ExpressionScope:
        return ExpressionScope(self.hidden, self.variables)


class StageChecker(Protocol):
    """What a `$lookup` needs from the pipeline checker: its sub-pipeline is checked alike."""

    resolve_lookup: Callable[[str], LookupTarget]
    late_joins: bool

    def hidden_paths(self, fields: Mapping[str, FieldSpec]) -> frozenset[str]: ...

    def stages(
        self, pipeline: object, pos: str, context: PipelineContext, reshaped: bool
    ) -> list[dict]: ...


def _is_known_path(path: str, fields: Mapping[str, FieldSpec]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:n]) in fields for n in range(1, len(parts) + 1))


def check_lookup(
    checker: StageChecker, spec: Any, pos: str, context: PipelineContext, reshaped: bool
) -> dict:
    allowed = {"from", "localField", "foreignField", "let", "pipeline", "as"}
    spec = check_options(spec, pos, allowed, {"from", "as"})
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
        target = checker.resolve_lookup(source)
    except PipelineError as error:
        if type(error) is not PipelineError:
            raise
        raise PipelineError(f"{at(pos, 'from')}: {error}") from None
    if not checker.late_joins and (reshaped or context.lookup_depth or context.in_facet):
        raise PipelineError(
            f"{pos}: this database cannot apply access rules to a $lookup placed after "
            "stages that reshape documents or inside a sub-pipeline; move it before them"
        )
    hidden = checker.hidden_paths(target.fields) | frozenset(target.hidden_fields)
    # The target's rule filter comes first, then its hidden fields go, before anything the
    # caller wrote can see a joined document.
    prefix: list[dict] = []
    if target.rule_filter:
        prefix.append({"$match": copy.deepcopy(dict(target.rule_filter))})
    if hidden:
        prefix.append({"$unset": list(outermost(hidden))})
    out: dict = {"from": target.collection}
    if joined[0]:
        local = check_field_path(spec["localField"], at(pos, "localField"), context.hidden)
        if not reshaped and not _is_known_path(local, context.fields):
            raise PipelineError(f"{at(pos, 'localField')}: unknown field {local!r}")
        foreign = check_field_path(spec["foreignField"], at(pos, "foreignField"), hidden)
        if not _is_known_path(foreign, target.fields):
            raise PipelineError(f"{at(pos, 'foreignField')}: unknown field {foreign!r}")
        # The join compares the whole value before the pipeline removes the hidden fields: an
        # object holding one would let the caller test guesses of it.
        if any(path.startswith(foreign + ".") for path in hidden):
            raise PipelineError(
                f"{at(pos, 'foreignField')}: {foreign!r} holds fields you may not read; "
                "join on one of its other fields"
            )
        # Kept beside the pipeline (MongoDB 5+): the join keeps MongoDB's own matching,
        # arrays included, and its index on foreignField, while the rule filter still runs.
        out["localField"], out["foreignField"] = local, foreign
    inner = PipelineContext(target.fields, hidden, context.variables | frozenset(let),
                            context.lookup_depth + 1, in_facet=False)  # fmt: skip
    checked = []
    if "pipeline" in spec:
        checked = checker.stages(spec["pipeline"], at(pos, "pipeline"), inner, reshaped=False)
    if variables:
        out["let"] = variables
    out["pipeline"] = prefix + checked
    out["as"] = as_name
    return out
