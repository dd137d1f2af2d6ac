"""The audit log, newest first (admins only)."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import AdminUser, SettingsDep
from api.id_pages import PageCursor, PageLimit, id_page
from api.routes.common import METERED, V1
from documents.audit import AuditEntry, AuditPublic

router = APIRouter(prefix=f"{V1}/audit", tags=["audit"], responses=METERED)


class AuditList(BaseModel):
    items: list[AuditPublic]
    next_cursor: str | None


@router.get("")
async def list_audit(
    _: AdminUser,
    settings: SettingsDep,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> AuditList:
    """Audit entries, newest first, optionally of one action or one actor."""
    query: dict = {}
    if action:
        query["action"] = action
    if actor:
        query["actor"] = actor
    page, next_cursor = await id_page(
        AuditEntry,
        query,
        limit=limit,
        cursor=cursor,
        key=settings.signing_key(),
        newest_first=True,
    )
    return AuditList(
        items=[AuditPublic.model_validate(entry) for entry in page], next_cursor=next_cursor
    )
