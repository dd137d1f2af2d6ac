"""The audit log, newest first (admins only)."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.cursors import CursorError, decode_cursor, encode_cursor, query_fingerprint
from api.deps import AdminUser, SettingsDep
from api.problems import Problem
from documents.audit import AuditEntry, AuditPublic

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditList(BaseModel):
    items: list[AuditPublic]
    next_cursor: str | None


@router.get("")
async def list_audit(
    _: AdminUser,
    settings: SettingsDep,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> AuditList:
    """Audit entries, newest first, optionally of one action or one actor."""
    query: dict = {}
    if action:
        query["action"] = action
    if actor:
        query["actor"] = actor
    fingerprint = query_fingerprint("audit", query)
    if cursor:
        try:
            (before,) = decode_cursor(cursor, fingerprint, settings.signing_key())
        except (CursorError, ValueError) as error:
            raise Problem(400, "Invalid cursor") from error
        query["_id"] = {"$lt": before}
    entries = await AuditEntry.find(query).sort("-_id").limit(limit + 1).to_list()
    page = entries[:limit]
    next_cursor = (
        encode_cursor([page[-1].id], fingerprint, settings.signing_key())
        if len(entries) > limit
        else None
    )
    return AuditList(items=[AuditPublic.of(entry) for entry in page], next_cursor=next_cursor)
