"""Writing documents: validated by the collection's schema, with system fields and versions."""

from collections.abc import Callable
from typing import Any

import bson
from bson import CodecOptions, ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from api.etags import etag_matches
from api.field_op_guards import unread_inc_guards
from api.field_ops import OpsError, parse_ops, plan_ops
from api.guards import Access, Target
from api.problems import Problem, not_found
from api.rendering import to_json, user_fields
from api.rules import caller_id
from api.schemas import DocumentInvalid
from documents.users import utc_now

# Without If-Match, a write that lost a race re-reads and tries again this many times.
MAX_ATTEMPTS = 20
# MongoDB's TypeMismatch and PathNotViable: an $inc the stored document cannot take.
_INC_REFUSALS = frozenset({14, 28})


def unique_conflict() -> Problem:
    return Problem(409, "A document with the same value of a unique field already exists")


def precondition_failed() -> Problem:
    return Problem(412, "The document has changed since the version given in If-Match")


def validate(access: Access, body: object, loc: tuple[str | int, ...] = ("body",)) -> dict:
    """The document as it will be stored, or 422 naming every problem."""
    try:
        return access.collection.compiled.validate(body)
    except DocumentInvalid as error:
        errors = [{"loc": [*loc, *e["loc"]], "msg": e["msg"]} for e in error.errors]
        detail = "The document does not fit the collection's schema"
        raise Problem(422, detail, errors=errors) from error


def new_document(fields: dict, owner: str | None) -> dict:
    now = utc_now()
    return {**fields, "_owner": owner, "_created": now, "_updated": now, "_version": 1}


async def insert(access: Access, body: object) -> dict:
    stored = new_document(validate(access, body), caller_id(access.principal))
    try:
        await access.collection.storage.insert_one(stored)
    except DuplicateKeyError as error:
        raise unique_conflict() from error
    return stored


def successor(stored: dict, fields: dict) -> dict:
    """The next version of a stored document, holding `fields`."""
    return {
        **fields,
        "_id": stored["_id"],
        "_owner": stored.get("_owner"),
        "_created": stored["_created"],
        "_updated": utc_now(),
        "_version": stored["_version"] + 1,
    }


def as_stored(document: dict, options: CodecOptions) -> dict:
    """`document` as the server keeps it (dates to the millisecond), to compare with one read."""
    stored: dict = bson.decode(bson.encode(document, codec_options=options), codec_options=options)
    return stored


async def rewrite(target: Target, compute: Callable[[dict], Any], if_match: str | None) -> dict:
    """Replaces the document with `compute(current user fields)`, validated.

    The replace is conditional on the version read, so of two concurrent writers only one wins;
    without If-Match the loser recomputes on the fresh document, with it the loser gets 412.
    """
    stored = target.stored
    for _ in range(MAX_ATTEMPTS):
        if if_match is not None and not etag_matches(if_match, stored["_version"]):
            raise precondition_failed()
        following = successor(stored, validate(target, compute(to_json(user_fields(stored)))))
        try:
            result = await target.collection.storage.replace_one(
                {"_id": stored["_id"], "_version": stored["_version"]}, following
            )
        except DuplicateKeyError as error:
            raise unique_conflict() from error
        if result.matched_count == 1:
            return following
        current = await target.collection.storage.find_one(
            {"_id": stored["_id"], **target.narrowing}, max_time_ms=target.max_time_ms
        )
        if current is None:
            raise not_found("Document not found")
        stored = current
    raise Problem(409, "The document is being changed by others; try again")


async def remove(target: Target, if_match: str | None) -> None:
    stored = target.stored
    query: dict = {"_id": stored["_id"], **target.narrowing}
    if if_match is not None:
        if not etag_matches(if_match, stored["_version"]):
            raise precondition_failed()
        query["_version"] = stored["_version"]
    result = await target.collection.storage.delete_one(query)
    if result.deleted_count == 0:
        if if_match is not None and await target.collection.storage.find_one(
            {"_id": stored["_id"]}, {"_id": 1}
        ):
            raise precondition_failed()
        raise not_found("Document not found")


