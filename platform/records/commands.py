"""``formloom records import APP FORM FILE``: a spreadsheet into a form from the command line
(platform/records/importing.py), acting as the platform itself (actor ``cli``).

Prints the mapping, each bad row with its reasons and the counts; ``--dry-run`` writes
nothing. Exit codes: 0 done (or a dry run, whatever it found); 1 rows are not valid and
nothing was imported (all or nothing, the default; ``--skip-bad-rows`` imports the others)
or the app or form does not exist; 2 the file or the arguments cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from formloom.platform.console import EXIT_FAILED, EXIT_OK, BadInput, print_problems, with_db
from formloom.platform.settings import get_settings

#: Largest spreadsheet the command reads.
MAX_FILE_BYTES = 32 * 1024 * 1024


def _read(path: str) -> bytes:
    try:
        file = Path(path)
        if file.stat().st_size > MAX_FILE_BYTES:
            raise BadInput(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB")
        return file.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


def cmd_records_import(args: argparse.Namespace) -> int:
    from formloom.engines.forms.localtime import zone_of
    from formloom.platform.errors import Problem
    from formloom.platform.records import importing
    from formloom.platform.records.service import RecordService

    settings = get_settings()
    content = _read(args.file)
    mapping = None
    if args.mapping:
        try:
            mapping = json.loads(_read(args.mapping))
        except ValueError:
            raise BadInput(f"{args.mapping} is not JSON") from None
    name = Path(args.file).name

    async def work(db: Any, catalog: Any) -> int:
        from formloom.platform.clock import SystemClock

        now = SystemClock(settings.timezone).now()
        try:
            table = importing.read_table(name, content)
            outcome = await importing.import_rows(
                db,
                lambda session: RecordService(session, catalog, now=now, actor="cli"),
                args.app,
                args.form,
                table,
                filename=name,
                mapping=mapping,
                upsert=args.upsert,
                dry_run=args.dry_run,
                skip_bad_rows=args.skip_bad_rows,
                zone=zone_of(settings.timezone),
            )
        except Problem as problem:
            report = problem.extra.get("report")
            if report is not None:
                _print(report)
            print(f"formloom: {problem.detail}", file=sys.stderr)
            if problem.errors and report is None:
                print_problems(problem.errors)
            if problem.status in (400, 413) or report is None and problem.status == 422:
                raise BadInput(problem.detail) from None
            return EXIT_FAILED
        if args.json:
            print(json.dumps(outcome.report, ensure_ascii=False, indent=2))
        else:
            _print(outcome.report)
        return EXIT_OK

    return int(asyncio.run(with_db(work)))


def _print(report: dict[str, Any]) -> None:
    mapped = [f"{c['name']} -> {c['field']}" for c in report["columns"] if c["field"]]
    ignored = [c["name"] for c in report["columns"] if not c["field"]]
    print(f"{report['file']}: {report['rows']} rows; columns: {', '.join(mapped)}")
    if ignored:
        print(f"not imported: {', '.join(ignored)}")
    for error in report["errors"]:
        where = f"{error['column']} ({error['field']})" if error.get("column") else "the row"
        print(f"row {error['row']}: {where}: {error['message']}")
    if report["errors_truncated"]:
        print("(more errors not listed)")
    counts = (
        f"{report['to_create']} to create, {report['to_update']} to update, "
        f"{report['bad_rows']} bad rows"
    )
    if report["dry_run"]:
        print(f"{counts} (dry run: nothing written)")
    else:
        skipped = f"; {report['bad_rows']} bad rows skipped" if report["bad_rows"] else ""
        print(f"{report['created']} created, {report['updated']} updated{skipped}")


def add_commands(commands: Any) -> None:
    records = commands.add_parser("records", help="records of a form").add_subparsers(
        dest="records_command", required=True
    )
    imp = records.add_parser("import", help="import a CSV or XLSX file into a form")
    imp.add_argument("app")
    imp.add_argument("form")
    imp.add_argument("file", help="CSV or XLSX; its first row names the columns")
    imp.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    imp.add_argument("--upsert", metavar="FIELD", help="a unique field: update matching records")
    imp.add_argument(
        "--skip-bad-rows", action="store_true", help="import the good rows (default: all or none)"
    )
    imp.add_argument("--mapping", help="a JSON file: column name -> field key or null")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(run=cmd_records_import)
