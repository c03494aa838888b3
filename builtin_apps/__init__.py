"""App definitions bundled with Formloom, one folder each with an ``app.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.parent.name for p in HERE.glob("*/app.json"))


def path(name: str) -> Path:
    return HERE / name / "app.json"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path(name).read_text(encoding="utf-8"))
    return document
