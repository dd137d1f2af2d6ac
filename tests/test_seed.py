"""The seed CLI: the demo data set, `seed import` (direct and over HTTP) and `seed admin`."""

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.catalog import load_collection
from api.settings import Settings
from documents.collections import CollectionCreate, CollectionDef
from documents.users import User
from seed.demo import DEMO_PASSWORD, READER_EMAILS, load_demo
from seed.demo_data import sizes
from seed.importer import ImportRefused, admin_principal, import_file, import_over_http
from tests import factories

SCALE = 0.05
NOTES = CollectionCreate.model_validate(
    {
        "name": "notes",
        "schema": {
            "type": "object",
            "required": ["code", "text"],
            "properties": {
                "code": {"type": "string"},
                "text": {"type": "string", "maxLength": 20},
                "stars": {"type": "integer"},
            },
        },
        "indexes": [{"fields": ["code"], "unique": True}],
    }
)
NDJSON = "\n".join(
    [
        '{"code": "a", "text": "first"}',
        '{"code": "b", "text": "second", "stars": 3}',
        '{"code": "c", "text": "third", "stars": "3"}',
        "{not json",
        '{"code": "a", "text": "same code again"}',
        '{"code": "d", "text": "fourth"}',
    ]
)


async def _titles() -> list[str]:
    collection = await load_collection("books")
    assert collection is not None
    cursor = collection.storage.find({}, {"title": 1}).sort("_id", 1)
    return [document["title"] async for document in cursor]


async def test_demo_defines_collections_with_rules_and_indexes(app: FastAPI) -> None:
    result = await load_demo(scale=SCALE)

    assert result.loaded
    assert result.counts == sizes(SCALE)
    definitions = {d.name: d for d in await CollectionDef.find_all().to_list()}
    assert set(definitions) == {"authors", "books", "reviews"}
    books, reviews = definitions["books"], definitions["reviews"]
    assert books.rules.list == ["public"] and books.rules.read == ["public"]
    assert reviews.rules.create == ["authenticated"]
    assert reviews.rules.update == ["owner"] and reviews.rules.delete == ["owner"]
    assert any(spec.text == ["title", "summary"] for spec in books.indexes)
    assert any(spec.fields == ["isbn"] and spec.unique for spec in books.indexes)
    for name, expected in sizes(SCALE).items():
        collection = await load_collection(name)
        assert collection is not None
        assert await collection.storage.count_documents({}) == expected


async def test_demo_reviews_belong_to_demo_readers(app: FastAPI) -> None:
    await load_demo(scale=SCALE)

    readers = await User.find({"email": {"$in": list(READER_EMAILS)}}).to_list()
    collection = await load_collection("reviews")
    assert collection is not None
    owners = set(await collection.storage.distinct("_owner"))
    assert owners <= {str(reader.id) for reader in readers}
    assert len(owners) > 1


async def test_demo_is_reproducible(app: FastAPI) -> None:
    await load_demo(scale=SCALE)
    first = await _titles()

    again = await load_demo(scale=SCALE, force=True)

    assert again.loaded and again.existing == ("authors", "books", "reviews")
    assert await _titles() == first
    assert len(first) == sizes(SCALE)["books"]


async def test_second_demo_run_does_nothing(app: FastAPI) -> None:
    await load_demo(scale=SCALE)

    second = await load_demo(scale=SCALE)

    assert not second.loaded
    assert second.counts == {}
    assert "already exist" in second.summary()
    collection = await load_collection("books")
    assert collection is not None
    assert await collection.storage.count_documents({}) == sizes(SCALE)["books"]


async def test_demo_reader_logs_in_and_lists_books(app: FastAPI, client: AsyncClient) -> None:
    await load_demo(scale=SCALE)
    reader = await factories.login(client, READER_EMAILS[0], DEMO_PASSWORD)

    response = await client.get(
        "/v1/collections/books/documents",
        params={"filter": json.dumps({"year": {"$gte": 1900}}), "sort": "-year", "limit": 5},
        headers=reader.headers,
    )

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert 0 < len(items) <= 5
    years = [item["year"] for item in items]
    assert years == sorted(years, reverse=True)


