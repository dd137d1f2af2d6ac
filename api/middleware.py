"""Pure ASGI middleware: request ids, the last-resort 500, access logs and security headers."""

import json
import logging
import re
import secrets
import time
from collections.abc import Iterable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import AccessLog, Answered
from api.problems import PROBLEM_MEDIA_TYPE, Problem, problem_body, problem_response

logger = logging.getLogger("cabinet")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The interactive docs load their own scripts and styles; every other response is plain data.
DOCS_PATHS = ("/docs", "/redoc")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The routes whose bodies are not JSON: the OAuth2 sign-in form and file imports (which have a
# size limit of their own). Matched exactly, so no other path can borrow the exemption.
FREE_FORM_ROUTES = re.compile(r"^/v1/(auth/token|collections/[a-z][a-z0-9_]{0,62}/import)$")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
API_SECURITY_HEADERS = [*SECURITY_HEADERS, (b"content-security-policy", API_CSP.encode())]
OWN_HEADER_NAMES = frozenset({b"x-request-id", *(name for name, _ in API_SECURITY_HEADERS)})


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if REQUEST_ID.match(candidate):
                return candidate
    return secrets.token_hex(16)  # as long as a UUID's hex, without the UUID object


class RequestContextMiddleware:
    """Gives each request an id, echoes it, logs and counts it, turns a crash into a 500 problem."""

    def __init__(self, app: ASGIApp, access_log: AccessLog) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = _with_headers(message.get("headers", ()), request_id, scope)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if not response_started:
                body = json.dumps(
                    problem_body(500, f"An unexpected error occurred (request {request_id})")
                ).encode()
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            took = time.perf_counter() - started
            self.access_log.add(Answered.of(scope, request_id, status, took, time.time()))


def _with_headers(
    raw: Iterable[tuple[bytes, bytes]], request_id: str, scope: Scope
) -> list[tuple[bytes, bytes]]:
    """A response's headers with the request id, and the security headers it did not set."""
    present = {name.lower() for name, _ in raw}
    wanted = SECURITY_HEADERS if scope["path"].startswith(DOCS_PATHS) else API_SECURITY_HEADERS
    own = (b"x-request-id", request_id.encode())
    if present.isdisjoint(OWN_HEADER_NAMES):  # as a route answers: none of them set
        return [*raw, *wanted, own]
    headers = [(name, value) for name, value in raw if name.lower() != b"x-request-id"]
    headers += [(name, value) for name, value in wanted if name not in present]
    headers.append(own)
    return headers


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyPolicyMiddleware:
    """Refuses a body that is not JSON (415) or is larger than the limit (413), whether it
    declares its size or streams past it. The sign-in form and imports (CSV, NDJSON, with
    their own limit) are exempt.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            path: str = scope["path"]
            exempt = scope["method"] == "POST" and FREE_FORM_ROUTES.match(path) is not None
            if not exempt:
                response = self._refusal(scope)
                if response is not None:
                    await response(scope, receive, send)
                    return
                receive = self._counting(receive)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        """415 or 413 for what the request's headers say of its body, or None."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name, value)  # the first of each name, as a Request reads it
        declared: bytes | None = headers.get(b"content-length")
        has_body = declared not in (None, b"0") or b"transfer-encoding" in headers
        if has_body and not _is_json(headers.get(b"content-type", b"").decode("latin-1")):
            return problem_response(415, "Send the request body as application/json")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            return problem_response(
                413, f"The request body is larger than {self.max_body_bytes} bytes"
            )
        return None

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # An HTTPException passes through FastAPI's body parsing to the 413 handler.
                raise Problem(413, f"The request body is larger than {self.max_body_bytes} bytes")
            return message

        return counted
