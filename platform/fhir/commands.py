"""``formloom fhir import-questionnaire FILE [--app APP] [--form KEY] [--dry-run]`` and
``formloom fhir export-questionnaire APP FORM``.

Without ``--app`` the command works offline: it prints the form definition made from the
questionnaire (app format, ready to paste into an app) and lists what was not mapped. With
``--app`` it adds the form to the installed app through the same plan as the API (the
designer's save, audited as ``app.form_saved``); ``--dry-run`` prints the plan only.
The unmapped list goes to standard error, one ``linkId: reason`` a line.

``export-questionnaire`` prints an installed form as a Questionnaire and lists on standard
error what of the form it could not represent, one ``path (linkId): reason`` a line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from formloom.platform.console import exit_code, print_problems, with_db
from formloom.platform.settings import get_settings


def _print_unmapped(unmapped: list[Any]) -> None:
    for entry in unmapped:
        print(f"not mapped: {entry.link_id or '(questionnaire)'}: {entry.reason}", file=sys.stderr)


def cmd_import_questionnaire(args: argparse.Namespace) -> int:
    from formloom.platform.apps.commands import render_table
    from formloom.platform.clock import SystemClock
    from formloom.platform.errors import Problem
    from formloom.platform.fhir import service

    questionnaire = args.read_json(args.file)
    if args.app is None:
        try:
            definition, unmapped = service.form_from_questionnaire(questionnaire, args.form)
        except Problem as exc:
            print(f"{args.file}: {exc.detail}", file=sys.stderr)
            return exit_code(exc)
        print(json.dumps(definition, indent=2, ensure_ascii=False))
        _print_unmapped(unmapped)
        return 0

    async def work(db: Any, catalog: Any) -> int:
        from formloom.platform.apps import auditing
        from formloom.platform.auth.commands import cli_principal

        now = SystemClock(get_settings().timezone).now()
        who = cli_principal()
        try:
            async with db.transaction(write=not args.dry_run) as session:
                before = await auditing.grants_before(session, catalog, args.app)
                done = await service.import_into_app(
                    session,
                    catalog,
                    args.app,
                    questionnaire,
                    form=args.form,
                    actor=who.username,
                    now=now,
                    allow_destructive=args.allow_destructive,
                    dry_run=args.dry_run,
                )
                if not args.dry_run and done.result.status != "unchanged":
                    await auditing.audit_change(
                        session, catalog, who, "app.form_saved", done.result, now, before
                    )
        except Problem as exc:
            print(f"{args.file}: {exc.detail}", file=sys.stderr)
            if "plan" in exc.extra:
                print(render_table(exc.extra["plan"]), file=sys.stderr)
            else:
                print_problems(exc.errors)
            return exit_code(exc)
        result = done.result
        _print_unmapped(done.unmapped)
        if args.dry_run:
            print(render_table(result.plan.to_dict() if result.plan else {}))
            return 0
        print(
            f"form '{done.definition['key']}' of app '{result.app}': {result.status} "
            f"(revision {result.version}; {len(done.unmapped)} item part(s) not mapped)"
        )
        return 0

    return int(asyncio.run(with_db(work)))


def cmd_export_questionnaire(args: argparse.Namespace) -> int:
    from formloom.platform.errors import Problem
    from formloom.platform.fhir import service

    async def work(db: Any, catalog: Any) -> int:
        try:
            async with db.transaction(write=False) as session:
                installed = await catalog.get(session, args.app)
            definition = service.visible_definition(installed, args.form, ())
        except Problem as exc:
            print(exc.detail, file=sys.stderr)
            return exit_code(exc)
        base = get_settings().public_base_url or "http://localhost"
        questionnaire, unmapped = service.questionnaire_of(definition, base, args.app)
        print(json.dumps(questionnaire, indent=2, ensure_ascii=False))
        for entry in unmapped:
            print(f"not exported: {entry.path} ({entry.link_id}): {entry.reason}", file=sys.stderr)
        return 0

    return int(asyncio.run(with_db(work)))


def add_commands(commands: Any, read_json: Callable[[str], Any]) -> None:
    """Register ``formloom fhir ...`` on the CLI's sub-command parser; ``read_json`` reads
    a file as the CLI reads every input (size limit, UTF-8, strict JSON)."""
    fhir = commands.add_parser("fhir", help="HL7 FHIR: questionnaires in and out").add_subparsers(
        dest="fhir_command", required=True
    )
    imp = fhir.add_parser(
        "import-questionnaire",
        help="a FHIR R4 Questionnaire (JSON) as a form: printed, or added to --app",
    )
    imp.add_argument("file", help="the Questionnaire JSON file")
    imp.add_argument("--app", help="add the form to this installed app")
    imp.add_argument("--form", help="key of the form (default: from the questionnaire)")
    imp.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    imp.add_argument(
        "--allow-destructive", action="store_true", help="confirm a replacement that drops data"
    )
    imp.set_defaults(run=cmd_import_questionnaire, read_json=read_json)
    out = fhir.add_parser(
        "export-questionnaire",
        help="an installed form as a FHIR R4 Questionnaire, and what it could not represent",
    )
    out.add_argument("app", help="the installed app")
    out.add_argument("form", help="the form's key")
    out.set_defaults(run=cmd_export_questionnaire)
