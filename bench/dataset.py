"""The benchmark's accounts, collections and documents, set up through the API itself."""

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from pymongo import MongoClient

from bench.servers import ADMIN_EMAIL, ADMIN_PASSWORD

READER_EMAIL = "bench-reader@example.com"
READER_PASSWORD = "bench-reader-password"  # noqa: S105 - a throwaway benchmark database
OTHER_OWNER = "000000000000000000000000"
CATEGORIES = [f"c{n}" for n in range(8)]
ITEMS_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "category": {"type": "string", "enum": CATEGORIES},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
        "price": {"type": "number", "minimum": 0},
        "likes": {"type": "integer", "minimum": 0},
        "available": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
    },
    "required": ["title", "category", "year"],
}
ITEMS_INDEXES = [{"fields": ["category", "-year"]}]
SEED_BATCH = 5000


def item(n: int, rng: random.Random) -> dict:
    return {
        "title": f"Item number {n}",
        "category": rng.choice(CATEGORIES),
        "year": rng.randint(1900, 2025),
        "price": round(rng.uniform(1, 500), 2),
        "likes": 0,
        "available": rng.random() < 0.7,
        "tags": rng.sample(["red", "green", "blue", "large", "small", "new"], 2),
    }


def items_ndjson(start: int, count: int, owner: str | None = None) -> bytes:
    rng = random.Random(start)
    lines = []
    for n in range(start, start + count):
        row = item(n, rng)
        if owner is not None:
            row["_owner"] = owner
        lines.append(json.dumps(row))
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Dataset:
    """Who the benchmark signs in as, and what the collections hold."""

    admin_token: str
    reader_token: str
    reader_id: str
    owned: int
    item_ids: list[str]

    @property
    def reader_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.reader_token}"}


def _check(response: httpx.Response) -> dict:
    if response.is_error:
        raise RuntimeError(f"{response.request.url.path}: {response.status_code} {response.text}")
    return response.json() if response.content else {}


def _import(http: httpx.Client, collection: str, token: str, body: Iterator[bytes]) -> None:
    for chunk in body:
        report = _check(
            http.post(
                f"/v1/collections/{collection}/import",
                content=chunk,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/x-ndjson",
                },
            )
        )
        if report["failed"]:
            raise RuntimeError(f"seeding {collection} failed: {report['errors'][:3]}")


def create_collection(http: httpx.Client, token: str, definition: dict) -> None:
    _check(
        http.post("/v1/collections", json=definition, headers={"Authorization": f"Bearer {token}"})
    )


def prepare(http: httpx.Client, database: MongoClient, database_name: str, owned: int) -> Dataset:
    """Accounts, the `items`, `writes` and `imports` collections, and `owned` items of the reader
    (with a quarter as many of another owner's, which the owner rule must leave out)."""
    admin = _check(
        http.post("/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    )
    admin_token = admin["access_token"]
    for name in ("items", "writes"):
        create_collection(
            http, admin_token, {"name": name, "schema": ITEMS_SCHEMA, "indexes": ITEMS_INDEXES}
        )
    registered = _check(
        http.post("/v1/auth/register", json={"email": READER_EMAIL, "password": READER_PASSWORD})
    )
    reader_token, reader_id = registered["access_token"], registered["user"]["id"]
    _import(
        http,
        "items",
        reader_token,
        (
            items_ndjson(start, min(SEED_BATCH, owned - start))
            for start in range(0, owned, SEED_BATCH)
        ),
    )
    _import(http, "items", admin_token, iter([items_ndjson(owned, owned // 4, OTHER_OWNER)]))
    storage = database[database_name]["c_items"]
    ids = [str(doc["_id"]) for doc in storage.find({"_owner": reader_id}, {"_id": 1}).limit(1000)]
    return Dataset(admin_token, reader_token, reader_id, owned, ids)
