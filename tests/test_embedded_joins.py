"""Fix E: the stand-in refuses a `$lookup` pipeline its Python aggregation would skip."""

import neosqlite
import pytest
from neosqlite.exceptions import MalformedQueryException

from api import embedded_joins

LOOKUP = {"from": "b", "localField": "o", "foreignField": "o", "as": "j"}
RULED = {**LOOKUP, "pipeline": [{"$match": {"o": "me"}}]}


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        ([{"$lookup": RULED}], True),
        ([{"$match": {}}, {"$facet": {"x": [{"$lookup": RULED}]}}], True),
        ([{"$lookup": LOOKUP}], False),
        ([{"$lookup": {**LOOKUP, "pipeline": []}}], False),
        ([{"$match": {"$lookup": 1}}, "not a stage"], False),
    ],
)
def test_joins_with_a_pipeline_are_found_at_the_top_and_in_facets(
    stages: list, expected: bool
) -> None:
    assert embedded_joins.joins_with_pipeline(stages) is expected


def test_the_python_aggregation_refuses_a_join_it_would_run_unfiltered() -> None:
    assert embedded_joins.apply() is True
    assert embedded_joins.apply() is True  # applied once, whatever the calls
    with neosqlite.Connection(":memory:") as db:
        db.a.insert_one({"o": "other"})
        db.b.insert_many([{"o": "other", "secret": "theirs"}, {"o": "me", "secret": "mine"}])
        from neosqlite.collection import query_engine

        engine = db.a.query_engine
        with pytest.raises(MalformedQueryException, match="cannot run"):
            query_engine.execute_python_aggregation(engine, [{"$lookup": RULED}])
        # A join with no pipeline has nothing to skip, and still runs there.
        [joined] = query_engine.execute_python_aggregation(engine, [{"$lookup": LOOKUP}])
        assert [item["secret"] for item in joined["j"]] == ["theirs"]
