"""The app's OpenAPI document: FastAPI's, amended by Cabinet's additions, built once and kept."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Amendment = Callable[[dict[str, Any]], dict[str, Any]]


def amend_openapi(app: FastAPI, *amendments: Amendment) -> None:
    """Makes `app.openapi()` serve FastAPI's document with each amendment applied in turn."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for amend in amendments:
                document = amend(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
