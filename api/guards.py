"""Route dependencies that hand a route the document it may act on, with the rules applied."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.catalog import Collection
from api.deps import (
    Principal,
    caller,
    collection_by_name,
    identifying,
    parse_object_id,
    settings_of,
)
from api.problems import not_found
from api.rendering import render, system_only
from api.rules import Action, admits, require, rule_filter


@dataclass(frozen=True)
class Access:
    """A caller acting on a collection, with the rule filter of the action they take."""

    collection: Collection
    principal: Principal | None
    narrowing: dict
    max_time_ms: int

    @property
    def is_admin(self) -> bool:
        return self.principal is not None and self.principal.is_admin

    @property
    def hidden(self) -> tuple[str, ...]:
        """Write-only fields: stored, but never shown to (or queried by) anyone but admins."""
        return () if self.is_admin else self.collection.write_only

    def view(self, stored: dict) -> dict:
        """What the caller may see of a document they wrote: all of it only if they may read it."""
        readable = rule_filter(self.collection.definition.rules, "read", self.principal)
        return render(stored, self.hidden) if admits(readable, stored) else system_only(stored)


@dataclass(frozen=True)
class Target(Access):
    """An Access on one existing document the caller's rule admits."""

    stored: dict


async def access(request: Request, name: str, action: Action) -> Access:
    """The caller's access to the collection `name` for `action`: 404, 401 or 403 if none."""
    principal = await caller(request)
    collection = await collection_by_name(name, request)
    narrowing = require(collection.definition.rules, action, principal)
    return Access(collection, principal, narrowing, settings_of(request).query_timeout_ms)


# The guards below take the request alone, read the path's names from it and call what they
# need: each dependency in a route's graph, and each parameter one declares, costs FastAPI
# bookkeeping on every request, and these are on the busiest routes. The OpenAPI document
# declares the path's names all the same (api/openapi_document.py).
def access_for(action: Action) -> Callable[..., Awaitable[Access]]:
    @identifying
    async def dependency(request: Request) -> Access:
        return await access(request, request.path_params["name"], action)

    return dependency


def document_for(action: Action) -> Callable[..., Awaitable[Target]]:
    @identifying
    async def dependency(request: Request) -> Target:
        granted = await access(request, request.path_params["name"], action)
        # A malformed id, a missing document and another user's document all look the same.
        object_id = parse_object_id(request.path_params["doc_id"])
        stored = None
        if object_id is not None:
            stored = await granted.collection.storage.find_one(
                {"_id": object_id, **granted.narrowing}, max_time_ms=granted.max_time_ms
            )
        if stored is None:
            raise not_found("Document not found")
        return Target(
            granted.collection, granted.principal, granted.narrowing, granted.max_time_ms, stored
        )

    return dependency


@identifying
async def bulk_access(request: Request) -> Access:
    """Bulk requests check each operation's rule themselves; this only names the collection."""
    collection = await collection_by_name(request.path_params["name"], request)
    return Access(collection, await caller(request), {}, settings_of(request).query_timeout_ms)


ListAccess = Annotated[Access, Depends(access_for("list"))]
BulkAccess = Annotated[Access, Depends(bulk_access)]
CreateAccess = Annotated[Access, Depends(access_for("create"))]
UpdateAccess = Annotated[Access, Depends(access_for("update"))]
ReadableDocument = Annotated[Target, Depends(document_for("read"))]
UpdatableDocument = Annotated[Target, Depends(document_for("update"))]
DeletableDocument = Annotated[Target, Depends(document_for("delete"))]
