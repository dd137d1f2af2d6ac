"""The sign-in schemes in the OpenAPI document.

Routes learn their caller from `api.deps.caller`, a plain call, rather than from FastAPI's
security dependencies, which would cost bookkeeping on every request. So the schemes are
declared here instead: every operation whose dependencies identify the caller lists both.
"""

from collections.abc import Iterable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.routing import BaseRoute

from api.deps import IDENTIFYING

# OAuth2, so the docs page's Authorize button can sign in through /v1/auth/token.
SCHEMES = (
    OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False),
    APIKeyHeader(name="X-API-Key", auto_error=False),
)


def _identifies(dependant: Dependant) -> bool:
    named = any(dependant.call is dependency for dependency in IDENTIFYING)  # calls may not hash
    return named or any(map(_identifies, dependant.dependencies))


def add_security(document: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """`document` with the schemes, and the operations of `routes` that identify the caller
    accepting either. The document cannot say which operations a collection's rules open to
    anyone: that is in the rules, and each collection's own document (`…/openapi.json`)."""
    schemes = {
        scheme.scheme_name: scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
        for scheme in SCHEMES
    }
    document.setdefault("components", {})["securitySchemes"] = schemes
    accepted: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    # As FastAPI builds the document: each route as mounted, with its routers' dependencies.
    for route in iter_route_contexts(list(routes)):
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema):
            continue
        if _identifies(route.dependant):
            operations = document["paths"].get(route.path_format, {})
            for method in route.methods or ():
                if method.lower() in operations:
                    operations[method.lower()]["security"] = accepted
    return document
