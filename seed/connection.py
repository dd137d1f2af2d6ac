"""The database for direct mode, reached through the app's own `connect` (never another way).

With `CABINET_MONGODB_URL` unset, the embedded database is started on `CABINET_DATA_DIR` for the
length of the command, unless the API already runs one there.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pymongo import AsyncMongoClient

from api.database import connect
from api.embedded import EmbeddedDatabase
from api.settings import Settings

PID_FILE = "nx-27017.pid"


class DatabaseInUse(Exception):
    """The embedded database on this data directory belongs to a running API."""


def running_embedded_server(data_dir: Path) -> int | None:
    """The pid of a live embedded server on `data_dir` whose parent (the API) is alive too.

    One whose parent died is stale: `EmbeddedDatabase.start` stops it.
    """
    pid_file = data_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
    if b"nx" not in cmdline or str(data_dir).encode() not in cmdline:
        return None
    return pid if parent > 1 else None


@asynccontextmanager
async def direct_database(settings: Settings) -> AsyncIterator[AsyncMongoClient]:
    """A connected client with Beanie initialised, as the API's lifespan has it."""
    embedded: EmbeddedDatabase | None = None
    url = settings.mongodb_url
    try:
        if url is None:
            pid = running_embedded_server(settings.data_dir)
            if pid is not None:
                raise DatabaseInUse(
                    f"the API's embedded database is running on {settings.data_dir} "
                    f"(pid {pid}); stop the API first, or go through it with --url and --api-key"
                )
            embedded = EmbeddedDatabase(settings.data_dir)
            url = await asyncio.to_thread(embedded.start)
        client = await connect(url, settings.database)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                await client.close()
    finally:
        if embedded is not None:
            embedded.stop()