async def test_import_counts_inserted_and_failed_rows(app: FastAPI, tmp_path: Path) -> None:
    source = tmp_path / "notes.ndjson"
    source.write_text(NDJSON)
    seen: list[tuple[int, int | None]] = []

    report = await import_file(
        source,
        "notes",
        admin_principal("6b0a00000000000000000001"),
        create=NOTES,
        progress=lambda rows, errors: seen.append((rows, errors)),
    )

    assert (report.inserted, report.updated, report.failed) == (3, 0, 3)
    assert [error.line for error in report.errors] == [3, 4, 5]
    assert "unique" in report.errors[2].detail
    assert seen[-1] == (6, 3)
    collection = await load_collection("notes")
    assert collection is not None
    stored = await collection.storage.find_one({"code": "a"})
    assert stored is not None and stored["_owner"] == "6b0a00000000000000000001"


async def test_import_upsert_by_key_updates(app: FastAPI, tmp_path: Path) -> None:
    source = tmp_path / "notes.ndjson"
    source.write_text('{"code": "a", "text": "one"}\n{"code": "b", "text": "two"}\n')
    principal = admin_principal("6b0a00000000000000000001")
    await import_file(source, "notes", principal, create=NOTES)
    source.write_text('{"code": "a", "text": "changed"}\n{"code": "c", "text": "three"}\n')

    report = await import_file(source, "notes", principal, mode="upsert", key="code")

    assert (report.inserted, report.updated, report.failed) == (1, 1, 0)


async def test_import_into_missing_collection_is_refused(app: FastAPI, tmp_path: Path) -> None:
    source = tmp_path / "notes.ndjson"
    source.write_text('{"code": "a", "text": "one"}\n')

    try:
        await import_file(source, "notes", admin_principal("6b0a00000000000000000001"))
    except ImportRefused as error:
        assert "no collection named 'notes'" in str(error)
    else:
        raise AssertionError("the import ran")


async def test_import_over_http_streams_to_the_endpoint(
    app: FastAPI, client: AsyncClient, tmp_path: Path
) -> None:
    boss = await factories.admin(client)
    created = await client.post(
        "/v1/api-keys", json={"name": "seed", "roles": ["admin"]}, headers=boss.headers
    )
    assert created.status_code == 201, created.text
    source = tmp_path / "notes.ndjson"
    source.write_text(NDJSON)

    report = await import_over_http(
        source,
        "notes",
        "http://cabinet.test",
        created.json()["key"],
        create=NOTES,
        transport=ASGITransport(app=app),
    )

    assert (report.inserted, report.failed) == (3, 3)
    assert [error.line for error in report.errors] == [3, 4, 5]


def _seed(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    assert settings.mongodb_url is not None
    environment = {
        **os.environ,
        "CABINET_MONGODB_URL": settings.mongodb_url,
        "CABINET_DATABASE": settings.database,
    }
    return subprocess.run(
        [sys.executable, "-m", "seed", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
        check=False,
    )


async def test_admin_command_creates_then_resets(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    created = _seed(settings, "admin", "--email", "Chief@example.com")
    assert created.returncode == 0, created.stderr
    assert "created: chief@example.com / password: " in created.stdout
    generated = created.stdout.rsplit("password: ", 1)[1].strip()
    await factories.login(client, "chief@example.com", generated)
    user = await User.find_one(User.email == "chief@example.com")
    assert user is not None
    await user.set({User.roles: [], User.disabled: True})

    reset = _seed(settings, "admin", "--email", "chief@example.com", "--password", "a new secret")

    assert reset.returncode == 0, reset.stderr
    assert "reset" in reset.stdout and "a new secret" not in reset.stdout
    account = await factories.login(client, "chief@example.com", "a new secret")
    me = await client.get("/v1/auth/me", headers=account.headers)
    assert me.json()["roles"] == ["admin"]
    refused = _seed(settings, "admin", "--email", "not-an-email")
    assert refused.returncode == 2
