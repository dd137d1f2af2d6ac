"""Fix E to neosqlite, applied by `api.embedded_fixes` inside the embedded stand-in's process.

neosqlite runs an aggregation in SQL when it can and otherwise in Python, over the whole
collection. Its Python `$lookup` joins on localField/foreignField alone and ignores the stage's
`pipeline`, which is where Cabinet puts the joined collection's rule filter and the removal of its
write-only fields: a pipeline that lands there (a join on `_owner` followed by `$unwind`, say)
would hand a caller other users' documents, hidden fields included. With this fix the stand-in
refuses such a pipeline instead, so Cabinet answers 400 ("The database could not run this
request"). MongoDB runs a `$lookup`'s pipeline wherever it stands and needs nothing of this.

Unlike the other fixes it applies whatever neosqlite's version: it only refuses, and a join that
skipped its rules would be a leak rather than a slowdown. If the function it wraps has moved, the
stand-in's process logs so loudly.
"""

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)
_PATCHED = "__cabinet_patched__"
REFUSAL = "$lookup with a pipeline cannot run in this server's Python aggregation"


def joins_with_pipeline(stages: Iterable[object]) -> bool:
    """Whether a `$lookup` with a pipeline stands among `stages`, or inside a `$facet`'s."""
    for stage in stages:
        if not isinstance(stage, dict):
            continue
        lookup = stage.get("$lookup")
        if isinstance(lookup, dict) and lookup.get("pipeline"):
            return True
        facet = stage.get("$facet")
        if isinstance(facet, dict) and any(
            isinstance(branch, list) and joins_with_pipeline(branch) for branch in facet.values()
        ):
            return True
    return False


def apply() -> bool:
    """Wraps neosqlite's Python aggregation so that it refuses joins it would run unfiltered."""
    try:
        from neosqlite.collection import query_engine
        from neosqlite.exceptions import MalformedQueryException

        original = query_engine.execute_python_aggregation
    except (ImportError, AttributeError) as error:
        logger.error("neosqlite internals moved (%s): joins in Python are not refused", error)
        return False
    if getattr(original, _PATCHED, False):
        return True

    def execute_python_aggregation(engine: Any, pipeline: Any, session: Any = None) -> Any:
        if isinstance(pipeline, list) and joins_with_pipeline(pipeline):
            raise MalformedQueryException(REFUSAL)
        return original(engine, pipeline, session)

    setattr(execute_python_aggregation, _PATCHED, True)
    # The query engine calls it through its own module's global.
    query_engine.execute_python_aggregation = execute_python_aggregation
    return True
