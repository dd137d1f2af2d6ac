"""The operator allowlists and the walker that check aggregation expressions.

An aggregation expression can compute anything MongoDB can, including running JavaScript
(`$function`, `$accumulator`) or reading server state (`$$CLUSTER_TIME`, `$$USER_ROLES`), so every
operator and every variable must be on an allowlist, and every field path it names is checked
against the paths the caller may not see. The walkers return fresh copies, never the input.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from api.pipeline_syntax import (
    MAX_REGEX_LENGTH,
    VARIABLE_NAME,
    PipelineError,
    at,
    check_field_path,
    check_literal,
    check_options,
    check_output_name,
    is_hidden,
)
from api.regex_safety import regex_risk

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
# `$$CLUSTER_TIME`, `$$USER_ROLES`, `$$SEARCH_META`, ... read server state: not on this list.
SYSTEM_VARIABLES = frozenset({"ROOT", "CURRENT", "REMOVE", "NOW"})
# Whole-document variables: a path under them names a field of the document, like "$path" does.
DOCUMENT_VARIABLES = frozenset({"ROOT", "CURRENT"})

# No `x`: in verbose mode comments and spaces could hide a risky shape from the scanner.
EXPRESSION_REGEX_OPTIONS = frozenset("ims")


@dataclass(frozen=True, slots=True)
class ExpressionScope:
    """What an expression may name: `hidden` paths are refused, `variables` are bound user names."""

    hidden: frozenset[str]
    variables: frozenset[str]

    def binding(self, names: Iterable[str]) -> "ExpressionScope":
        return ExpressionScope(self.hidden, self.variables | frozenset(names))


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
        args = check_options(argument, pos, {"vars", "in"}, {"vars", "in"}, noun="argument")
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
        args = check_options(
            argument, pos, {"input", "as", body} | extra, {"input", body}, noun="argument"
        )
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
        args = check_options(argument, pos, keys, keys, noun="argument")
        out = {
            key: check_expression(args[key], at(pos, key), scope)
            for key in ("input", "initialValue")
        }
        out["in"] = check_expression(args["in"], at(pos, "in"), scope.binding(["this", "value"]))
        return out
    return check_expression(argument, pos, scope)


def _check_regex_operator(argument: Any, pos: str, scope: ExpressionScope) -> dict:
    # A literal, bounded pattern: a computed one could be anything, and long ones invite ReDoS.
    args = check_options(
        argument, pos, {"input", "regex", "options"}, {"input", "regex"}, noun="argument"
    )
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
    args = check_options(args, pos, {"field", "input"}, {"field"}, noun="argument")
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
