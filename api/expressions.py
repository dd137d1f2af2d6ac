"""The operator allowlists and the walkers that check aggregation expressions and `$match` queries.

An aggregation expression can compute anything MongoDB can, including running JavaScript
(`$function`, `$accumulator`) or reading server state (`$$CLUSTER_TIME`, `$$USER_ROLES`), so every
operator and every variable must be on an allowlist, and every field path it names is checked
against the paths the caller may not see. The walkers return fresh copies, never the input.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from api.filters import regex_risk


class PipelineError(ValueError):
    """A pipeline the engine refuses; the message names the stage or operator and its position."""


_ARITHMETIC = (
    "$add $subtract $multiply $divide $mod $abs $ceil $floor $round $trunc $pow $sqrt $exp"
)
_MATH = (
    "$ln $log $log10 $sin $cos $tan $asin $acos $atan $atan2 $degreesToRadians $radiansToDegrees"
)
_COMPARISON = "$eq $ne $gt $gte $lt $lte $cmp $and $or $not $cond $ifNull $switch"
_STRING = (
    "$concat $substr $substrCP $substrBytes $toLower $toUpper $trim $ltrim $rtrim $split $strLenCP"
    " $strLenBytes $indexOfCP $indexOfBytes $replaceOne $replaceAll $strcasecmp"
)
_ARRAY = (
    "$size $arrayElemAt $first $last $in $filter $map $reduce $slice $concatArrays $isArray $range"
    " $reverseArray $indexOfArray $sortArray $zip $objectToArray $arrayToObject $mergeObjects"
    " $setUnion $setIntersection $setDifference $setEquals $setIsSubset $anyElementTrue"
    " $allElementTrue $firstN $lastN $maxN $minN"
)
_DATE = (
    "$year $month $dayOfMonth $dayOfWeek $dayOfYear $hour $minute $second $millisecond $week"
    " $isoWeek $isoWeekYear $isoDayOfWeek $dateToString $dateFromString $dateToParts"
    " $dateFromParts $dateTrunc $dateAdd $dateSubtract $dateDiff"
)
_TYPE = "$type $convert $toString $toInt $toLong $toDouble $toDecimal $toBool $toDate $toObjectId"
# `$setField`/`$unsetField` are left out: they write arbitrary (even `$`-prefixed) field names.
_MISC = "$isNumber $literal $let $getField $rand"
_ACCUMULATORS = (
    "$sum $avg $min $max $first $last $push $addToSet $count $stdDevPop $stdDevSamp $mergeObjects"
    " $top $bottom $topN $bottomN $firstN $lastN $maxN $minN $median $percentile"
)
REGEX_OPERATORS = frozenset({"$regexMatch", "$regexFind", "$regexFindAll"})

# What `$group`, `$bucket` and `$bucketAuto` outputs may use.
ACCUMULATOR_OPERATORS = frozenset(_ACCUMULATORS.split())
EXPRESSION_OPERATORS = (
    frozenset(
        " ".join((_ARITHMETIC, _MATH, _COMPARISON, _STRING, _ARRAY, _DATE, _TYPE, _MISC)).split()
    )
    | ACCUMULATOR_OPERATORS
    | REGEX_OPERATORS
)
# The same language as the list filter (PRODUCT.md "Filter language"); `$expr`, `$where`,
# `$function` and `$text` stay out, so a query can never evaluate an expression.
QUERY_LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor"})
QUERY_FIELD_OPERATORS = frozenset({
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$options",
    "$all", "$size", "$elemMatch", "$not",
})  # fmt: skip
# `$$CLUSTER_TIME`, `$$USER_ROLES`, `$$SEARCH_META`, ... read server state: not on this list.
SYSTEM_VARIABLES = frozenset({"ROOT", "CURRENT", "REMOVE", "NOW"})
# Whole-document variables: a path under them names a field of the document, like "$path" does.
DOCUMENT_VARIABLES = frozenset({"ROOT", "CURRENT"})

MAX_REGEX_LENGTH = 256
MAX_NAME_LENGTH = 256
# No `x`: in verbose mode comments and spaces could hide a risky shape from the scanner.
EXPRESSION_REGEX_OPTIONS = frozenset("ims")
QUERY_REGEX_OPTIONS = frozenset("im")
# MongoDB's rule for user variable names: a lower-case letter first, so no clash with system ones.
VARIABLE_NAME = re.compile(r"[a-z][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class ExpressionScope:
    """What an expression may name: `hidden` paths are refused, `variables` are bound user names."""

    hidden: frozenset[str]
    variables: frozenset[str]

    def binding(self, names: Iterable[str]) -> "ExpressionScope":
        return ExpressionScope(self.hidden, self.variables | frozenset(names))


def at(pos: str, key: str | int) -> str:
    return f"{pos}[{key}]" if isinstance(key, int) else f"{pos}.{key}"


def is_hidden(path: str, hidden: frozenset[str]) -> bool:
    return any(path == h or path.startswith(h + ".") for h in hidden)


def check_field_path(path: object, pos: str, hidden: frozenset[str]) -> str:
    """A dotted path naming an existing field; hidden ones answer like unknown ones."""
    if not isinstance(path, str) or not path or len(path) > MAX_NAME_LENGTH or "\x00" in path:
        raise PipelineError(f"{pos}: invalid field path")
    if any(not part or part.startswith("$") for part in path.split(".")):
        raise PipelineError(f"{pos}: invalid field path {path!r}")
    if is_hidden(path, hidden):
        raise PipelineError(f"{pos}: unknown field {path!r}")
    return path


def check_output_name(name: object, pos: str, *, dotted: bool) -> str:
    """A field name a stage creates; `$`-prefixed or empty parts would be read as operators."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or "\x00" in name:
        raise PipelineError(f"{pos}: invalid output field name")
    parts = name.split(".")
    if (not dotted and len(parts) > 1) or any(not p or p.startswith("$") for p in parts):
        raise PipelineError(f"{pos}: invalid output field name {name!r}")
    return name


