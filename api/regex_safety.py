"""Refusing client regular expressions that could backtrack exponentially (ReDoS).

MongoDB runs `$regex` with a backtracking engine, so a pattern is scanned before it is sent:
the list filter, aggregation expressions and `$match` after reshaping stages all check with it.
"""

import re

# The prefix of a `(?...)` group: flags, non-capturing, lookaround, atomic or named.
_GROUP_PREFIX = re.compile(r"\(\?(?:([aiLmsux-]*)[:)]|[=!>]|<[=!]|P<\w+>)")
_BOUND = re.compile(r"\{\d*(?:,\d*)?\}", re.ASCII)
# Each unbounded repetition (`*`, `+`, `{n,}`) that can backtrack over the same text raises the
# degree of a failed match's cost: `a*a*a*a*a*a*a*a*b` took 13 s over forty characters.
MAX_UNBOUNDED = 3


def regex_risk(pattern: str) -> str | None:
    """Why a client's pattern is refused (invalid, or a shape that can backtrack exponentially),
    or None. Aggregation expressions and `$match` after reshaping stages check with it too."""
    try:
        re.compile(pattern)
    except (re.error, ValueError, OverflowError, RecursionError):
        return "not a valid regular expression"
    try:
        return _backtracking_risk(pattern)
    except (IndexError, ValueError):  # a shape the scanner misreads: refuse, never crash
        return "pattern too complex to check"


def _backtracking_risk(pattern: str) -> str | None:
    """Spots the shapes that backtrack exponentially: a repeated group that itself repeats or
    branches, like `(a+)+` or `(a|aa)*`, and backreferences; and more unbounded repetitions than
    MAX_UNBOUNDED, whose failed matches grow as a power of the text. Errs on refusing.

    Only sees patterns `re` compiled, so groups and classes are balanced.
    """
    risky = [False]  # per open group: holds a quantifier or an alternation
    i, after_group, unbounded = 0, False, 0
    while i < len(pattern):
        char, follows_group, after_group = pattern[i], after_group, False
        if char == "\\":
            if pattern[i + 1 : i + 2] in tuple("123456789"):
                return "backreferences are not allowed"
            i += 1
        elif char == "[":
            # A `]` right after `[` or `[^` is a literal, not the end of the class.
            start = i + 2 if pattern.startswith("[^", i) else i + 1
            i = _closing(pattern, start + 1 if pattern[start] == "]" else start, "]")
        elif pattern.startswith(("(?P=", "(?("), i):
            return "backreferences are not allowed"
        elif pattern.startswith("(?#", i):
            i, after_group = _closing(pattern, i + 3, ")"), follows_group
        elif char == "(":
            prefix = _GROUP_PREFIX.match(pattern, i)
            if prefix is None and pattern.startswith("(?", i):
                return "unsupported group syntax"
            if prefix and prefix.group(1) is not None and "x" in prefix.group(1):
                return "the verbose flag is not allowed"
            if prefix and prefix.group().endswith(")"):  # a flag setting, not a group
                i, after_group = prefix.end() - 1, follows_group
            else:
                i = prefix.end() - 1 if prefix else i
                risky.append(False)
        elif char == ")":
            inner = risky.pop()
            risky[-1] = risky[-1] or inner
            after_group = inner
        elif char in "*+?" or _BOUND.match(pattern, i):
            if follows_group and char != "?":
                return "a repeated group must not itself repeat or alternate"
            risky[-1] = True
            if char == "{":
                end = pattern.index("}", i)
                unbounded += pattern[end - 1] == ","
                i = end
            else:
                unbounded += char != "?"
            if unbounded > MAX_UNBOUNDED:
                return f"at most {MAX_UNBOUNDED} unbounded repetitions (*, +, {{n,}}) are allowed"
            if pattern[i + 1 : i + 2] in ("?", "+"):  # lazy or possessive suffix
                i += 1
        elif char == "|":
            risky[-1] = True
        i += 1
    return None


def _closing(pattern: str, i: int, closer: str) -> int:
    """Index of the first unescaped `closer` from `i` on."""
    while pattern[i] != closer:
        i += 2 if pattern[i] == "\\" else 1
    return i
