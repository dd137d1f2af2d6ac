"""Writing audit entries: who did what, to what, from where."""

import logging
from datetime import timedelta
from typing import Any

from api.inserts import insert_document
from documents.audit import AuditEntry
from documents.users import utc_now

logger = logging.getLogger("cabinet.audit")
RETENTION = timedelta(days=365)


async def record(
    action: str,
    *,
    actor: str | None = None,
    target: str | None = None,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Stores one entry; a failure to store it is logged, never turned into a failed request."""
    now = utc_now()
    entry = AuditEntry(
        at=now,
        action=action,
        actor=actor,
        target=target,
        address=address,
        detail=detail or {},
        expires_at=now + RETENTION,
    )
    try:
        await insert_document(entry)
    except Exception:
        logger.exception("audit entry not stored", extra={"action": action, "target": target})
