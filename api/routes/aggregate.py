"""Aggregation pipelines over a collection, under its list rule."""

from fastapi import APIRouter, Request

from api.aggregation import AggregateRequest, AggregateResult, aggregate
from api.deps import SettingsDep
from api.guards import ListAccess
from api.routes.common import METERED, V1

router = APIRouter(prefix=f"{V1}/collections/{{name}}", tags=["aggregation"], responses=METERED)


@router.post("/aggregate")
async def aggregate_collection(
    body: AggregateRequest, access: ListAccess, settings: SettingsDep, request: Request
) -> AggregateResult:
    """Run an aggregation pipeline; the caller's rule filter is always its first stage."""
    late_joins: bool = request.app.state.traits.late_join_rules
    return await aggregate(
        access,
        body,
        settings.aggregate_max_results,
        max_bytes=settings.aggregate_max_bytes,
        late_joins=late_joins,
    )
