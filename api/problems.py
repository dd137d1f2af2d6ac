"""Errors as RFC 9457 `application/problem+json`, for every failure the API can answer."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError, ExecutionTimeout, OperationFailure
from starlette.exceptions import HTTPException

from api.rate_limits import RateLimited

logger = logging.getLogger("cabinet")

PROBLEM_MEDIA_TYPE = "application/problem+json"
BEARER_CHALLENGE = 'Bearer realm="cabinet"'


class ProblemDetail(BaseModel):
    """An error (RFC 9457); `errors` lists each invalid field on a validation failure."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting the problem responses a route can give."""
    return {
        status: {
            "model": ProblemDetail,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


class Problem(HTTPException):
    """An HTTP error with a detail for the client and, for validation failures, `errors`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.errors = errors


def problem_body(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> dict:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", BEARER_CHALLENGE)
    return JSONResponse(
        problem_body(status, detail, errors),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def unauthorized(detail: str = "Missing or invalid credentials") -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": BEARER_CHALLENGE})


def not_found(detail: str = "Not found") -> Problem:
    return Problem(404, detail)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    errors = exc.errors if isinstance(exc, Problem) else None
    headers = exc.headers
    if exc.status_code == 405 and (methods := allowed_methods(request)):
        headers = {**(headers or {}), "Allow": ", ".join(methods)}
    return problem_response(exc.status_code, detail, errors=errors, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: the router names only the first route
    whose path matched, and several routes share a path (a list's GET, a create's POST)."""
    # Routes match the path below the app's root path, as the router saw it.
    root = request.scope.get("root_path", "")
    path: str = request.scope["path"]
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    methods: set[str] = set()
    for route in iter_route_contexts(list(request.app.routes)):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            methods |= route.methods or set()
    return sorted(methods)


def _location(loc: tuple[Any, ...]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(error.get("type") == "json_invalid" for error in raw):
        return problem_response(400, "The request body is not valid JSON")
    # Only where and what: the offending input is not echoed back (it may be a password).
    errors = [{"loc": _location(error["loc"]), "msg": error["msg"]} for error in raw]
    return problem_response(422, "The request is not valid", errors=errors)


async def _timed_out(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(504, "The query ran past its time limit; narrow it or add an index")


async def _refused_by_database(request: Request, exc: Exception) -> JSONResponse:
    # A query the checks let through but the server cannot run (a `$project` mixing inclusion
    # and exclusion, `$toInt` of a word, ...). Its message stays in the log, never in the answer.
    logger.warning("database refused a request", extra={"error": str(exc)[:500]})
    return problem_response(400, "The database could not run this request as given")


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    # The checks before a write or query let through a value BSON cannot hold, and the driver
    # refused to encode it: an integer past 64 bits, or a string with an unpaired surrogate
    # (valid JSON escapes, `\ud800`, that are no Unicode text).
    logger.info("request value not encodable", extra={"error": str(exc)[:200]})
    return problem_response(
        400,
        "The request holds a value the database cannot store: an integer beyond 64 bits "
        "or text with an unpaired surrogate",
    )


async def _duplicate(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(409, "A document with the same value of a unique field already exists")


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return problem_response(
        429, "Too many requests; try again later", headers={"Retry-After": str(exc.retry_after)}
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(ExecutionTimeout, _timed_out)
    app.add_exception_handler(DuplicateKeyError, _duplicate)
    app.add_exception_handler(OperationFailure, _refused_by_database)
    app.add_exception_handler(OverflowError, _unstorable)
    app.add_exception_handler(UnicodeEncodeError, _unstorable)
