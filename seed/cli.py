"""The `python -m seed` command line: arguments, the database for direct mode, and exit codes.

Exit codes: 0 done (an import with no failed row), 1 the work failed (an import with failed rows),
2 a usage error.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from api.import_batches import ImportReport
from api.importing import ImportFormat, ImportMode
from api.problems import Problem
from api.settings import Settings
from documents.users import ADMIN_ROLE, Credentials, User
from seed import importer
from seed.admin import create_or_reset_admin
from seed.connection import DatabaseInUse, direct_database
from seed.demo import load_demo
from seed.importer import ImportRefused
from seed.progress import ProgressLine

OK, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m seed",
        description="Load Cabinet's demo data, import files in bulk, and manage admin accounts. "
        "Direct mode uses CABINET_MONGODB_URL, or starts the embedded database on "
        "CABINET_DATA_DIR (default ./data) while the API is stopped.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="load the demo data set (authors, books, reviews)")
    demo.add_argument("--force", action="store_true", help="drop and reload the demo collections")
    demo.add_argument("--scale", type=float, default=1.0, help="size factor (default 1.0)")

    imports = commands.add_parser("import", help="import an NDJSON, CSV or JSON-array file")
    imports.add_argument("file", type=Path, metavar="FILE")
    imports.add_argument("--collection", required=True, metavar="NAME")
    imports.add_argument("--format", choices=get_args(ImportFormat), help="default: by extension")
    imports.add_argument("--mode", choices=get_args(ImportMode), default="insert")
    imports.add_argument("--key", metavar="FIELD", help="the unique field upserts match on")
    imports.add_argument(
        "--create", action="store_true", help="define the collection first if it does not exist"
    )
    imports.add_argument(
        "--schema",
        type=Path,
        metavar="SCHEMA.json",
        help="for --create: a JSON Schema, or {schema, rules, indexes}",
    )
    imports.add_argument("--url", help="import through a running API at this address")
    imports.add_argument("--api-key", help="with --url: an API key (X-API-Key)")
    imports.add_argument(
        "--owner",
        metavar="EMAIL",
        help="direct mode: the account owning records without _owner (default: the first admin)",
    )

    admin = commands.add_parser("admin", help="create an admin, or reset one's password and role")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="default: a generated one, printed")
    return parser


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    line = ProgressLine("demo", unit="documents")
    totals: dict[str, int] = {}

    def progress(name: str, stored: int) -> None:
        totals[name] = stored
        line.update(sum(totals.values()))

    async with direct_database(settings):
        result = await load_demo(args.scale, force=args.force, progress=progress)
    if result.loaded:
        line.finish()
    print(result.summary())
    return OK


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    try:
        Credentials(email=args.email, password=args.password or "placeholder")
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
        raise UsageError(problems) from error
    async with direct_database(settings):
        account = await create_or_reset_admin(args.email, args.password)
    shown = f" / password: {account.password}" if account.generated else ""
    verb = "created" if account.created else "reset (password set, admin role granted)"
    print(f"Admin account {verb}: {account.email}{shown}")
    return OK


async def _owner_id(email: str | None) -> str:
    if email is not None:
        user = await User.find_one(User.email == email.lower())
        if user is None:
            raise UsageError(f"no account with the email {email}")
    else:
        user = await User.find({"roles": ADMIN_ROLE}).sort("+created").first_or_none()
        if user is None:
            raise UsageError("no admin account yet: create one with `python -m seed admin`")
    return str(user.id)


def _report(report: ImportReport) -> int:
    print(json.dumps(report.model_dump(), indent=2))
    return OK if report.failed == 0 else FAILED


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise UsageError(f"no such file: {args.file}")
    if args.mode == "upsert" and not args.key:
        raise UsageError("--mode upsert needs --key FIELD")
    if args.create != (args.schema is not None):
        raise UsageError("--create and --schema go together")
    if (args.url is None) != (args.api_key is None):
        raise UsageError("--url and --api-key go together")
    create = importer.read_definition(args.schema, args.collection) if args.create else None
    line = ProgressLine(args.file.name, unit="rows" if args.url is None else "lines sent")

    def progress(count: int, errors: int | None) -> None:
        line.update(count, errors)

    common = {
        "file_format": args.format,
        "mode": args.mode,
        "key": args.key,
        "create": create,
        "progress": progress,
    }
    if args.url is not None:
        report = await importer.import_over_http(
            args.file, args.collection, args.url, args.api_key, **common
        )
    else:
        async with direct_database(settings):
            owner = await _owner_id(args.owner)
            report = await importer.import_file(
                args.file,
                args.collection,
                importer.admin_principal(owner),
                max_time_ms=settings.query_timeout_ms,
                **common,
            )
    line.errors = report.failed
    line.finish()
    return _report(report)


COMMANDS = {"demo": _demo, "admin": _admin, "import": _import}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # exits with 2 on a usage error
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        print(f"seed: the settings are not valid: {problems}", file=sys.stderr)
        return USAGE
    try:
        return asyncio.run(COMMANDS[args.command](settings, args))
    except (UsageError, DatabaseInUse) as error:
        print(f"seed: {error}", file=sys.stderr)
        return USAGE
    except ImportRefused as error:
        print(f"seed: {error}", file=sys.stderr)
        return USAGE if error.usage else FAILED
    except Problem as error:
        detail = error.detail
        for item in error.errors or []:
            detail += f"\n  {item.get('loc')}: {item.get('msg')}"
        print(f"seed: {detail}", file=sys.stderr)
        return USAGE if error.status_code in (400, 404, 409, 415, 422) else FAILED
    except KeyboardInterrupt:
        print("seed: interrupted", file=sys.stderr)
        return 130
