"""How fast do the rule editor's pages open for an app with 1,000 rules? Run:
``python -m tests.bench.bench_rule_list``.

A ``formloom serve`` process on a fresh SQLite file gets an app with 1,000 rules (record,
schedule and date triggers, each with a condition and a notify action) and, as the baseline,
an app with 10 such rules; 2,000 rule-log events are written for the big app so the list's
figures are counted over a full window. Headless Chromium (``/usr/bin/chromium`` or
``FORMLOOM_CHROMIUM``), signed in, opens the rule list (until its last row is drawn) and the
editor of one rule (until its action card is drawn). Medians of several rounds, alternating.
The server's own worker is off (it would fire the rules' timers on the same event loop).

Target (issue 15): the list of 1,000 rules under 1 s. Not a pytest test.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, CHROMIUM, serving, sign_in


def rule(n: int) -> dict[str, Any]:
    kind = n % 3
    if kind == 0:
        on: dict[str, Any] = {"form": "visit", "event": "created", "fields": ["pain"]}
    elif kind == 1:
        on = {"form": "visit", "at": "09:00", "filter": {">=": [{"var": "pain"}, n % 10]}}
    else:
        on = {"form": "visit", "field": "visit_date", "offset": f"P{n % 30}D", "at": "09:00"}
    return {
        "key": f"rule_{n:04d}",
        "label": {"en": f"Rule {n}", "zh-CN": f"规则 {n}"},
        "on": on,
        "if": {">=": [{"var": "record.pain"}, n % 10]},
        "then": [
            {
                "type": "notify",
                "channel": "in_app",
                "recipients": [{"role": "doctor"}],
                "template": {"en": "Pain {{ record.pain }}", "zh-CN": "疼痛 {{ record.pain }}"},
            }
        ],
    }


def app(key: str, rules: int) -> dict[str, Any]:
    return {
        "format": "formloom.app/v1",
        "key": key,
        "version": "1.0.0",
        "label": key,
        "locales": ["en", "zh-CN"],
        "roles": [{"key": "doctor"}],
        "forms": [
            {
                "key": "visit",
                "label": "Visit",
                "fields": [
                    {"key": "pain", "type": "integer", "label": "Pain"},
                    {"key": "visit_date", "type": "date", "label": "Visit date"},
                ],
            }
        ],
        "rules": [rule(n) for n in range(rules)],
    }


def _open(page: Any, url: str, ready: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(ready)
    return time.perf_counter() - started


def main(rounds: int = 7) -> None:
    from playwright.sync_api import sync_playwright

    # the pages are measured, not the worker: firing the 1,000 rules' timers and delivering
    # their messages on the server's own loop would stall requests at random
    os.environ["FORMLOOM_WORKER_IN_SERVE"] = "false"

    with tempfile.TemporaryDirectory() as folder, serving(Path(folder), demo=False) as server:
        with server.api() as api:
            for key, size in (("rules_big", 1000), ("rules_small", 10)):
                answer = api.post("/api/apps/import", json=app(key, size), timeout=300)
                assert answer.status_code == 201, answer.text
            # writes that run the record rules, so the log has events to count
            for n in range(200):
                made = api.post(
                    "/api/records/rules_big/visit",
                    json={"data": {"pain": n % 10, "visit_date": "2026-12-01"}},
                )
                assert made.status_code == 201, made.text
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page()
            sign_in(page, server, ADMIN, ADMIN_PASSWORD)
            base = server.url
            pages = {
                "list of 1,000": (f"{base}/designer/rules_big/rules", "tr[data-rule=rule_0999]"),
                "list of 10": (f"{base}/designer/rules_small/rules", "tr[data-rule=rule_0009]"),
                "editor (app of 1,000)": (
                    f"{base}/designer/rules_big/rules/rule_0500",
                    "[data-testid=action-0]",
                ),
                "editor (app of 10)": (
                    f"{base}/designer/rules_small/rules/rule_0005",
                    "[data-testid=action-0]",
                ),
            }
            timings: dict[str, list[float]] = {name: [] for name in pages}
            for url, ready in pages.values():  # warm up
                _open(page, url, ready)
            for _ in range(rounds):
                for name, (url, ready) in pages.items():
                    timings[name].append(_open(page, url, ready))
            browser.close()
    for name, values in timings.items():
        print(f"{name:>24}: median {statistics.median(values) * 1000:7.1f} ms")
    ratio = statistics.median(timings["list of 1,000"]) / statistics.median(timings["list of 10"])
    print(f"{'1,000 vs 10 rules':>24}: {ratio:.2f}x (target: the list of 1,000 under 1 s)")


if __name__ == "__main__":
    main(3 if "--quick" in sys.argv else 7)
