"""A typed OpenAPI document for one collection, from its JSON Schema, for client generators.

The schema an admin defines is already JSON Schema, which OpenAPI 3.1 speaks natively, so the
document types are the definition itself plus the system fields, not a lossy round trip.
"""

import copy
from typing import Any

from api.catalog import Collection

ID = {"type": "string", "pattern": "^[0-9a-f]{24}$", "readOnly": True}
SYSTEM_PROPERTIES = {
    "_id": ID,
    "_owner": {"type": ["string", "null"], "readOnly": True},
    "_created": {"type": "string", "format": "date-time", "readOnly": True},
    "_updated": {"type": "string", "format": "date-time", "readOnly": True},
    "_version": {"type": "integer", "minimum": 1, "readOnly": True},
}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _closed(schema: Any) -> Any:
    """The schema with Cabinet's default made explicit: objects allow no unknown properties."""
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) if key in ("items",) else value for key, value in schema.items()}
    if "properties" in schema:
        closed["properties"] = {name: _closed(sub) for name, sub in schema["properties"].items()}
    types = schema.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types):
        closed.setdefault("additionalProperties", False)
    return closed


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict:
    problem = {"content": {"application/problem+json": {"schema": PROBLEM}}}
    return {str(status): {"description": "Problem", **problem} for status in statuses}


def collection_openapi(collection: Collection, server: str) -> dict[str, Any]:
    name = collection.name
    title = "".join(part.capitalize() for part in name.split("_"))
    base = f"/v1/collections/{name}"
    ref = {"$ref": f"#/components/schemas/{title}"}
    write = {"$ref": f"#/components/schemas/{title}Write"}
    user_schema = _closed(copy.deepcopy(collection.definition.schema_))
    stored = copy.deepcopy(user_schema)
    stored["properties"] = {**SYSTEM_PROPERTIES, **stored.get("properties", {})}
    stored["required"] = [*SYSTEM_PROPERTIES, *stored.get("required", [])]
    doc_id = {"name": "doc_id", "in": "path", "required": True, "schema": ID}
    if_match = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}
    page = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": ref},
            "next_cursor": {"type": ["string", "null"]},
            "total": {"type": "integer"},
        },
        "required": ["items", "next_cursor"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"Cabinet collection {name}",
            "version": str(collection.definition.version),
        },
        "servers": [{"url": server}],
        "paths": {
            f"{base}/documents": {
                "get": {
                    "operationId": f"list{title}",
                    "responses": {
                        "200": {"description": "A page", **_json(page)},
                        **_problems(400, 401, 403),
                    },
                },
                "post": {
                    "operationId": f"create{title}",
                    "requestBody": {"required": True, **_json(write)},
                    "responses": {
                        "201": {"description": "Created", **_json(ref)},
                        **_problems(401, 403, 409, 422),
                    },
                },
            },
            f"{base}/documents/{{doc_id}}": {
                "parameters": [doc_id],
                "get": {
                    "operationId": f"get{title}",
                    "responses": {
                        "200": {"description": "The document", **_json(ref)},
                        **_problems(401, 404),
                    },
                },
                "put": {
                    "operationId": f"replace{title}",
                    "parameters": [if_match],
                    "requestBody": {"required": True, **_json(write)},
                    "responses": {
                        "200": {"description": "Replaced", **_json(ref)},
                        **_problems(404, 409, 412, 422),
                    },
                },
                "patch": {
                    "operationId": f"patch{title}",
                    "parameters": [if_match],
                    "requestBody": {
                        "required": True,
                        "content": {"application/merge-patch+json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": {"description": "Patched", **_json(ref)},
                        **_problems(404, 409, 412, 422),
                    },
                },
                "delete": {
                    "operationId": f"delete{title}",
                    "parameters": [if_match],
                    "responses": {"204": {"description": "Deleted"}, **_problems(404, 412)},
                },
            },
        },
        "components": {
            "schemas": {
                title: stored,
                f"{title}Write": user_schema,
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["type", "title", "status", "detail"],
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}, {}],
    }
