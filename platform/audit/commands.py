"""``formloom audit export``: the audit log as JSON lines or CSV, oldest first."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any

COLUMNS = (
    "id",
    "at",
    "actor",
    "user_id",
    "via",
    "address",
    "action",
    "outcome",
    "app",
    "form",
    "record_id",
    "version",
    "detail",
)


def _instant(text: str) -> datetime:
    from formloom.platform.console import BadInput

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{text!r} is not an ISO 8601 date or date-time") from None
    if moment.tzinfo is None:
        raise BadInput(f"{text!r} has no time zone (add Z or +08:00)")
    return moment


def cmd_audit_export(args: argparse.Namespace) -> int:
    import asyncio

    from formloom.platform.audit.repository import AuditFilter, entry_out, scan
    from formloom.platform.console import with_db

    where = AuditFilter(
        action=args.action,
        app=args.app,
        since=_instant(args.since) if args.since else None,
        until=_instant(args.until) if args.until else None,
    )

    def write(out: IO[str]) -> int:
        async def work(db: Any, _catalog: Any) -> int:
            count = 0
            writer = csv.writer(out) if args.format == "csv" else None
            if writer is not None:
                writer.writerow(COLUMNS)
            async with db.transaction(write=False) as session:
                async for row in scan(session, where):
                    item = entry_out(row)
                    if writer is not None:
                        item["detail"] = (
                            json.dumps(item["detail"], ensure_ascii=False)
                            if item["detail"] is not None
                            else ""
                        )
                        writer.writerow(["" if item[c] is None else item[c] for c in COLUMNS])
                    else:
                        out.write(json.dumps(item, ensure_ascii=False) + "\n")
                    count += 1
            return count

        return int(asyncio.run(with_db(work)))

    if args.output:
        with Path(args.output).open("w", encoding="utf-8", newline="") as handle:
            count = write(handle)
        print(f"{count} audit entries written to {args.output}", file=sys.stderr)
    else:
        write(sys.stdout)
    return 0


def add_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    export = audit.add_parser("export", help="write audit entries, oldest first")
    export.add_argument("--since", help="from this instant (ISO 8601 with zone)")
    export.add_argument("--until", help="before this instant (ISO 8601 with zone)")
    export.add_argument("--action", help="an action, or a prefix ending in '.' (record.)")
    export.add_argument("--app", help="entries about this app")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.set_defaults(run=cmd_audit_export)
