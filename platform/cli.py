"""The ``formloom`` command: run the service, upgrade the database, manage apps.

Commands that touch the database bring it to the newest revision first, so the embedded
SQLite default never needs a separate set-up step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from formloom.platform.settings import get_settings


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"formloom: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(
            f"formloom: {path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def _print_problems(errors: Sequence[dict[str, Any]]) -> None:
    width = max((len(e.get("path") or "/") for e in errors), default=1)
    for error in errors:
        print(f"  {(error.get('path') or '/').ljust(width)}  {error['message']}", file=sys.stderr)


async def _with_db(work: Any) -> Any:
    from formloom.platform.apps.service import AppCatalog
    from formloom.platform.db import Database
    from formloom.platform.migrate import upgrade

    db = Database(get_settings().database_url)
    try:
        await upgrade(db)
        return await work(db, AppCatalog())
    finally:
        await db.dispose()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from formloom.platform.api import create_app

    on_startup = None
    if args.demo:
        from formloom.platform.demo import install_demo

        on_startup = install_demo
    app = create_app(on_startup=on_startup)
    print(f"Formloom on http://{args.host}:{args.port}  (database: {get_settings().database_url})")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    async def work(db: Any, _catalog: Any) -> None:
        return None

    asyncio.run(_with_db(work))
    print("database is at the newest revision")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from formloom.platform.apps.definition import DefinitionInvalid, load

    document = _read_json(args.file)
    try:
        spec = load(document)
    except DefinitionInvalid as exc:
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        _print_problems([p.model_dump() for p in exc.problems])
        return 1
    print(
        f"{args.file}: valid {spec.format} app '{spec.key}' {spec.version} "
        f"({len(spec.forms)} forms)"
    )
    return 0


def cmd_app_import(args: argparse.Namespace) -> int:
    from formloom.platform.apps import service
    from formloom.platform.clock import SystemClock
    from formloom.platform.errors import Problem

    document = _read_json(args.file)

    async def work(db: Any, catalog: Any) -> int:
        try:
            if args.dry_run:
                spec = service.validate_document(document)
                async with db.transaction(write=False) as session:
                    plan = await service.plan_import(session, spec, document)
                print(json.dumps(plan, indent=2, ensure_ascii=False))
                return 0
            async with db.transaction() as session:
                result = await service.import_app(
                    session,
                    catalog,
                    document,
                    actor="cli",
                    now=SystemClock(get_settings().timezone).now(),
                )
        except Problem as exc:
            print(f"{args.file}: {exc.detail}", file=sys.stderr)
            _print_problems(exc.errors)
            return 1
        print(
            f"app '{result.app}' {result.status} (revision {result.version}; "
            f"forms: {', '.join(result.forms)})"
        )
        return 0

    return int(asyncio.run(_with_db(work)))


def cmd_app_export(args: argparse.Namespace) -> int:
    from formloom.platform.apps import service
    from formloom.platform.errors import Problem

    async def work(db: Any, _catalog: Any) -> str:
        async with db.transaction(write=False) as session:
            return await service.export_app(session, args.app)

    try:
        text = asyncio.run(_with_db(work))
    except Problem as exc:
        print(f"formloom: {exc.detail}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_app_list(args: argparse.Namespace) -> int:
    from formloom.platform.apps import service

    async def work(db: Any, _catalog: Any) -> list[dict[str, Any]]:
        async with db.transaction(write=False) as session:
            return await service.describe_apps(session)

    apps = asyncio.run(_with_db(work))
    if not apps:
        print("no apps installed")
    for app in apps:
        print(f"{app['key']:<24} {app['version']:<10} rev {app['revision']:<4} {app['label']}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="formloom", description="Forms, rules, flows and reports defined as data."
    )
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="install the clinic CRM demo")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=cmd_serve)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="bring the database to the newest revision").set_defaults(
        run=cmd_db_upgrade
    )

    app = commands.add_parser("app", help="import, export and list apps").add_subparsers(
        dest="app_command", required=True
    )
    imp = app.add_parser("import", help="install or update an app from a JSON file")
    imp.add_argument("file", help="app definition (formloom.app/v1); - for standard input")
    imp.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    imp.set_defaults(run=cmd_app_import)
    exp = app.add_parser("export", help="write an app's definition as JSON")
    exp.add_argument("app")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.set_defaults(run=cmd_app_export)
    app.add_parser("list", help="list installed apps").set_defaults(run=cmd_app_list)

    check = commands.add_parser("check", help="validate an app definition file, offline")
    check.add_argument("file")
    check.set_defaults(run=cmd_check)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
