"""`insert_document` stores exactly what Beanie's `insert()` stores, and sets the new id."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from beanie import Document
from bson import ObjectId
from fastapi import FastAPI

from api.inserts import insert_document
from documents.audit import AuditEntry
from documents.sessions import Session
from documents.users import utc_now


def session() -> Document:
    return Session(
        user_id=str(ObjectId()),
        token_hash=ObjectId().binary.hex(),
        roles=["admin", "editor"],
        expires_at=utc_now() + timedelta(days=30),
    )


def audit_entry() -> Document:
    now = utc_now()
    return AuditEntry(
        action="user.update",
        actor=str(ObjectId()),
        address="127.0.0.1",
        detail={"roles": ["editor"], "disabled": True, "nested": {"n": 1.5, "at": now}},
        expires_at=now + timedelta(days=365),
    )


@pytest.mark.parametrize("make", [session, audit_entry])
async def test_stores_what_beanie_stores(app: FastAPI, make: Callable[[], Document]) -> None:
    ours = make()
    beanies = ours.model_copy()
    collection = type(ours).get_pymongo_collection()

    await insert_document(ours)
    assert isinstance(ours.id, ObjectId)
    stored = await collection.find_one({"_id": ours.id})
    await collection.delete_one({"_id": ours.id})  # a session's token hash is stored once
    await beanies.insert()
    reference = await collection.find_one({"_id": beanies.id})

    assert stored is not None and reference is not None
    assert beanies.id != ours.id
    assert stored.pop("_id") == ours.id
    reference.pop("_id")
    assert stored == reference