def check_literal(value: Any, pos: str) -> Any:
    """A constant: strings are not references here, but `$` keys are still refused (they would be
    read as operators by anything that later treats the value as a query or expression)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.startswith("$"):
                raise PipelineError(f"{pos}: operator {key} is not allowed here")
            out[key] = check_literal(item, at(pos, key))
        return out
    if isinstance(value, list):
        return [check_literal(item, at(pos, i)) for i, item in enumerate(value)]
    return value


def check_expression(value: Any, pos: str, scope: ExpressionScope) -> Any:
    if isinstance(value, str):
        return _check_reference(value, pos, scope)
    if isinstance(value, list):
        return [check_expression(item, at(pos, i), scope) for i, item in enumerate(value)]
    if isinstance(value, dict):
        operators = [key for key in value if key.startswith("$")]
        if not operators:
            return {
                check_output_name(key, pos, dotted=True): check_expression(
                    item, at(pos, key), scope
                )
                for key, item in value.items()
            }
        if operators[0] not in EXPRESSION_OPERATORS:
            raise PipelineError(f"{pos}: operator {operators[0]} is not allowed")
        if len(value) != 1:
            raise PipelineError(f"{pos}: an operator object must hold exactly one key")
        operator = operators[0]
        return {operator: _check_operator(operator, value[operator], at(pos, operator), scope)}
    return value


def check_accumulator(value: Any, pos: str, scope: ExpressionScope) -> dict:
    """One output of `$group`/`$bucket`: `{"$sum": <expression>}` and the like."""
    if not isinstance(value, dict) or len(value) != 1:
        raise PipelineError(f"{pos}: expected an accumulator object such as {{'$sum': 1}}")
    ((operator, argument),) = value.items()
    if operator not in ACCUMULATOR_OPERATORS:
        raise PipelineError(f"{pos}: operator {operator} is not allowed")
    return {operator: check_expression(argument, at(pos, operator), scope)}


def _check_reference(value: str, pos: str, scope: ExpressionScope) -> str:
    if value.startswith("$$"):
        name, dot, path = value[2:].partition(".")
        if name not in SYSTEM_VARIABLES and name not in scope.variables:
            raise PipelineError(f"{pos}: variable $${name} is not allowed")
        if dot:
            check_field_path(path, pos, scope.hidden if name in DOCUMENT_VARIABLES else frozenset())
        if name == "ROOT":
            # The same document in every pipeline Cabinet runs (CURRENT is never rebound), but
            # the embedded database reads `$$ROOT` from storage, past the rule-filter stages;
            # `$$CURRENT` is the document as those stages left it on every server.
            return "$$CURRENT" + value[6:]
    elif value.startswith("$"):
        check_field_path(value[1:], pos, scope.hidden)
    return value


def _arguments(argument: Any, pos: str, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(argument, dict):
        raise PipelineError(f"{pos}: expected an object")
    if unknown := sorted(set(argument) - allowed):
        raise PipelineError(f"{pos}: unknown argument {unknown[0]!r}")
    if missing := sorted(required - set(argument)):
        raise PipelineError(f"{pos}: missing argument {missing[0]!r}")
    return argument


def _variable_name(name: object, pos: str) -> str:
    if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
        raise PipelineError(f"{pos}: invalid variable name")
    return name


def _check_operator(operator: str, argument: Any, pos: str, scope: ExpressionScope) -> Any:
    if operator == "$literal":
        return check_literal(argument, pos)
    if operator in REGEX_OPERATORS:
        return _check_regex_operator(argument, pos, scope)
    if operator == "$getField":
        return _check_get_field(argument, pos, scope)
    if operator == "$let":
        args = _arguments(argument, pos, {"vars", "in"}, {"vars", "in"})
        if not isinstance(args["vars"], dict):
            raise PipelineError(f"{at(pos, 'vars')}: expected an object")
        names = [_variable_name(name, at(pos, "vars")) for name in args["vars"]]
        bound = {
            name: check_expression(item, at(at(pos, "vars"), name), scope)
            for name, item in args["vars"].items()
        }
        return {
            "vars": bound,
            "in": check_expression(args["in"], at(pos, "in"), scope.binding(names)),
        }
    if operator in ("$map", "$filter"):
        body = "in" if operator == "$map" else "cond"
        extra = {"limit"} if operator == "$filter" else set()
        args = _arguments(argument, pos, {"input", "as", body} | extra, {"input", body})
        name = _variable_name(args.get("as", "this"), at(pos, "as"))
        out = {
            key: item if key == "as" else check_expression(item, at(pos, key), scope)
            for key, item in args.items()
            if key != body
        }
        out[body] = check_expression(args[body], at(pos, body), scope.binding([name]))
        return out
    if operator == "$reduce":
        keys = {"input", "initialValue", "in"}
        args = _arguments(argument, pos, keys, keys)
        out = {
            key: check_expression(args[key], at(pos, key), scope)
            for key in ("input", "initialValue")
        }
        out["in"] = check_expression(args["in"], at(pos, "in"), scope.binding(["this", "value"]))
        return out
    return check_expression(argument, pos, scope)


def _check_regex_operator(argument: Any, pos: str, scope: ExpressionScope) -> dict:
    # A literal, bounded pattern: a computed one could be anything, and long ones invite ReDoS.
    args = _arguments(argument, pos, {"input", "regex", "options"}, {"input", "regex"})
    regex = args["regex"]
    if not isinstance(regex, str) or len(regex) > MAX_REGEX_LENGTH:
        raise PipelineError(f"{at(pos, 'regex')}: expected a string of at most 256 characters")
    if risk := regex_risk(regex):
        raise PipelineError(f"{at(pos, 'regex')}: {risk}")
    options = args.get("options", "")
    if not isinstance(options, str) or not set(options) <= EXPRESSION_REGEX_OPTIONS:
        raise PipelineError(f"{at(pos, 'options')}: expected some of the options 'ims'")
    out = {"input": check_expression(args["input"], at(pos, "input"), scope), "regex": regex}
    if "options" in args:
        out["options"] = options
    return out


def _check_get_field(argument: Any, pos: str, scope: ExpressionScope) -> Any:
    # `field` is a field name given as a string, so it is a reference the hidden check must see.
    args = argument if isinstance(argument, dict) else {"field": argument}
    args = _arguments(args, pos, {"field", "input"}, {"field"})
    field = args["field"]
    if not isinstance(field, str) or field.startswith("$") or not field:
        raise PipelineError(f"{at(pos, 'field')}: expected a literal field name")
    if is_hidden(field, scope.hidden):
        raise PipelineError(f"{at(pos, 'field')}: unknown field {field!r}")
    if not isinstance(argument, dict):
        return field
    out = {"field": field}
    if "input" in args:
        out["input"] = check_expression(args["input"], at(pos, "input"), scope)
    return out


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