async def apply_ops(access: Access, doc_id: ObjectId, body: object, if_match: str | None) -> dict:
    """Applies field operators in one atomic update whose guard keeps the result schema-valid.

    The guard encodes the bounds the result must respect (a maximum, maxItems), so concurrent
    increments all land without a version race; only constraints a guard cannot express fall
    back to the version check. Increments alone first try without reading the document.
    """
    try:
        ops = parse_ops(body, access.collection.fields, allow_write_only=access.is_admin)
    except OpsError as error:
        await _stored(access, doc_id)  # a document out of reach is a 404 before any 422
        raise Problem(422, "The operations are not valid", errors=error.errors) from error
    if if_match is None and (changed := await _unread_inc(access, doc_id, ops)) is not None:
        return changed
    storage, stored = access.collection.storage, await _stored(access, doc_id)
    for _ in range(MAX_ATTEMPTS):
        if if_match is not None and not etag_matches(if_match, stored["_version"]):
            raise precondition_failed()
        try:
            plan = plan_ops(ops, stored, access.collection.compiled.schema)
        except OpsError as error:
            raise Problem(422, "The operations are not valid", errors=error.errors) from error
        validated = validate(access, to_json(plan.result))
        query = _guarded(access, doc_id, [plan.guard] if plan.guard else [])
        if plan.needs_version_guard or if_match is not None:
            query["_version"] = stored["_version"]
        update = {
            **_stored_items(plan.update, stored, validated),
            "$currentDate": {"_updated": True},
        }
        update["$inc"] = {**update.get("$inc", {}), "_version": 1}
        try:
            changed = await storage.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError as error:
            raise unique_conflict() from error
        if changed is not None:
            return changed
        stored = await _stored(access, doc_id)
    raise Problem(409, "The document is being changed by others; try again")


async def _unread_inc(access: Access, doc_id: ObjectId, ops: dict) -> dict | None:
    """Increments alone, in one update sent without reading: the document after it, or None
    when it must be read and planned (another operator, an enum, a guard unmet, no document)."""
    collection = access.collection
    guards = unread_inc_guards(ops, collection.fields, collection.compiled.schema)
    if guards is None:
        return None
    update = {"$inc": {**ops["inc"], "_version": 1}, "$currentDate": {"_updated": True}}
    try:
        return await collection.storage.find_one_and_update(
            _guarded(access, doc_id, guards), update, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError as error:
        raise unique_conflict() from error
    except OperationFailure as error:
        # A stored value the guards could not rule out (an array of numbers, a parent that is
        # no object): reading the document then explains it.
        if error.code in _INC_REFUSALS:
            return None
        raise


def _guarded(access: Access, doc_id: ObjectId, guards: list[dict]) -> dict:
    """The update filter: the document, if the caller's rule admits it and the guards hold."""
    query: dict = {"_id": doc_id, **access.narrowing}
    if guards:
        # Inside $and: the stand-in writes a top-level $or into SQL unparenthesised, and
        # `A OR B AND _id = ?` then matches other documents.
        query["$and"] = guards
    return query


async def _stored(access: Access, doc_id: ObjectId) -> dict:
    stored: dict | None = await access.collection.storage.find_one(
        {"_id": doc_id, **access.narrowing}, max_time_ms=access.max_time_ms
    )
    if stored is None:
        raise not_found("Document not found")
    return stored


def _path(document: dict, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _stored_items(update: dict, before: dict, after: dict) -> dict:
    """The update with each added array item as validation stored it (defaults, dates)."""
    update = {operator: dict(changes) for operator, changes in update.items()}
    for operator in ("$push", "$addToSet"):
        for path in list(update.get(operator, {})):
            grown, previous = _path(after, path), _path(before, path)
            if isinstance(grown, list) and len(grown) > len(previous or []):
                update[operator][path] = grown[-1]
            else:  # already present: adding it again would be a no-op
                del update[operator][path]
        if operator in update and not update[operator]:
            del update[operator]
    return update
