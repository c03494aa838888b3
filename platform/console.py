"""What every command of the ``formloom`` CLI shares (``cli``, ``auth.commands``,
``audit.commands``): the exit codes, bad input, problems printed to standard error, and
running a command's work on the database brought to the newest revision first.

Exit codes, for scripts: 0 success; 1 the command failed (e.g. no such app); 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from formloom.platform.settings import get_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """The input cannot be used; the message says why. ``main`` exits with code 2."""


def print_problems(errors: Sequence[dict[str, Any]]) -> None:
    width = max((len(e.get("path") or "/") for e in errors), default=1)
    for error in errors:
        print(f"  {(error.get('path') or '/').ljust(width)}  {error['message']}", file=sys.stderr)


def exit_code(problem: Any) -> int:
    """2 for a problem with what was given (a 4xx that is the input's fault), else 1."""
    return EXIT_BAD_INPUT if problem.status in (400, 413, 422) else EXIT_FAILED


async def with_db(work: Any) -> Any:
    """``await work(db, catalog)`` on the configured database, upgraded first."""
    # imported here: `formloom --help` should not load SQLAlchemy and the app catalog
    from formloom.platform.apps.service import AppCatalog
    from formloom.platform.db import Database
    from formloom.platform.migrate import upgrade

    db = Database(get_settings().database_url)
    try:
        await upgrade(db)
        return await work(db, AppCatalog())
    finally:
        await db.dispose()
