"""Every message the pages and scripts show has a zh-CN translation (a missing one would
show in English in the middle of a Chinese page)."""

from __future__ import annotations

import json
import re
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "ui"
# t("message") in templates and scripts; a second string argument is an inline translation
CALL = re.compile(r"""\bt\(\s*(["'])((?:(?!\1)[^\\]|\\.)*)\1\s*(,\s*["'])?""")


def messages() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = [*UI.glob("templates/**/*.html"), *UI.glob("static/*.js")]
    for path in files:
        if path.name == "logic.js":
            continue
        for match in CALL.finditer(path.read_text(encoding="utf-8")):
            if match.group(3):  # t("From", "从"): translated where it is written
                continue
            found.setdefault(match.group(2), set()).add(path.name)
    return found


def test_every_message_has_a_chinese_translation() -> None:
    catalog: dict[str, str] = {}
    for path in sorted((UI / "i18n" / "zh-CN").glob("*.json")):
        catalog.update(json.loads(path.read_text(encoding="utf-8")))
    found = messages()
    assert len(found) > 200  # the scan finds the pages' messages at all
    missing = {message: sorted(files) for message, files in found.items() if message not in catalog}
    assert missing == {}
    assert all(text.strip() for text in catalog.values())
