"""``formloom flow simulate`` and ``formloom flow bpmn``: flows from an app file, offline.

``simulate`` runs a flow of an app definition file on a sample record with the given
choices and prints the timeline — times in the clinic's zone, tasks with who they are for
and when they are due — or, with ``--json``, what ``POST /api/flows/{app}/{flow}/simulate``
returns. Nothing is read from or written to a database; assignees by role are shown as the
role (there are no users offline). ``bpmn`` writes the flow as BPMN 2.0 XML.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from formloom.platform.console import EXIT_OK, BadInput, print_problems


def _document(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise BadInput(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None


def _json_option(text: str | None, name: str) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        return _document(text[1:])
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"--{name} is not JSON: {error.msg}") from None


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from formloom.engines.apps import DefinitionInvalid
    from formloom.platform.apps.definition import load

    try:
        spec = load(_document(args.file))
    except DefinitionInvalid as exc:
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        print_problems([p.model_dump() for p in exc.problems])
        raise BadInput(f"{args.file} is not a valid app definition") from None
    flow = next((f for f in spec.flows if f.key == args.flow), None)
    if flow is None:
        known = ", ".join(f.key for f in spec.flows) or "none"
        raise BadInput(f"the app has no flow {args.flow!r} (its flows: {known})")
    return spec, flow


def cmd_flow_simulate(args: argparse.Namespace) -> int:
    from formloom.engines.flows import BusinessCalendar, Script, simulate
    from formloom.engines.forms import label_text
    from formloom.platform.settings import get_settings

    spec, flow = _load(args)
    zone_name = args.zone or get_settings().timezone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"--zone {zone_name!r} is not a time zone") from None
    now = datetime.now(zone)
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise BadInput(f"--now {args.now!r} is not an ISO 8601 date-time") from None
        now = now.replace(tzinfo=zone) if now.tzinfo is None else now
    record = _json_option(args.record, "record") or {}
    choices = _json_option(args.choices, "choices") or {}
    if not isinstance(record, dict) or not isinstance(choices, dict):
        raise BadInput("--record and --choices are JSON objects")
    calendar = BusinessCalendar(spec.calendar, zone) if spec.calendar is not None else None
    try:
        result = simulate(
            spec.key, flow, record,
            Script(choices=choices, default_outcome=args.default_outcome, starter=args.starter),
            now=now, zone=zone_name, flows={f.key: f for f in spec.flows}, calendar=calendar,
            horizon=timedelta(days=args.days),
        )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - the flow's own failure, shown to its author
        raise BadInput(f"the flow cannot run on this record: {error}") from None
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    locale = spec.locales[0] if spec.locales else "en"
    print(f"{label_text(flow.label, locale) or flow.key} — {result.status} ({result.stopped})")
    assignees = _assignees(flow)
    for entry in result.timeline:
        if entry["kind"] == "task_opened" and not entry.get("assignee"):
            people = entry["candidates"]
            if not people.get("roles") and not people.get("users"):
                entry = {**entry, "assignee": assignees.get(entry["node"], "nobody")}
        line = _line(entry, zone)
        if line:
            print(line)
    for task in result.open_tasks:
        print(f"  still open: {task['node']} ({_who(task['candidates'], task.get('assignee'))})")
    return EXIT_OK


def _assignees(flow: Any) -> dict[str, str]:
    """How each user task's people are chosen, for tasks offline cannot resolve (there are
    no users and no staff records): "role nurse (narrowed)", "the staff in doctor"."""
    from formloom.engines.flows.spec import UserTaskNode

    found: dict[str, str] = {}
    for node in flow.nodes:
        if not isinstance(node, UserTaskNode):
            continue
        assignee = node.assignee
        if assignee.role is not None:
            found[node.key] = f"role {assignee.role}" + (" (narrowed)" if assignee.where else "")
        elif assignee.field is not None:
            found[node.key] = f"the staff in {assignee.field}"
        elif assignee.starter:
            found[node.key] = "the starter"
        elif assignee.previous:
            found[node.key] = "the previous step's person"
    return found


def _local(text: str | None, zone: ZoneInfo) -> str:
    if not text:
        return "-"
    return (
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        .astimezone(zone)
        .strftime("%Y-%m-%d %H:%M")
    )


def _who(candidates: dict[str, list[str]], assignee: str | None) -> str:
    if assignee:
        return assignee
    names = [f"role {r}" for r in candidates.get("roles", [])] + candidates.get("users", [])
    return ", ".join(names) or "nobody"


def _line(entry: dict[str, Any], zone: ZoneInfo) -> str | None:
    at = _local(entry["at"], zone)
    kind = entry["kind"]
    if kind == "task_opened":
        due = f", due {_local(entry['due'], zone)}" if entry.get("due") else ""
        return f"{at}  task {entry['node']} for {_who(entry['candidates'], entry['assignee'])}{due}"
    if kind == "task_completed":
        by = entry.get("actor") or "escalation"
        return f"{at}  {entry['node']}: {entry['outcome']} by {by}"
    if kind in ("task_reminded", "task_reassigned"):
        return f"{at}  {entry['node']}: {kind.removeprefix('task_')}"
    if kind == "timer_armed" and entry.get("purpose") == "timer":
        return f"{at}  wait at {entry['node']} until {_local(entry['due'], zone)}"
    if kind == "actions_planned":
        return f"{at}  {entry['node']}: " + ", ".join(a["type"] for a in entry["actions"])
    if kind == "instance_ended":
        return f"{at}  {entry['status']}" + (f" ({entry['reason']})" if entry.get("reason") else "")
    return None


def cmd_flow_bpmn(args: argparse.Namespace) -> int:
    from formloom.engines.flows.bpmn import to_bpmn

    spec, flow = _load(args)
    text = to_bpmn(flow, app=spec.key, locale=args.locale)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def add_commands(commands: Any) -> None:
    flow = commands.add_parser(
        "flow", help="simulate or export a flow of an app file"
    ).add_subparsers(dest="flow_command", required=True)
    sim = flow.add_parser("simulate", help="the timeline a flow would produce, nothing written")
    sim.add_argument("file", help="app definition (formloom.app/v1); - for standard input")
    sim.add_argument("flow", help="the flow's key")
    sim.add_argument("--record", help="the sample record's data as JSON (or @file)")
    sim.add_argument(
        "--choices", help='node -> choices as JSON, e.g. {"review": ["approve"]} (or @file)'
    )
    sim.add_argument(
        "--default-outcome", action="store_true", help="tasks without a choice take the first"
    )
    sim.add_argument("--starter", help="who starts it (a user name)")
    sim.add_argument("--now", help="start time, ISO 8601 (default: now)")
    sim.add_argument("--zone", help="the clinic's time zone (default: FORMLOOM_TIMEZONE)")
    sim.add_argument("--days", type=int, default=366, help="how far to look ahead (days)")
    sim.add_argument("--json", action="store_true", help="print the result as JSON")
    sim.set_defaults(run=cmd_flow_simulate)
    bpmn = flow.add_parser("bpmn", help="write the flow as BPMN 2.0 XML")
    bpmn.add_argument("file", help="app definition (formloom.app/v1); - for standard input")
    bpmn.add_argument("flow", help="the flow's key")
    bpmn.add_argument("--locale", default="en", help="language of the names")
    bpmn.add_argument("-o", "--output", help="file to write (default: standard output)")
    bpmn.set_defaults(run=cmd_flow_bpmn)
