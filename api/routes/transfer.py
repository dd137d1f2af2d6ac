"""Bulk transfer: streaming import of NDJSON, CSV or a JSON array, and streaming export."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api import exporting
from api.deps import CollectionDep, OptionalPrincipal, SettingsDep, charge, client_address
from api.guards import ListAccess
from api.import_batches import Importer, ImportReport
from api.importing import (
    MEDIA_TYPES,
    ImportFormat,
    ImportMode,
    choose_format,
    run_import,
    upsert_key,
)
from api.problems import Problem
from api.routes.common import METERED, V1
from api.rules import require

router = APIRouter(
    prefix=f"{V1}/collections/{{name}}", tags=["import and export"], responses=METERED
)
_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {media_type: {"schema": {"type": "string"}} for media_type in MEDIA_TYPES},
    }
}
_EXPORT_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {media: {} for media in exporting.MEDIA_TYPES.values()}},
}


@router.post("/import", openapi_extra=_IMPORT_BODY)
async def import_documents(
    request: Request,
    collection: CollectionDep,
    principal: OptionalPrincipal,
    settings: SettingsDep,
    format: ImportFormat | None = None,
    mode: ImportMode = "insert",
    key: Annotated[str | None, Query(max_length=255)] = None,
) -> ImportReport:
    """Import a streamed body record by record; a report of what was written and what failed."""
    rules = collection.definition.rules
    require(rules, "create", principal)
    narrowing = require(rules, "update", principal) if mode == "upsert" else {}
    key_field = upsert_key(collection, mode, key)
    chosen = choose_format(format, request.headers.get("content-type"))
    length = request.headers.get("content-length", "")
    limit = settings.import_max_bytes
    if length.isdigit() and int(length) > limit:
        raise Problem(413, f"The body is larger than the import limit of {limit} bytes")
    credit = 1  # the request itself was counted already

    async def meter(records: int) -> None:
        # Each record counts against the rate limit, so an import is no way around it.
        nonlocal credit
        cost, credit = max(0, records - credit), max(0, credit - records)
        await charge(principal, client_address(request), settings, cost)

    # Administrators (and admin API keys, the seed path) load data sets far past any budget.
    metered = None if principal is not None and principal.is_admin else meter
    importer = Importer(
        collection, principal, key_field, narrowing, settings.query_timeout_ms, metered
    )
    return await run_import(importer, request.stream(), chosen, limit)


@router.get("/export", response_class=StreamingResponse, responses=_EXPORT_CONTENT)
async def export_documents(
    access: ListAccess,
    settings: SettingsDep,
    format: exporting.ExportFormat = "ndjson",
    filter: Annotated[str | None, Query()] = None,
) -> StreamingResponse:
    """Stream every document the caller may list (optionally filtered) as NDJSON or CSV."""
    query = exporting.export_query(access, filter)
    preamble = ""
    if format == "csv":
        preamble, encode = exporting.csv_encoder(access)
    else:
        encode = exporting.ndjson_encoder(access)
    cursor, first = await exporting.open_export(access, query, settings.export_timeout_ms)
    filename = f"{access.collection.name}.{format}"
    return StreamingResponse(
        exporting.stream_export(cursor, first, encode, preamble),
        media_type=exporting.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
