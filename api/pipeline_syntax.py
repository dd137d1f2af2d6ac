"""The pieces every pipeline check shares: the error, positions, field paths, names and options.

Stages, expressions and `$match` queries all name fields, create fields and take option objects;
checking those one way everywhere keeps hidden paths answering exactly like unknown ones.
"""

import re
from typing import Any

MAX_NAME_LENGTH = 256
MAX_REGEX_LENGTH = 256
MAX_INT64 = 2**63 - 1  # larger integers cannot be encoded as BSON
# MongoDB's rule for user variable names: a lower-case letter first, so no clash with system ones.
VARIABLE_NAME = re.compile(r"[a-z][A-Za-z0-9_]{0,62}")


class PipelineError(ValueError):
    """A pipeline the engine refuses; the message names the stage or operator and its position."""


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


def check_options(
    value: object, pos: str, allowed: set[str], required: set[str], noun: str = "option"
) -> dict:
    """An object of named options (a stage's) or arguments (an operator's, with `noun`)."""
    if not isinstance(value, dict):
        raise PipelineError(f"{pos}: expected an object")
    if unknown := sorted(set(value) - allowed):
        raise PipelineError(f"{pos}: unknown {noun} {unknown[0]!r}")
    if missing := sorted(required - set(value)):
        raise PipelineError(f"{pos}: missing {noun} {missing[0]!r}")
    return value


def check_integer(value: object, pos: str, low: int, high: int = MAX_INT64) -> int:
    if type(value) is not int or not low <= value <= high:
        raise PipelineError(f"{pos}: expected an integer from {low} to {high}")
    return value
