"""Loading the demo data set through the app's own code: definitions, accounts, validated writes.

Needs Beanie initialised (`api.database.connect`), as the API and the seed CLI both do.
"""

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from api import passwords
from api.catalog import Collection, bind, load_collection
from api.collection_admin import create_collection, drop_collection
from api.document_writes import new_document
from documents.collections import CollectionCreate, CollectionDef
from documents.users import User
from seed.demo_data import DEFINITIONS, DEMO_SEED, generate

DEMO_PASSWORD = "cabinet-demo"  # noqa: S105 - published: the demo accounts' password
READER_EMAILS = tuple(f"reader{number}@example.com" for number in range(1, 6))
EDITOR_EMAIL = "editor@example.com"
EDITOR_ROLE = "editor"
BATCH_SIZE = 1000
DEMO_NAMES = tuple(definition["name"] for definition in DEFINITIONS)

# Called with a collection name and how many of its documents are stored so far.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class DemoResult:
    loaded: bool
    existing: tuple[str, ...]  # demo collections found before loading
    counts: dict[str, int]
    seconds: float = 0.0

    @property
    def documents(self) -> int:
        return sum(self.counts.values())

    @property
    def users(self) -> tuple[str, ...]:
        return (*READER_EMAILS, EDITOR_EMAIL)

    @property
    def password(self) -> str:
        return DEMO_PASSWORD

    def summary(self) -> str:
        if not self.loaded:
            return (
                f"The demo collections already exist ({', '.join(self.existing)}); "
                "nothing loaded (use --force to drop and reload them)."
            )
        counts = ", ".join(f"{count} {name}" for name, count in self.counts.items())
        rate = self.documents / self.seconds if self.seconds else 0.0
        return (
            f"Demo data loaded: {counts} in {self.seconds:.1f} s ({rate:.0f} documents/s). "
            f"Demo users: {', '.join(self.users)} / password: {DEMO_PASSWORD}"
        )


async def existing_demo_collections() -> tuple[str, ...]:
    found = await CollectionDef.find({"name": {"$in": list(DEMO_NAMES)}}).to_list()
    return tuple(sorted(definition.name for definition in found))


async def _demo_account(email: str, roles: list[str]) -> User:
    """The demo account, created or reset to the demo password so the printed one works."""
    password_hash = await passwords.hash_password(DEMO_PASSWORD)
    user = await User.find_one(User.email == email)
    if user is None:
        user = User(email=email, name=email.split("@")[0].title(), password_hash=password_hash)
        user.roles = roles
        await user.insert()
        return user
    await user.set(
        {
            User.password_hash: password_hash,
            User.disabled: False,
            User.roles: sorted({*user.roles, *roles}),
        }
    )
    return user


async def _store(
    collection: Collection,
    records: Iterable[tuple[str | None, dict]],
    progress: Progress | None,
) -> int:
    """Validates each record by the collection's schema and inserts them in batches."""
    stored = 0
    batch: list[dict] = []
    for owner, record in records:
        fields = {key: value for key, value in record.items() if key != "_id"}
        document = new_document(collection.compiled.validate(fields), owner)
        if "_id" in record:
            document["_id"] = record["_id"]
        batch.append(document)
        if len(batch) == BATCH_SIZE:
            await collection.storage.insert_many(batch)
            stored += len(batch)
            batch = []
            if progress is not None:
                progress(collection.name, stored)
    if batch:
        await collection.storage.insert_many(batch)
        stored += len(batch)
    if progress is not None:
        progress(collection.name, stored)
    return stored


async def load_demo(
    scale: float = 1.0,
    *,
    force: bool = False,
    seed: int = DEMO_SEED,
    progress: Progress | None = None,
) -> DemoResult:
    """Defines authors, books and reviews and fills them; does nothing if any of them exists.

    With `force`, the existing demo collections are dropped (with their documents) first.
    """
    existing = await existing_demo_collections()
    if existing and not force:
        return DemoResult(loaded=False, existing=existing, counts={})
    started = time.perf_counter()
    for name in existing:
        collection = await load_collection(name)
        if collection is not None:
            await drop_collection(collection)
    *readers, editor = await asyncio.gather(
        *(_demo_account(email, []) for email in READER_EMAILS),
        _demo_account(EDITOR_EMAIL, [EDITOR_ROLE]),
    )
    collections = {}
    for definition in DEFINITIONS:
        # Indexes are built before the documents arrive, although building them afterwards would
        # be faster: the embedded database cannot build a text index over existing documents
        # in a collection that was dropped before (as --force does).
        created = await create_collection(CollectionCreate.model_validate(definition))
        collections[created.name] = bind(created)
    records = generate(scale, seed, readers=len(readers))
    editor_id = str(editor.id)
    reader_ids = [str(reader.id) for reader in readers]
    counts = {
        "authors": await _store(
            collections["authors"], ((editor_id, r) for r in records.authors), progress
        ),
        "books": await _store(
            collections["books"], ((editor_id, r) for r in records.books), progress
        ),
        "reviews": await _store(
            collections["reviews"], ((reader_ids[i], r) for i, r in records.reviews), progress
        ),
    }
    return DemoResult(
        loaded=True, existing=existing, counts=counts, seconds=time.perf_counter() - started
    )
