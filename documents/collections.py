"""Collection definitions: the schema, access rules and indexes an admin gives a collection."""

from datetime import datetime
from typing import Annotated, Any, Self

from beanie import Document, Indexed, PydanticObjectId
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from documents.users import Strict, utc_now

CollectionName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Grant = Annotated[
    str, StringConstraints(pattern=r"^(public|authenticated|owner|role:[a-z][a-z0-9_-]{0,31})$")
]
Grants = Annotated[list[Grant], Field(max_length=16)]
IndexKey = Annotated[str, StringConstraints(pattern=r"^[+-]?[A-Za-z_][A-Za-z0-9_.]{0,254}$")]
ACTIONS = ("list", "read", "create", "update", "delete")


class Rules(Strict):
    """Who may do what; a partial object keeps the defaults for the actions it leaves out."""

    list: Grants = ["owner"]
    read: Grants = ["owner"]
    create: Grants = ["authenticated"]
    update: Grants = ["owner"]
    delete: Grants = ["owner"]


class IndexSpec(Strict):
    """`{fields: ["title", "-year"], unique?}` or `{text: ["title", "summary"]}`."""

    fields: Annotated[list[IndexKey], Field(min_length=1, max_length=16)] | None = None
    unique: bool = False
    text: Annotated[list[IndexKey], Field(min_length=1, max_length=16)] | None = None

    @model_validator(mode="after")
    def one_kind(self) -> Self:
        if (self.fields is None) == (self.text is None):
            raise ValueError("an index has either `fields` or `text`")
        if self.text is not None and self.unique:
            raise ValueError("a text index cannot be unique")
        return self


Indexes = Annotated[list[IndexSpec], Field(max_length=32)]


class CollectionDef(Document):
    name: Annotated[str, Indexed(unique=True)]
    schema_: dict[str, Any] = Field(alias="schema")
    rules: Rules = Rules()
    indexes: list[IndexSpec] = []
    # Bumped on every change, so each API process knows when its compiled schema is stale.
    version: int = 1
    created: datetime = Field(default_factory=utc_now)
    updated: datetime = Field(default_factory=utc_now)

    class Settings:
        name = "collections"

    @property
    def storage_name(self) -> str:
        """The MongoDB collection holding the documents, apart from the system collections."""
        return f"c_{self.name}"


class CollectionCreate(Strict):
    name: CollectionName
    schema_: dict[str, Any] = Field(alias="schema")
    rules: Rules = Rules()
    indexes: Indexes = []


class CollectionUpdate(Strict):
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    rules: Rules | None = None
    indexes: Indexes | None = None


class CollectionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: PydanticObjectId
    name: str
    schema_: dict[str, Any] = Field(serialization_alias="schema")
    rules: Rules
    indexes: list[IndexSpec]
    version: int
    created: datetime
    updated: datetime
