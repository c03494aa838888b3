"""``formloom user ...``: user accounts from the command line (the first admin, scripts).

Changes are audited with the actor ``cli:<operating-system user>``. Passwords are read from
standard input (``--password-stdin``, first line) or typed at a terminal prompt; when
``user create`` gets none, it generates a strong one and prints it once.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from formloom.platform.auth.principal import Principal


def cli_principal() -> Principal:
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers) or no LOGNAME
        name = "unknown"
    return Principal(username=f"cli:{name}"[:150], is_admin=True, via="system")


def _bad_input(message: str) -> Exception:
    from formloom.platform.console import BadInput

    return BadInput(message)


def _attributes(pairs: list[str]) -> dict[str, Any]:
    """``key=text`` (a string) or ``key:=json`` (a number, boolean, list...)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _bad_input(f"--attr {pair!r}: expected key=value or key:=json")
        if key.endswith(":"):
            try:
                out[key[:-1]] = json.loads(value)
            except ValueError:
                raise _bad_input(f"--attr {pair!r}: the value after := is not JSON") from None
        else:
            out[key] = value
    return out


def _read_password(args: argparse.Namespace, *, confirm: bool) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise _bad_input("no password on standard input")
        return password.removesuffix("\r")
    if not confirm:
        return None
    if not sys.stdin.isatty():
        raise _bad_input("give the password with --password-stdin (standard input is no terminal)")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise _bad_input("the passwords differ")
    return first


def _run(work: Any) -> int:
    """Run ``work(session, settings, now, catalog)`` in one unit of work; a refused change
    prints its problems and exits 2 (bad input) or 1 (failed)."""
    import asyncio

    from formloom.platform.clock import SystemClock
    from formloom.platform.console import exit_code, print_problems, with_db
    from formloom.platform.errors import Problem
    from formloom.platform.settings import get_settings

    settings = get_settings()

    async def unit(db: Any, catalog: Any) -> int:
        now = SystemClock(settings.timezone).now()
        try:
            async with db.transaction() as session:
                await work(session, settings, now, catalog)
        except Problem as exc:
            print(f"formloom: {exc.detail}", file=sys.stderr)
            print_problems(exc.errors)
            return exit_code(exc)
        return 0

    return int(asyncio.run(with_db(unit)))


def cmd_user_create(args: argparse.Namespace) -> int:
    from formloom.platform.auth import service

    attributes = _attributes(args.attr or [])
    password = _read_password(args, confirm=False)
    generated: list[str] = []

    async def work(session: Any, settings: Any, now: Any, _catalog: Any) -> None:
        user, made = await service.create_user(
            session,
            settings,
            who=cli_principal(),
            now=now,
            username=args.username,
            display_name=args.display_name,
            password=password,
            is_admin=args.admin,
            attributes=attributes,
        )
        if made is not None:
            generated.append(made)

    code = _run(work)
    if code == 0:
        kind = "admin" if args.admin else "user"
        print(f"{kind} '{args.username.lower()}' created")
        if generated:
            print(f"password (shown once): {generated[0]}")
    return code


def cmd_user_create_service(args: argparse.Namespace) -> int:
    """A service account for an integration, its roles in one app and a token scoped to
    that app (printed once): the integration acts, and is audited, as this account."""
    from datetime import timedelta

    from formloom.platform.audit.log import audit
    from formloom.platform.auth import service

    attributes = _attributes(args.attr or [])
    made: list[str] = []

    async def work(session: Any, settings: Any, now: Any, catalog: Any) -> None:
        who = cli_principal()
        user, _ = await service.create_user(
            session, settings, who=who, now=now, username=args.name,
            display_name=args.display_name, attributes=attributes, is_service=True,
        )  # fmt: skip
        roles = await service.check_roles(session, catalog, {args.app: list(args.role or [])})
        await service.set_roles(session, None, user, roles, who=who, now=now)
        days = args.days if args.days is not None else settings.personal_token_days
        if days < 1 or days > settings.personal_token_max_days:
            raise _bad_input(f"--days: 1 to {settings.personal_token_max_days}")
        issued = await service.issue(
            session, user, "personal", now=now, lifetime=timedelta(days=days),
            name=args.token_name, app_scope=args.app,
        )  # fmt: skip
        audit(
            session, who, "auth.token_created", at=now, app=args.app,
            detail={"token": issued.token.id, "kind": "personal", "name": args.token_name,
                    "days": days, "username": user.username},
        )  # fmt: skip
        made.append(issued.wire)

    code = _run(work)
    if code == 0:
        roles = ", ".join(sorted(set(args.role or []))) or "none"
        print(f"service account '{args.name.lower()}' created; roles in '{args.app}': {roles}")
        print(f"token for app '{args.app}' (shown once): {made[0]}")
    return code


