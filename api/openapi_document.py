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


def declare_path_parameters(document: dict[str, Any]) -> dict[str, Any]:
    """Each operation's path parameters that no route or dependency declares, declared as
    FastAPI declares a plain `str` one, ahead of the operation's other parameters.

    The busiest guards read `{name}` and `{doc_id}` from the request rather than declaring
    them: FastAPI extracts and validates each declared parameter on every request (~6 µs).
    """
    for path, operations in document.get("paths", {}).items():
        names = _TEMPLATED.findall(path)
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            parameters = operation.get("parameters", [])
            declared = {p.get("name") for p in parameters if p.get("in") == "path"}
            missing = [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "title": name.replace("_", " ").title()},
                }
                for name in names
                if name not in declared
            ]
            if missing:
                operations[method] = _with_parameters(operation, missing + parameters)
    return document


def _with_parameters(operation: dict[str, Any], parameters: list) -> dict[str, Any]:
    """`operation` with `parameters`, where FastAPI puts them: right after the operation id."""
    amended: dict[str, Any] = {}
    for key, value in operation.items():
        if key != "parameters":
            amended[key] = value
        if key == "operationId":
            amended["parameters"] = parameters
    amended.setdefault("parameters", parameters)
    return amended


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
