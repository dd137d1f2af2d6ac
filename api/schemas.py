"""Collection schemas once compiled: the model checking each write, and the errors schemas raise.

`api.schema_compiler` builds a `CompiledSchema` once per schema, so each write then costs one
pydantic validation.
"""

from dataclasses import dataclass

import bson
from pydantic import BaseModel, ValidationError

from api import schema_types
from api.fields import FieldSpec

# Below MongoDB's 16 MiB, leaving room for the system fields.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024


class _ErrorList(Exception):
    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


class SchemaError(_ErrorList):
    """The schema itself is unacceptable; each error's loc starts with "schema"."""


class DocumentInvalid(_ErrorList):
    """A document does not satisfy its collection's schema; each loc is a path in the document."""


@dataclass(frozen=True)
class CompiledSchema:
    schema: dict
    model: type[BaseModel]
    fields: dict[str, FieldSpec]

    def validate(self, data: object) -> dict:
        """The document to store: defaults filled in, date-times as aware UTC datetimes."""
        if not isinstance(data, dict):
            raise DocumentInvalid([{"loc": [], "msg": "Document should be a JSON object"}])
        try:
            document = self.model.model_validate(data)
        except ValidationError as exc:
            raise DocumentInvalid(schema_types.document_errors(exc)) from None
        stored = document.model_dump(by_alias=True)
        # MongoDB refuses documents over 16 MiB with a server error; field operators can grow
        # one past that a request at a time, so the limit is a validation failure instead.
        if len(bson.encode(stored)) > MAX_DOCUMENT_BYTES:
            message = f"The document is larger than {MAX_DOCUMENT_BYTES} bytes"
            raise DocumentInvalid([{"loc": [], "msg": message}])
        return stored
