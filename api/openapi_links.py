"""OpenAPI 3.1 links between operations: which answer gives the id another operation takes.

A client (or a stateful fuzzer) can follow them: the document `POST …/documents` created can be
read, replaced, patched, changed with field operators and deleted; a new collection can be read,
changed, dropped and filled; a new API key revoked; a new account looked up by an admin.

Links name their target by `operationId`, looked up from the method and path here, so renaming a
route function cannot leave a link pointing nowhere: `add_links` fails loudly instead.
"""

from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

COLLECTIONS = "/v1/collections"
COLLECTION = "/v1/collections/{name}"
DOCUMENTS = "/v1/collections/{name}/documents"
DOCUMENT = "/v1/collections/{name}/documents/{doc_id}"
FIELD_OPS = "/v1/collections/{name}/documents/{doc_id}/ops"
USER = "/v1/users/{user_id}"
API_KEYS = "/v1/api-keys"
API_KEY = "/v1/api-keys/{key_id}"
REGISTER = "/v1/auth/register"

RESPONSE_HEADER = "$response.header."
RESPONSE_HEADERS = {
    "ETag": {
        "description": "The document's version, for If-Match and If-None-Match",
        "schema": {"type": "string"},
    }
}
SAME_COLLECTION = {"path.name": "$request.path.name"}
SAME_DOCUMENT = {**SAME_COLLECTION, "path.doc_id": "$request.path.doc_id"}


@dataclass(frozen=True)
class Link:
    """`name` on the `status` answer of `source` leads to `target`, with `parameters` filled in."""

    name: str
    source: tuple[str, str]
    status: str
    target: tuple[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    description: str = ""


def _document_links(source: tuple[str, str], status: str, ids: dict[str, str]) -> list[Link]:
    """The item routes of one document, reached from an answer that names it and has its ETag.

    Writes send that ETag as `If-Match`, so they apply to the version the answer described.
    """
    writes = {**ids, "header.if-match": "$response.header.ETag"}
    return [
        Link("ReadDocument", source, status, ("get", DOCUMENT), ids, "Read this document"),
        Link("ReplaceDocument", source, status, ("put", DOCUMENT), writes, "Replace its fields"),
        Link("PatchDocument", source, status, ("patch", DOCUMENT), writes, "Merge-patch it"),
        Link("ApplyFieldOps", source, status, ("post", FIELD_OPS), writes, "Apply field operators"),
        Link("DeleteDocument", source, status, ("delete", DOCUMENT), writes, "Delete it"),
    ]


def _links() -> list[Link]:
    created_document = {**SAME_COLLECTION, "path.doc_id": "$response.body#/_id"}
    new_collection = {"path.name": "$response.body#/name"}
    new_account = {"path.user_id": "$response.body#/user/id"}
    first_listed = {**SAME_COLLECTION, "path.doc_id": "$response.body#/items/0/_id"}
    return [
        *_document_links(("post", DOCUMENTS), "201", created_document),
        # A changed document can be changed again, read back or deleted.
        *(
            link
            for method, path in (("put", DOCUMENT), ("patch", DOCUMENT), ("post", FIELD_OPS))
            for link in _document_links((method, path), "200", SAME_DOCUMENT)
        ),
        Link("ReadListedDocument", ("get", DOCUMENTS), "200", ("get", DOCUMENT), first_listed),
        *(
            Link(name, ("post", COLLECTIONS), "201", target, new_collection, description)
            for name, target, description in (
                ("ReadCollection", ("get", COLLECTION), "Read the new definition"),
                ("UpdateCollection", ("patch", COLLECTION), "Change its schema, rules or indexes"),
                ("DeleteCollection", ("delete", COLLECTION), "Drop it"),
                ("ListDocuments", ("get", DOCUMENTS), "List its documents"),
                ("CreateDocument", ("post", DOCUMENTS), "Store a document in it"),
            )
        ),
        Link(
            "RevokeApiKey",
            ("post", API_KEYS),
            "201",
            ("delete", API_KEY),
            {"path.key_id": "$response.body#/id"},
            "Revoke the new key",
        ),
        *(
            Link(name, ("post", REGISTER), "201", target, new_account)
            for name, target in (
                ("ReadUser", ("get", USER)),
                ("UpdateUser", ("patch", USER)),
                ("DeleteUser", ("delete", USER)),
            )
        ),
    ]


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """Adds the links to `schema` (an OpenAPI document FastAPI generated) in place."""
    paths: dict[str, dict[str, Any]] = schema["paths"]

    def operation(method: str, path: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = paths[path][method]
        except KeyError:
            raise LookupError(f"An OpenAPI link names {method.upper()} {path}, no route") from None
        return found

    for link in _links():
        response = operation(*link.source)["responses"][link.status]
        for expression in link.parameters.values():
            # A header a link reads is one the answer documents.
            if expression.startswith(RESPONSE_HEADER):
                header = expression.removeprefix(RESPONSE_HEADER)
                response.setdefault("headers", {}).setdefault(
                    header, deepcopy(RESPONSE_HEADERS[header])
                )
        definition: dict[str, Any] = {"operationId": operation(*link.target)["operationId"]}
        if link.parameters:
            definition["parameters"] = dict(link.parameters)
        if link.description:
            definition["description"] = link.description
        response.setdefault("links", {})[link.name] = definition
    return schema
