"""Documents of a collection: create, read, replace, merge-patch and delete, under its rules."""

from typing import Any

from fastapi import APIRouter, Request, Response, status

from api import document_writes
from api.bulk import BulkRequest, BulkResponse, run_bulk
from api.deps import ClientAddress, SettingsDep, charge, parse_object_id
from api.etags import condition, documented, etag, etag_matches
from api.guards import (
    BulkAccess,
    CreateAccess,
    DeletableDocument,
    ReadableDocument,
    UpdatableDocument,
    UpdateAccess,
)
from api.json_bodies import OBJECT_BODY, json_body, json_object
from api.merge_patch import merge_patch
from api.problems import not_found
from api.routes.common import METERED, V1

router = APIRouter(
    prefix=f"{V1}/collections/{{name}}/documents", tags=["documents"], responses=METERED
)
bulk_router = APIRouter(prefix=f"{V1}/collections/{{name}}", tags=["documents"], responses=METERED)
IF_MATCH = documented("If-Match")


def _describe(response: Response, stored: dict) -> None:
    response.headers["ETag"] = etag(stored["_version"])


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=OBJECT_BODY)
async def create_document(
    access: CreateAccess, request: Request, response: Response
) -> dict[str, Any]:
    """Store a new document; the caller becomes its owner."""
    stored = await document_writes.insert(access, await json_object(request))
    name = access.collection.definition.name
    response.headers["Location"] = f"/v1/collections/{name}/documents/{stored['_id']}"
    _describe(response, stored)
    return access.view(stored)


@router.get(
    "/{doc_id}",
    responses={304: {"description": "Not modified since the ETag given"}},
    openapi_extra=documented("If-None-Match"),
)
async def read_document(target: ReadableDocument, request: Request, response: Response) -> Any:
    """One document."""
    if_none_match = condition(request, "if-none-match")
    if if_none_match is not None and etag_matches(if_none_match, target.stored["_version"]):
        return Response(status_code=304, headers={"ETag": etag(target.stored["_version"])})
    _describe(response, target.stored)
    return target.view(target.stored)


@router.put("/{doc_id}", openapi_extra={**OBJECT_BODY, **IF_MATCH})
async def replace_document(
    target: UpdatableDocument, request: Request, response: Response
) -> dict[str, Any]:
    """Replace a document's fields (412 if If-Match names an older version)."""
    body = await json_object(request)
    if_match = condition(request, "if-match")
    stored = await document_writes.rewrite(target, lambda _: body, if_match)
    _describe(response, stored)
    return target.view(stored)


@router.patch("/{doc_id}", openapi_extra={**OBJECT_BODY, **IF_MATCH})
async def patch_document(
    target: UpdatableDocument, request: Request, response: Response
) -> dict[str, Any]:
    """Apply a JSON Merge Patch (RFC 7396); the merged result must fit the schema."""
    body = await json_object(request)
    if_match = condition(request, "if-match")
    stored = await document_writes.rewrite(
        target, lambda current: merge_patch(current, body), if_match
    )
    _describe(response, stored)
    return target.view(stored)


@router.post("/{doc_id}/ops", openapi_extra={**OBJECT_BODY, **IF_MATCH})
async def apply_field_ops(
    access: UpdateAccess, request: Request, response: Response
) -> dict[str, Any]:
    """Atomic field operators: `inc`, `push`, `pull`, `add_to_set`, checked against the schema."""
    # Not an UpdatableDocument: increments go out without reading the document first.
    object_id = parse_object_id(request.path_params["doc_id"])
    if object_id is None:
        raise not_found("Document not found")
    # Any JSON, checked by apply_ops: the operators' document is found (or not: 404) before a
    # body that is no object is refused (422), as on the routes whose guard reads first.
    body = await json_body(request)
    if_match = condition(request, "if-match")
    stored = await document_writes.apply_ops(access, object_id, body, if_match)
    _describe(response, stored)
    return access.view(stored)


@router.delete("/{doc_id}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=IF_MATCH)
async def delete_document(target: DeletableDocument, request: Request) -> None:
    """Delete a document."""
    await document_writes.remove(target, condition(request, "if-match"))


@bulk_router.post("/bulk", response_model_exclude_none=True)
async def bulk_write(
    body: BulkRequest, access: BulkAccess, address: ClientAddress, settings: SettingsDep
) -> BulkResponse:
    """Up to 1000 inserts, updates and deletes; a result for each, in the order given."""
    # Each operation counts against the rate limit, so batching is no way around it.
    await charge(access.principal, address, settings, len(body.operations) - 1)
    return await run_bulk(access, body)
