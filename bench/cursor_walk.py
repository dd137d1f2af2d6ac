"""Keyset pagination depth: page 1 against page 1,000 of the same query."""

import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

DEPTH = 1000
PATH = "/v1/collections/items/documents"


@dataclass(frozen=True)
class Walk:
    first_page: str
    deep_page: str
    seconds: float  # to reach the deep page by following cursors from page 1


def walk(http: httpx.Client, headers: dict[str, str], limit: int, depth: int = DEPTH) -> Walk:
    """Follows `next_cursor` from page 1 to page `depth`, keeping both pages' request paths."""
    first = f"{PATH}?{urlencode({'limit': limit})}"
    path, started = first, time.perf_counter()
    for page in range(1, depth):
        response = http.get(path, headers=headers)
        response.raise_for_status()
        cursor = response.json()["next_cursor"]
        if cursor is None:
            raise RuntimeError(f"the query ran out after {page} pages of {limit}")
        path = f"{PATH}?{urlencode({'limit': limit, 'cursor': cursor})}"
    http.get(path, headers=headers).raise_for_status()
    return Walk(first, path, time.perf_counter() - started)
