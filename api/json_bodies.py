"""JSON request bodies, read by the busiest write routes themselves as FastAPI would read them.

A FastAPI `Body` parameter parses the request's Content-Type again (with `email.message`) and
validates the parsed value again, ~10 µs on every request; the body policy
(api/middleware.py) has already refused any body that is not JSON. The routes that read their
body here document it with `OBJECT_BODY`, as FastAPI documents a `dict[str, Any]` body.

The answers are FastAPI's; only their order differs. FastAPI read the body before the route's
dependencies; read here, it comes after the guard, so a write that is unauthenticated (401), to
a collection or document out of reach (404), or refused by the rule (403) is answered so
whatever its body holds.
"""

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

OBJECT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True, "title": "Body"}
            }
        },
    }
}


def _invalid(kind: str, message: str, *where: int) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body", *where), "msg": message}])


async def json_body(request: Request) -> Any:
    """The request's JSON body: 400 if it is not JSON, 422 if there is none."""
    try:
        raw = await request.body()
    except ClientDisconnect as error:  # gone mid-body: an answer nobody reads, not a crash
        raise HTTPException(400, "There was an error parsing the body") from error
    if not raw:
        raise _invalid("missing", "Field required")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise _invalid("json_invalid", "JSON decode error", error.pos) from error
    except (RecursionError, ValueError) as error:  # too deep, not text, a number past 4300 digits
        raise HTTPException(400, "There was an error parsing the body") from error


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object: 400 if it is not JSON, else 422."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise _invalid("dict_type", "Input should be a valid dictionary")
    return body
