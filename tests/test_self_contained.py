"""The repository reads no data from outside itself.

The conformance data once lived in a sibling folder (``<repo>/../shared/conformance``); a
plain clone, as CI makes, has no such folder, and a suite reading it there failed (or
worse, shrank). The data is kept in ``tests/conformance/`` now. This test reads every
tracked text file of the code, tests, apps, migrations, UI and build (``git ls-files``)
and fails on a reference to a sibling ``../shared`` folder or a ``shared/conformance``
path, however it is spelt: ``../shared``, ``..\\shared``, ``join(REPO, "..", "shared")``,
``root / "shared" / "conformance"``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("platform", "engines", "tests", "builtin_apps", "migrations", "ui", "Makefile", ".ci")
#: Files allowed to name the old place: the conformance data's README (where it came
#: from) and this test.
EXEMPT = {"tests/conformance/README.md", "tests/test_self_contained.py"}

# Between two path segments: a slash or backslash, or the end of one string literal and
# the start of the next as a path is joined (`"..", "shared"`, `Path("..") / "shared"`).
_SEP = r"""(?:[/\\]|['"]\)?\s*[,/]\s*['"])"""
OUTSIDE = re.compile(rf"\.\.{_SEP}shared\b|\bshared{_SEP}conformance\b")


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", *SCANNED],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout ({error})")
    return sorted(name for name in listed.decode().split("\0") if name)


def _text(path: Path) -> str | None:
    """The file's text, or None for a binary file (or one removed but not yet staged)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@pytest.mark.parametrize(
    "line",
    [
        "DIR = ../shared/conformance",
        r"..\shared\conformance",
        'join(REPO, "..", "shared", "conformance")',
        "Path('..') / 'shared'",
        'ROOT.parent / "shared" / "conformance"',
    ],
)
def test_the_pattern_finds_each_spelling(line: str) -> None:
    assert OUTSIDE.search(line)


@pytest.mark.parametrize(
    "line",
    ["tests/conformance/jsonlogic", "shared filters", "../shared_cache", "a shared, conformant"],
)
def test_the_pattern_leaves_other_text_alone(line: str) -> None:
    assert not OUTSIDE.search(line)


def test_nothing_reads_data_from_outside_the_repository() -> None:
    files = _tracked_files()
    # the scan does see the files a reference was once found in
    assert "tests/ui/logic.test.mjs" in files
    assert "tests/engines/logic/test_conformance.py" in files
    offenders = []
    for name in files:
        if name in EXEMPT:
            continue
        text = _text(ROOT / name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
