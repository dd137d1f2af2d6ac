"""The indexes a collection definition asks of the server."""

from api.catalog import _signature, index_models
from api.database import ServerTraits
from api.fields import outermost
from documents.collections import CollectionDef, IndexSpec

MONGODB = ServerTraits(late_join_rules=True, id_in_compound_index=True)
# The stand-in as `api.embedded_fixes` leaves it, and as it runs where those fixes were refused.
STAND_IN = ServerTraits(late_join_rules=False, id_in_compound_index=True)
UNPATCHED_STAND_IN = ServerTraits(late_join_rules=False, id_in_compound_index=False)


def _definition(*indexes: IndexSpec) -> CollectionDef:
    return CollectionDef.model_construct(name="books", indexes=list(indexes))


def test_owner_index_keeps_id_order_where_the_server_can() -> None:
    for traits in (MONGODB, STAND_IN):
        [owner] = index_models(_definition(), traits)
        assert owner.document["key"] == {"_owner": 1, "_id": 1}
    [plain] = index_models(_definition(), UNPATCHED_STAND_IN)
    assert plain.document["key"] == {"_owner": 1}


def test_unique_index_covers_only_documents_that_have_the_fields() -> None:
    spec = IndexSpec(fields=["isbn", "-year"], unique=True)
    _, unique = index_models(_definition(spec), MONGODB)
    assert unique.document["key"] == {"isbn": 1, "year": -1}
    assert unique.document["unique"] is True
    assert unique.document["partialFilterExpression"] == {
        "isbn": {"$exists": True},
        "year": {"$exists": True},
    }


def test_text_index_spans_its_fields() -> None:
    _, text = index_models(_definition(IndexSpec(text=["title", "summary"])), MONGODB)
    assert text.document["key"] == {"title": "text", "summary": "text"}


def test_hidden_paths_name_only_the_outermost_field() -> None:
    # A projection naming a field and its child is a path collision on MongoDB.
    assert outermost(["profile.pin", "profile", "cards.cvc", "note", "notes.x"]) == (
        "cards.cvc",
        "note",
        "notes.x",
        "profile",
    )


def test_a_listed_text_index_is_known_by_its_fields() -> None:
    _, text = index_models(_definition(IndexSpec(text=["title", "summary"])), MONGODB)
    # How MongoDB lists the same index: internal keys, the fields as weights.
    listed = {"key": [("_fts", "text"), ("_ftsx", 1)], "weights": {"summary": 1, "title": 1}}
    assert _signature(text.document) == _signature(listed)
