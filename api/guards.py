"""Route dependencies that hand a route the document it may act on, with the rules applied."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.catalog import Collection
from api.deps import CollectionDep, OptionalPrincipal, Principal, parse_object_id, settings_of
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


def access_for(action: Action) -> Callable[..., Awaitable[Access]]:
    async def dependency(
        collection: CollectionDep, principal: OptionalPrincipal, request: Request
    ) -> Access:
        narrowing = require(collection.definition.rules, action, principal)
        return Access(collection, principal, narrowing, settings_of(request).query_timeout_ms)

    return dependency


def document_for(action: Action) -> Callable[..., Awaitable[Target]]:
    async def dependency(
        doc_id: str, access: Annotated[Access, Depends(access_for(action))]
    ) -> Target:
        # A malformed id, a missing document and another user's document all look the same.
        object_id = parse_object_id(doc_id)
        stored = None
        if object_id is not None:
            stored = await access.collection.storage.find_one(
                {"_id": object_id, **access.narrowing}, max_time_ms=access.max_time_ms
            )
        if stored is None:
            raise not_found("Document not found")
        return Target(
            access.collection, access.principal, access.narrowing, access.max_time_ms, stored
        )

    return dependency


async def bulk_access(
    collection: CollectionDep, principal: OptionalPrincipal, request: Request
) -> Access:
    """Bulk requests check each operation's rule themselves; this only names the collection."""
    return Access(collection, principal, {}, settings_of(request).query_timeout_ms)


ListAccess = Annotated[Access, Depends(access_for("list"))]
BulkAccess = Annotated[Access, Depends(bulk_access)]
CreateAccess = Annotated[Access, Depends(access_for("create"))]
ReadableDocument = Annotated[Target, Depends(document_for("read"))]
UpdatableDocument = Annotated[Target, Depends(document_for("update"))]
DeletableDocument = Annotated[Target, Depends(document_for("delete"))]
