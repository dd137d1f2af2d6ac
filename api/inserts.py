"""Storing a new Beanie document in one driver call, for the ones written on every sign-in."""

from beanie import Document


async def insert_document(document: Document) -> None:
    """Stores `document` and sets its id, as `document.insert()` does for a document with no
    event actions, revision, links or state management, whose values are ones BSON holds as
    they are (str, numbers, bool, None, datetimes, ids, and lists and dicts of them): Beanie's
    encoder would also turn an Enum, a set or a Decimal into one, this does not.

    Beanie's insert spends ~0.2 ms of CPU around the driver's call, resolving actions, encoding
    the model field by field and building a TypeAdapter for the new id: a sixth of a sign-in's
    work besides the password hash, which writes two documents (its session, its audit entry).
    """
    fields = document.model_dump(by_alias=True, exclude={"id", "revision_id"})
    result = await type(document).get_pymongo_collection().insert_one(fields)
    document.id = result.inserted_id
