"""Listing and querying a collection's documents, a page at a time."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.collection_openapi import collection_openapi
from api.deps import settings_of
from api.guards import ListAccess
from api.listing import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    DocumentPage,
    ListQuery,
    list_documents,
    parse_filter_param,
)
from api.routes.common import METERED, V1

router = APIRouter(prefix=f"{V1}/collections/{{name}}", tags=["documents"], responses=METERED)


# The settings come from the request, not SettingsDep: one dependency fewer for FastAPI to solve
# on the busiest reads (see api/deps.py).
@router.get("/documents", response_model_exclude_unset=True)
async def list_collection(
    access: ListAccess,
    request: Request,
    filter: Annotated[str | None, Query(max_length=16_384)] = None,
    sort: Annotated[str | None, Query(max_length=1024)] = None,
    fields: Annotated[str | None, Query(max_length=8192)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    total: bool = False,
) -> DocumentPage:
    """List documents: `filter` (JSON), `sort`, `fields`, `limit`, `cursor`, `q`, `total`."""
    spec = ListQuery(
        filter=parse_filter_param(filter),
        sort=sort,
        fields=fields,
        limit=limit,
        cursor=cursor,
        q=q,
        total=total,
    )
    return await list_documents(access, spec, settings_of(request).signing_key())


@router.post("/query", response_model_exclude_unset=True)
async def query_collection(body: ListQuery, access: ListAccess, request: Request) -> DocumentPage:
    """The same as listing, with the query in the body, for long filters."""
    return await list_documents(access, body, settings_of(request).signing_key())


@router.get("/openapi.json")
async def collection_schema(access: ListAccess, request: Request) -> dict[str, Any]:
    """A typed OpenAPI document for this collection's documents, for client generators."""
    return collection_openapi(access.collection, str(request.base_url).rstrip("/"))
