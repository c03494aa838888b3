"""``formloom flow simulate`` and ``formloom flow bpmn`` on an app file, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from formloom.platform.cli import main
from tests.platform.flows.test_flows_api import care_app


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "care.json"
    path.write_text(json.dumps(care_app()), encoding="utf-8")
    return path


def test_simulate_prints_the_timeline_in_the_clinic_zone(
    app_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    choices = {"classify": ["done"], "handle": [{"outcome": "resolved", "after": "P1D"}],
               "review": ["approve"]}  # fmt: skip
    code = main([
        "flow", "simulate", str(app_file), "complaint", "--record", '{"summary": "x"}',
        "--choices", json.dumps(choices), "--now", "2026-12-04T09:00", "--zone", "Asia/Shanghai",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Complaint — completed (ended)"
    assert "2026-12-04 09:00  task classify for role manager" in lines
    # 4 working hours from 09:00 on a 09:00-12:00, 13:00-18:00 day: 14:00, local time
    assert "2026-12-04 09:00  task handle for the staff in handler, due 2026-12-04 14:00" in lines
    assert "2026-12-05 09:00  handle: resolved by (unassigned)" in lines
    assert lines[-1] == "2026-12-05 09:00  completed"


def test_simulate_as_json_and_its_refusals(
    app_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["flow", "simulate", str(app_file), "complaint", "--default-outcome", "--json",
                 "--now", "2026-12-04T09:00:00+08:00"])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["status"] == "completed"
    assert [e["node"] for e in result["timeline"] if e["kind"] == "task_opened"] == [
        "classify", "handle", "review"
    ]  # fmt: skip
    assert main(["flow", "simulate", str(app_file), "nope"]) == 2
    assert "its flows: complaint" in capsys.readouterr().err
    assert main(["flow", "simulate", str(app_file), "complaint", "--record", "{"]) == 2
    bad = json.loads(app_file.read_text())
    bad["flows"][0]["edges"].pop()
    app_file.write_text(json.dumps(bad))
    assert main(["flow", "simulate", str(app_file), "complaint"]) == 2
    assert "/flows/0/nodes/4" in capsys.readouterr().err


def test_bpmn_writes_the_flow(app_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "complaint.bpmn"
    assert main(["flow", "bpmn", str(app_file), "complaint", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert text.count("<bpmn:userTask") == 3
