"""The app's OpenAPI document: FastAPI's, amended by Cabinet's additions, built once and kept."""

import re
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


_TEMPLATED = re.compile(r"{(\w+)}")


def order_path_parameters(document: dict[str, Any]) -> dict[str, Any]:
    """Each operation's path parameters in the order its path names them, in the places they
    held among the others.

    FastAPI lists a route's own parameters before its dependencies', so a route whose guard
    reads `{name}` and which reads `{doc_id}` itself listed `doc_id` first; clients generated
    from the document then took the two in a different order on that one operation.
    """
    for path, operations in document.get("paths", {}).items():
        place = {name: index for index, name in enumerate(_TEMPLATED.findall(path))}
        for operation in operations.values():
            parameters = operation.get("parameters", []) if isinstance(operation, dict) else []
            slots = [i for i, parameter in enumerate(parameters) if parameter.get("in") == "path"]
            in_order = sorted((parameters[i] for i in slots), key=lambda p: place.get(p["name"], 0))
            for slot, parameter in zip(slots, in_order, strict=True):
                parameters[slot] = parameter
    return document