def cmd_user_list(args: argparse.Namespace) -> int:
    from formloom.platform.auth import repository

    rows: list[dict[str, Any]] = []

    async def work(session: Any, _settings: Any, _now: Any, _catalog: Any) -> None:
        users = await repository.users(session)
        roles = await repository.roles_of(session, [u.id for u in users])
        for user in users:
            rows.append(
                {
                    "username": user.username,
                    "admin": "admin" if user.is_admin else "service" if user.is_service else "",
                    "state": "disabled" if user.disabled_at else "active",
                    "roles": "; ".join(
                        f"{app}: {', '.join(names)}" for app, names in roles[user.id].items()
                    ),
                }
            )

    code = _run(work)
    if code == 0:
        if not rows:
            print("no users")
        for row in rows:
            print(f"{row['username']:<32} {row['admin']:<6} {row['state']:<9} {row['roles']}")
    return code


def cmd_user_set_password(args: argparse.Namespace) -> int:
    from formloom.platform.auth import service

    password = _read_password(args, confirm=True)

    async def work(session: Any, settings: Any, now: Any, _catalog: Any) -> None:
        user = await service.get_user(session, args.username)
        await service.set_password(session, settings, user, password, who=cli_principal(), now=now)

    code = _run(work)
    if code == 0:
        print(f"password of '{args.username.lower()}' set")
    return code


def _cmd_user_disabled(args: argparse.Namespace, disabled: bool) -> int:
    from formloom.platform.auth import service

    async def work(session: Any, _settings: Any, now: Any, _catalog: Any) -> None:
        user = await service.get_user(session, args.username)
        await service.update_user(
            session, user, {"disabled": disabled}, who=cli_principal(), now=now
        )

    code = _run(work)
    if code == 0:
        print(f"user '{args.username.lower()}' {'disabled' if disabled else 'enabled'}")
    return code


def cmd_user_disable(args: argparse.Namespace) -> int:
    return _cmd_user_disabled(args, True)


def cmd_user_enable(args: argparse.Namespace) -> int:
    return _cmd_user_disabled(args, False)


def cmd_user_roles(args: argparse.Namespace) -> int:
    """Set the user's roles in one app (the other apps' roles stay)."""
    from formloom.platform.auth import repository, service

    async def work(session: Any, _settings: Any, now: Any, catalog: Any) -> None:
        user = await service.get_user(session, args.username)
        roles: dict[str, list[str]] = (await repository.roles_of(session, [user.id]))[user.id]
        checked = await service.check_roles(session, catalog, {args.app: list(args.roles)})
        roles[args.app] = checked.get(args.app, [])
        # Checked for this app above; the other apps' roles are kept as they are.
        await service.set_roles(session, None, user, roles, who=cli_principal(), now=now)

    code = _run(work)
    if code == 0:
        shown = ", ".join(sorted(set(args.roles))) or "none"
        print(f"roles of '{args.username.lower()}' in '{args.app}': {shown}")
    return code


def add_commands(commands: Any) -> None:
    user = commands.add_parser("user", help="manage user accounts").add_subparsers(
        dest="user_command", required=True
    )
    create = user.add_parser("create", help="add a user (prints a generated password)")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="a platform admin")
    create.add_argument("--display-name")
    create.add_argument(
        "--attr",
        action="append",
        metavar="KEY=VALUE",
        help="a user attribute ($user.KEY in row filters); KEY:=JSON for a non-string; repeatable",
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(run=cmd_user_create)
    robot = user.add_parser(
        "create-service",
        help="add a service account for an integration, with roles in one app and a token "
        "(printed once); it never signs in and is audited as itself",
    )
    robot.add_argument("name")
    robot.add_argument("--app", required=True, help="the app it works in (its token's scope)")
    robot.add_argument("--role", action="append", metavar="ROLE", help="a role; repeatable")
    robot.add_argument("--display-name")
    robot.add_argument("--attr", action="append", metavar="KEY=VALUE", help="as for create")
    robot.add_argument("--token-name", default="integration", help="the token's name")
    robot.add_argument("--days", type=int, help="the token's lifetime in days")
    robot.set_defaults(run=cmd_user_create_service)
    user.add_parser("list", help="list users and their roles").set_defaults(run=cmd_user_list)
    password = user.add_parser("set-password", help="set a user's password")
    password.add_argument("username")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    password.set_defaults(run=cmd_user_set_password)
    disable = user.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(run=cmd_user_disable)
    enable = user.add_parser("enable", help="enable a disabled account again")
    enable.add_argument("username")
    enable.set_defaults(run=cmd_user_enable)
    roles = user.add_parser("roles", help="set a user's roles in one app")
    roles.add_argument("username")
    roles.add_argument("app")
    roles.add_argument("roles", nargs="*", metavar="ROLE", help="none: no roles in the app")
    roles.set_defaults(run=cmd_user_roles)
