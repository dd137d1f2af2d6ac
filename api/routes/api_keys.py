"""API keys for servers and import jobs (admins only); a key is shown once, when created."""

import secrets

from fastapi import APIRouter, status
from pydantic import BaseModel

from api import audit, security
from api.deps import AdminUser, ClientAddress, SettingsDep, parse_object_id
from api.id_pages import PageCursor, PageLimit, id_page
from api.problems import Problem, not_found
from api.routes.common import METERED, V1
from documents.api_keys import ApiKey, ApiKeyCreate, ApiKeyIssued, ApiKeyPublic
from documents.users import utc_now

router = APIRouter(prefix=f"{V1}/api-keys", tags=["api keys"], responses=METERED)
KEY_PREFIX = "cab_"


class ApiKeyList(BaseModel):
    items: list[ApiKeyPublic]
    next_cursor: str | None


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, admin: AdminUser, address: ClientAddress
) -> ApiKeyIssued:
    """Issue a key; its secret is in this response only and is stored as a hash."""
    if body.expires_at is not None and body.expires_at <= utc_now():
        raise Problem(
            422,
            "expires_at must be in the future",
            errors=[{"loc": ["body", "expires_at"], "msg": "must be in the future"}],
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=body.name,
        roles=list(dict.fromkeys(body.roles)),
        key_hash=security.hash_token(secret),
        expires_at=body.expires_at,
    )
    await key.insert()
    await audit.record(
        "apikey.create",
        actor=admin.id,
        target=str(key.id),
        address=address,
        detail={"name": key.name, "roles": key.roles},
    )
    return ApiKeyIssued(**ApiKeyPublic.model_validate(key).model_dump(), key=secret)


@router.get("")
async def list_api_keys(
    _: AdminUser, settings: SettingsDep, limit: PageLimit = 50, cursor: PageCursor = None
) -> ApiKeyList:
    """The keys issued, without their secrets."""
    page, next_cursor = await id_page(
        ApiKey, {}, limit=limit, cursor=cursor, key=settings.signing_key()
    )
    return ApiKeyList(
        items=[ApiKeyPublic.model_validate(key) for key in page], next_cursor=next_cursor
    )


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: str, admin: AdminUser, address: ClientAddress) -> None:
    """Revoke a key; requests carrying it are refused from now on."""
    parsed = parse_object_id(key_id)
    key = await ApiKey.get(parsed) if parsed is not None else None
    if key is None:
        raise not_found("API key not found")
    await key.delete()
    await audit.record(
        "apikey.revoke", actor=admin.id, target=key_id, address=address, detail={"name": key.name}
    )
