"""Entity tags for documents (the stored `_version`, quoted) and the conditions that name them."""

from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

# Longer than any list of tags a client means to send; bounds the work of matching one.
MAX_CONDITION_LENGTH = 1024


def etag(version: int) -> str:
    return f'"{version}"'


def etag_matches(header: str, version: int) -> bool:
    """Whether an If-Match / If-None-Match header names this version (weak tags compare equal)."""
    if header.strip() == "*":
        return True
    tags = (tag.strip().removeprefix("W/") for tag in header.split(","))
    return etag(version) in tags


def condition(request: Request, header: str) -> str | None:
    """The request's `If-Match` or `If-None-Match` (`header`, in lower case), or None; 422 past
    MAX_CONDITION_LENGTH characters.

    Read here, not declared as a FastAPI `Header` parameter: one such parameter costs ~25 µs of
    CPU on every request (5 % of a read by id), and these are on the busiest routes. The routes
    document the header with `documented(...)`, as FastAPI would have.
    """
    value = request.headers.get(header)
    if value is not None and len(value) > MAX_CONDITION_LENGTH:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("header", header),
                    "msg": f"String should have at most {MAX_CONDITION_LENGTH} characters",
                }
            ]
        )
    return value


def documented(header: str) -> dict[str, Any]:
    """A route's `openapi_extra` naming the optional `header` (e.g. "If-Match") it reads."""
    schema = {
        "anyOf": [{"type": "string", "maxLength": MAX_CONDITION_LENGTH}, {"type": "null"}],
        "title": header,
    }
    parameter = {"name": header.lower(), "in": "header", "required": False, "schema": schema}
    return {"parameters": [parameter]}
