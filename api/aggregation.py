"""Running a client's aggregation pipeline behind the caller's rule filter, with capped results."""

from collections.abc import Mapping
from typing import Annotated, Any

import bson
from pydantic import BaseModel, Field

from api.catalog import Collection, load_collection
from api.fields import FieldSpec
from api.guards import Access
from api.pipelines import LookupTarget, PipelineError, check_pipeline
from api.problems import Problem
from api.rendering import to_json
from api.rules import rule_filter
from documents.users import Strict

MAX_LOOKUPS = 16


class AggregateRequest(Strict):
    pipeline: Annotated[list[dict[str, Any]], Field(max_length=50)]


class AggregateResult(BaseModel):
    items: list[dict[str, Any]]


def _lookup_names(value: Any, found: set[str]) -> set[str]:
    """Every collection a pipeline's `$lookup` stages name, at any depth."""
    if isinstance(value, dict):
        lookup = value.get("$lookup")
        if isinstance(lookup, dict) and isinstance(lookup.get("from"), str):
            found.add(lookup["from"])
        for item in value.values():
            _lookup_names(item, found)
    elif isinstance(value, list):
        for item in value:
            _lookup_names(item, found)
    return found


async def _lookup_targets(access: Access, pipeline: list) -> dict[str, LookupTarget]:
    names = _lookup_names(pipeline, set())
    if len(names) > MAX_LOOKUPS:
        raise Problem(400, f"A pipeline may join at most {MAX_LOOKUPS} collections")
    targets = {}
    for name in names:
        collection: Collection | None = await load_collection(name)
        if collection is None:
            continue
        narrowing = rule_filter(collection.definition.rules, "list", access.principal)
        if narrowing is None:
            continue
        hidden = () if access.is_admin else collection.write_only
        targets[name] = LookupTarget(
            collection.definition.storage_name, collection.fields, narrowing, hidden
        )
    return targets


def _in_array(path: str, fields: Mapping[str, FieldSpec]) -> bool:
    parts = path.split(".")
    return any(
        "array" in getattr(fields.get(".".join(parts[:end])), "types", ())
        for end in range(1, len(parts))
    )


def _refuse_unhideable(access: Access, targets: dict[str, LookupTarget]) -> None:
    """Refuses what the embedded database cannot run safely: it ignores `$unset` of a field
    inside an array of objects, so such write-only fields would show in the results."""
    exposed = [p for p in access.hidden if _in_array(p, access.collection.fields)] + [
        p
        for target in targets.values()
        for p in target.hidden_fields
        if _in_array(p, target.fields)
    ]
    if exposed:
        raise Problem(
            400,
            "This database cannot hide fields inside arrays from an aggregation; "
            "ask an admin to run it",
        )


async def aggregate(
    access: Access,
    request: AggregateRequest,
    max_results: int,
    *,
    max_bytes: int = 32 * 2**20,
    late_joins: bool = True,
) -> AggregateResult:
    targets = await _lookup_targets(access, request.pipeline)

    def resolve(name: str) -> LookupTarget:
        # Missing and forbidden collections get the same answer, so neither is revealed.
        if name not in targets:
            raise PipelineError(f"collection '{name}' does not exist or you may not list it")
        return targets[name]

    if not late_joins and not access.is_admin:
        _refuse_unhideable(access, targets)
    try:
        checked = check_pipeline(
            request.pipeline,
            fields=access.collection.fields,
            resolve_lookup=resolve,
            allow_write_only=access.is_admin,
            late_joins=late_joins,
        )
    except PipelineError as error:
        raise Problem(400, str(error)) from error
    # The rule filter always comes first, even when it admits everything.
    prefix: list[dict] = [{"$match": access.narrowing}]
    if access.hidden:
        prefix.append({"$unset": list(access.hidden)})
    # One more than allowed tells "exactly the cap" apart from "more than the cap".
    stages = [*prefix, *checked, {"$limit": max_results + 1}]
    cursor = await access.collection.storage.aggregate(stages, maxTimeMS=access.max_time_ms)
    items: list[dict[str, Any]] = []
    size = 0
    async for item in cursor:
        # Counted as it arrives, so an answer too big to send is refused before it fills memory.
        size += len(bson.encode(item))
        if len(items) == max_results or size > max_bytes:
            await cursor.close()
            raise Problem(
                400,
                f"The pipeline returns more than {max_results} documents or "
                f"{max_bytes:,} bytes; add a $limit stage or narrow the $match",
            )
        items.append(to_json(item))
    return AggregateResult(items=items)
