"""The ``formloom`` command: run the service, upgrade the database, manage apps, users
(``formloom.platform.auth.commands``) and export the audit log
(``formloom.platform.audit.commands``).

Commands that touch the database bring it to the newest revision first, so the embedded
SQLite default never needs a separate set-up step.

Exit codes, for scripts: 0 success; 1 the command failed (e.g. no such app); 2 bad input —
an unreadable file, a file over 10 MB, text that is not JSON, an invalid app definition, or
wrong command-line arguments (argparse's own code). Messages go to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from formloom.platform.console import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    BadInput,
    exit_code,
    print_problems,
    with_db,
)
from formloom.platform.settings import get_settings

#: Largest definition file the CLI reads (the API refuses bodies over 1 MiB by default).
MAX_FILE_BYTES = 10 * 1024 * 1024


def _too_large(name: str) -> BadInput:
    megabytes = MAX_FILE_BYTES // (1024 * 1024)
    return BadInput(f"{name} is larger than {megabytes} MB; refusing to read it")


def _read_bytes(path: str) -> bytes:
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            stream = getattr(sys.stdin, "buffer", None)
            if stream is not None:
                data = bytes(stream.read(MAX_FILE_BYTES + 1))
            else:  # a text stream put in place of stdin (tests, embedding)
                data = sys.stdin.read(MAX_FILE_BYTES + 1).encode("utf-8", "surrogatepass")
        else:
            file = Path(path)
            if file.stat().st_size > MAX_FILE_BYTES:
                raise _too_large(name)
            with file.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)  # it may have grown since
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(name)
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _read_json(path: str) -> Any:
    """The JSON document in ``path`` (``-``: standard input), or ``BadInput``."""
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")  # tolerate the byte order mark some editors write
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise BadInput(f"{path} is not usable JSON: it is nested too deeply") from None
    except ValueError as exc:  # NaN / Infinity, integers of thousands of digits
        raise BadInput(f"{path} is not valid JSON: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from formloom.platform.api import create_app

    on_startup = None
    if args.demo:
        from formloom.platform.demo import install_demo

        on_startup = install_demo
    app = create_app(on_startup=on_startup, freeze_startup_objects=True)
    print(f"Formloom on http://{args.host}:{args.port}  (database: {get_settings().database_url})")
    from formloom.platform.errors import ProblemH11Protocol

    # h11 with its parse errors answered as problem details (see formloom.platform.errors)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level=args.log_level, http=ProblemH11Protocol
    )
    return 0


def _instant(text: str) -> Any:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(
            f"formloom worker: --now {text!r} is not an ISO 8601 date-time (e.g. 2026-12-01T09:00)"
        ) from None
    if moment.tzinfo is None:  # a wall-clock time in the clinic's zone
        moment = moment.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return moment


def cmd_worker(args: argparse.Namespace) -> int:
    """Fire due timers and deliver the outbox: once (``--once``, optionally as of ``--now``)
    or every ``worker_tick_seconds`` until stopped."""
    from formloom.platform.clock import SystemClock
    from formloom.platform.deps import Platform
    from formloom.platform.rules.worker import Worker

    settings = get_settings()
    now = _instant(args.now) if args.now else None
    if now is not None and not args.once:
        raise SystemExit("formloom worker: --now needs --once")

    async def work(db: Any, catalog: Any) -> int:
        if args.once:
            moment = now or SystemClock(settings.timezone).now()
            report = await Worker(db, catalog, settings).run_once(moment)
            print(json.dumps(report.to_dict(), ensure_ascii=False))
            return 0
        from formloom.platform.rules import scheduler

        state = Platform(settings, db, catalog, SystemClock(settings.timezone))
        ticking = scheduler.start(state)
        print(f"formloom worker: every {settings.worker_tick_seconds:g} s (Ctrl+C stops)")
        try:
            await asyncio.Event().wait()
        finally:
            await ticking.stop()
        return 0

    try:
        return int(asyncio.run(with_db(work)))
    except KeyboardInterrupt:
        return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    async def work(db: Any, _catalog: Any) -> None:
        return None

    asyncio.run(with_db(work))
    print("database is at the newest revision")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from formloom.engines.apps import DefinitionInvalid
    from formloom.platform.apps.definition import load

    document = _read_json(args.file)
    try:
        spec = load(document)
    except DefinitionInvalid as exc:
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        print_problems([p.model_dump() for p in exc.problems])
        return EXIT_BAD_INPUT
    print(
        f"{args.file}: valid {spec.format} app '{spec.key}' {spec.version} "
        f"({len(spec.forms)} forms)"
    )
    return 0


def cmd_schema_app(args: argparse.Namespace) -> int:
    from formloom.engines.apps import app_format_schema

    text = json.dumps(app_format_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_app_import(args: argparse.Namespace) -> int:
    from formloom.platform.apps import service
    from formloom.platform.apps.commands import render_table
    from formloom.platform.clock import SystemClock
    from formloom.platform.errors import Problem

    document = _read_json(args.file)

    async def work(db: Any, catalog: Any) -> int:
        from formloom.platform.apps import auditing
        from formloom.platform.audit.log import audit_now
        from formloom.platform.auth.commands import cli_principal

        now = SystemClock(get_settings().timezone).now()
        who = cli_principal()
        key = document.get("key") if isinstance(document, dict) else None
        key = key if isinstance(key, str) else None
        try:
            async with db.transaction(write=not args.dry_run) as session:
                before = await auditing.grants_before(session, catalog, key)
                result = await service.import_app(
                    session,
                    catalog,
                    document,
                    actor=who.username,
                    now=now,
                    allow_destructive=args.allow_destructive,
                    dry_run=args.dry_run,
                )
                if not args.dry_run and result.status != "unchanged":
                    await auditing.audit_change(
                        session, catalog, who, "app.import", result, now, before
                    )
        except Problem as exc:
            if not args.dry_run:
                await audit_now(
                    db,
                    who,
                    "app.import",
                    at=now,
                    outcome="failed",
                    app=key,
                    detail={"status": exc.status, "reason": exc.detail[:300]},
                )
            print(f"{args.file}: {exc.detail}", file=sys.stderr)
            if "plan" in exc.extra:
                print(render_table(exc.extra["plan"]), file=sys.stderr)
            else:
                print_problems(exc.errors)
            for example in exc.extra.get("examples", []):
                print(f"  example: {json.dumps(example, ensure_ascii=False)}", file=sys.stderr)
            return exit_code(exc)
        plan = result.plan.to_dict() if result.plan else None
        if args.dry_run:
            print(
                json.dumps(plan, indent=2, ensure_ascii=False)
                if args.json
                else render_table(plan or {})
            )
            return 0
        if plan and result.status == "updated" and not args.json:
            print(render_table(plan))
        print(
            f"app '{result.app}' {result.status} (revision {result.version}; "
            f"forms: {', '.join(result.forms)})"
        )
        return 0

    return int(asyncio.run(with_db(work)))


def cmd_app_diff(args: argparse.Namespace) -> int:
    from formloom.engines.apps import DefinitionInvalid
    from formloom.platform.apps.changes import plan_offline
    from formloom.platform.apps.commands import render_table
    from formloom.platform.apps.definition import load

    specs = []
    for path in (args.old, args.new):
        try:
            specs.append(load(_read_json(path)))
        except DefinitionInvalid as exc:
            print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
            print_problems([p.model_dump() for p in exc.problems])
            return 2
    plan = plan_offline(specs[0], specs[1]).to_dict()
    plan.pop("blocked", None)
    plan.pop("can_apply", None)
    plan["revision"] = None
    if args.json:
        print(json.dumps(plan, indent=2, ensure_ascii=False))
    else:
        print(
            render_table(plan)
            if plan["forms"]
            or any(
                plan.get(n)
                for n in ("roles", "rules", "flows", "reports", "dashboards", "permissions")
            )
            else "no changes"
        )
    return 0


def cmd_app_export(args: argparse.Namespace) -> int:
    from formloom.platform.apps import service
    from formloom.platform.errors import Problem

    async def work(db: Any, _catalog: Any) -> str:
        async with db.transaction(write=False) as session:
            return await service.export_app(session, args.app)

    try:
        text = asyncio.run(with_db(work))
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

    apps = asyncio.run(with_db(work))
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

    worker = commands.add_parser(
        "worker", help="fire due timers and deliver messages (rules' background work)"
    )
    worker.add_argument("--once", action="store_true", help="do what is due, then exit")
    worker.add_argument(
        "--now",
        help="with --once: act as of this instant (ISO 8601; without an offset, the "
        "clinic's time zone), to catch up or test",
    )
    worker.set_defaults(run=cmd_worker)

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
    imp.add_argument(
        "--allow-destructive", action="store_true", help="confirm changes that drop data"
    )
    imp.add_argument("--json", action="store_true", help="print the plan as JSON")
    imp.set_defaults(run=cmd_app_import)
    diff = app.add_parser("diff", help="the plan between two definition files (no server)")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.add_argument("--json", action="store_true", help="print the plan as JSON")
    diff.set_defaults(run=cmd_app_diff)
    exp = app.add_parser("export", help="write an app's definition as JSON")
    exp.add_argument("app")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.set_defaults(run=cmd_app_export)
    app.add_parser("list", help="list installed apps").set_defaults(run=cmd_app_list)

    check = commands.add_parser("check", help="validate an app definition file, offline")
    check.add_argument("file", help="app definition (formloom.app/v1); - for standard input")
    check.set_defaults(run=cmd_check)

    schema = commands.add_parser("schema", help="print published JSON Schemas").add_subparsers(
        dest="schema_command", required=True
    )
    schema_app = schema.add_parser(
        "app", help="the JSON Schema of app definitions (formloom.app/v1), for editors"
    )
    schema_app.add_argument("-o", "--output", help="file to write (default: standard output)")
    schema_app.set_defaults(run=cmd_schema_app)

    from formloom.platform.audit.commands import add_commands as add_audit_commands
    from formloom.platform.auth.commands import add_commands as add_user_commands
    from formloom.platform.fhir.commands import add_commands as add_fhir_commands
    from formloom.platform.flows.commands import add_commands as add_flow_commands
    from formloom.platform.records.commands import add_commands as add_record_commands

    add_user_commands(commands)
    add_audit_commands(commands)
    add_flow_commands(commands)
    add_record_commands(commands)
    add_fhir_commands(commands, _read_json)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BadInput as exc:
        print(f"formloom: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
