"""`python -m api`: start the embedded database if no URL is set, prepare, then serve."""

import argparse
import asyncio
import logging.config
import os
import shutil
import signal
import sys

import uvicorn
from pydantic import ValidationError

from api.bootstrap import CREDENTIALS_FILE, ensure_first_admin
from api.database import connect
from api.embedded import EmbeddedDatabase
from api.logs import configure_logging
from api.settings import Settings
from documents.collections import CollectionDef


async def _load_demo_if_empty() -> str | None:
    """Loads the demo data set into a database with no collections yet; what it did, if anything."""
    if await CollectionDef.find_one({}) is not None:
        return None
    from seed.demo import load_demo  # the API itself never needs the demo data

    return (await load_demo()).summary()


async def _prepare(settings: Settings, demo: bool) -> None:
    assert settings.mongodb_url is not None
    client = await connect(settings.mongodb_url, settings.database)
    try:
        account = await ensure_first_admin(settings)
        loaded = await _load_demo_if_empty() if demo else None
    finally:
        await client.close()
    base = f"http://{settings.host}:{settings.port}"
    if account is not None and account.created:
        print(f"Admin account created: {account.email} / password: {account.password}")
    elif settings.env == "development":
        where = settings.data_dir / CREDENTIALS_FILE
        print(f"Admin sign-in: see {where} (written on first start)" if where.exists() else "")
    if loaded is not None:
        print(loaded)
    print(f"Cabinet API on {base}/v1 - interactive docs on {base}/docs", flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api", description="Serve the Cabinet API.")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="load the demo data set first if the database has no collections yet",
    )
    return parser.parse_args()


def main() -> int:
    arguments = _arguments()
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        print(f"cabinet: refusing to start: {problems}", file=sys.stderr)
        return 2
    log_config = configure_logging()
    logging.config.dictConfig(log_config)
    settings.signing_key()  # created once here, so every worker reads the same one
    if settings.workers > 1:
        # Workers write their metrics where one scrape of any of them reads them all.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    embedded = None
    if settings.mongodb_url is None:
        embedded = EmbeddedDatabase(settings.data_dir)
        url = embedded.start()
        # Worker processes read their settings from the environment, so they find it there.
        os.environ["CABINET_MONGODB_URL"] = url
        settings = Settings()
    # uvicorn re-raises SIGTERM once it has shut down; as an exit, it lets `finally` stop the
    # embedded database rather than leaving that to the parent-death signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(_prepare(settings, arguments.demo))
        uvicorn.run(
            "api.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=log_config,
            access_log=False,  # RequestContextMiddleware logs each request, with its id
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies or None,
            server_header=False,
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
