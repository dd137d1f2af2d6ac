"""Checking a `$match` placed after stages that reshape documents, where no schema applies.

Field names there are whatever earlier stages made, so they cannot be checked against the
collection; the operators are still held to the filter language and the values are constants.
"""

from typing import Any

from api.pipeline_syntax import (
    MAX_REGEX_LENGTH,
    PipelineError,
    at,
    check_field_path,
    check_literal,
)
from api.regex_safety import regex_risk

# The same language as the list filter (PRODUCT.md "Filter language"); `$expr`, `$where`,
# `$function` and `$text` stay out, so a query can never evaluate an expression.
QUERY_LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor"})
QUERY_FIELD_OPERATORS = frozenset({
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$options",
    "$all", "$size", "$elemMatch", "$not",
})  # fmt: skip
# No `x`: in verbose mode comments and spaces could hide a risky shape from the scanner.
QUERY_REGEX_OPTIONS = frozenset("im")


def check_query(query: Any, pos: str, hidden: frozenset[str]) -> dict:
    """A `$match` filter after reshaping, where field names are unknowable: operators are still
    held to the filter language and values are constants."""
    if not isinstance(query, dict):
        raise PipelineError(f"{pos}: expected a filter object")
    out: dict = {}
    for key, value in query.items():
        here = at(pos, key)
        if key in QUERY_LOGICAL_OPERATORS:
            if not isinstance(value, list) or not value:
                raise PipelineError(f"{here}: expected a non-empty list of filters")
            out[key] = [check_query(item, at(here, i), hidden) for i, item in enumerate(value)]
        elif key.startswith("$"):
            raise PipelineError(f"{pos}: operator {key} is not allowed")
        else:
            path = check_field_path(key, here, hidden)
            # Inside `$elemMatch` names are relative to the array's elements.
            below = frozenset(h[len(path) + 1 :] for h in hidden if h.startswith(path + "."))
            out[path] = _check_condition(value, here, below)
    return out


def _check_condition(value: Any, pos: str, hidden: frozenset[str]) -> Any:
    if not isinstance(value, dict) or not any(key.startswith("$") for key in value):
        return check_literal(value, pos)
    if not all(key.startswith("$") for key in value):
        raise PipelineError(f"{pos}: an operator object cannot also hold field names")
    out: dict = {}
    for operator, argument in value.items():
        here = at(pos, operator)
        if operator not in QUERY_FIELD_OPERATORS:
            raise PipelineError(f"{pos}: operator {operator} is not allowed")
        if operator in ("$in", "$nin", "$all"):
            if not isinstance(argument, list):
                raise PipelineError(f"{here}: expected a list")
            out[operator] = check_literal(argument, here)
        elif operator == "$regex":
            if not isinstance(argument, str) or len(argument) > MAX_REGEX_LENGTH:
                raise PipelineError(f"{here}: expected a string of at most 256 characters")
            if risk := regex_risk(argument):
                raise PipelineError(f"{here}: {risk}")
            out[operator] = argument
        elif operator == "$options":
            if not isinstance(argument, str) or not set(argument) <= QUERY_REGEX_OPTIONS:
                raise PipelineError(f"{here}: expected some of the options 'im'")
            if "$regex" not in value:
                raise PipelineError(f"{here}: $options needs $regex")
            out[operator] = argument
        elif operator == "$exists":
            if not isinstance(argument, bool):
                raise PipelineError(f"{here}: expected true or false")
            out[operator] = argument
        elif operator == "$size":
            if type(argument) is not int or argument < 0:
                raise PipelineError(f"{here}: expected a non-negative integer")
            out[operator] = argument
        elif operator == "$not":
            if not isinstance(argument, dict) or not argument:
                raise PipelineError(f"{here}: expected an operator object")
            if not all(key.startswith("$") for key in argument):
                raise PipelineError(f"{here}: expected an operator object")
            out[operator] = _check_condition(argument, here, hidden)
        elif operator == "$elemMatch":
            out[operator] = _check_element_match(argument, here, hidden)
        else:
            out[operator] = check_literal(argument, here)
    return out


def _check_element_match(argument: Any, pos: str, hidden: frozenset[str]) -> dict:
    """`hidden` holds the hidden paths relative to the array's elements."""
    if not isinstance(argument, dict) or not argument:
        raise PipelineError(f"{pos}: expected an object")
    if all(key.startswith("$") and key not in QUERY_LOGICAL_OPERATORS for key in argument):
        return _check_condition(argument, pos, hidden)
    return check_query(argument, pos, hidden)
