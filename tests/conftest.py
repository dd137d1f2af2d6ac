"""One database server and one app for the whole session; every test starts from empty collections.

Set CABINET_TEST_MONGODB_URL to run the same suite against a real MongoDB deployment.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.embedded import EmbeddedDatabase
from api.main import create_app
from api.settings import Settings
from api.watched_cache import forget


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = os.environ.get("CABINET_TEST_MONGODB_URL")
    if url:
        yield url
        return
    database = EmbeddedDatabase(data_dir=None)
    try:
        yield database.start()
    finally:
        database.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        _env_file=None,
        env="development",
        mongodb_url=database_url,
        database=f"cabinet_test_{uuid.uuid4().hex[:12]}",
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key="test-secret-" + "k" * 40,
        signup="open",
        login_rate="10/minute",
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application
        await application.state.mongo.drop_database(settings.database)


@pytest.fixture(autouse=True)
async def empty_collections(request: pytest.FixtureRequest) -> None:
    """Empties every collection (keeping its indexes) before a test that uses the database."""
    if "app" not in request.fixturenames:
        return
    app: FastAPI = request.getfixturevalue("app")
    database = app.state.mongo[app.state.settings.database]
    for name in await database.list_collection_names():
        if not name.startswith("system."):
            await database[name].delete_many({})
            # Emptied behind the app's back: its cached definitions and sessions would
            # otherwise live until the change stream's events arrive.
            forget(name)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://cabinet.test") as http:
        yield http
