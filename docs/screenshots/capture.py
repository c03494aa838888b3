"""Take the README's screenshots: ``.venv/bin/python docs/screenshots/capture.py``.

Starts ``formloom serve --demo`` on a throw-away SQLite file (as the browser tests do), signs
in as a platform admin in headless Chromium and saves

* ``designer.png`` — the form designer with a new form being built (nothing is saved);
* ``form.png`` — a generated form: the clinic CRM's "new patient" page;
* ``dashboard.png`` — the clinic manager's dashboard over the demo data.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.ui.conftest import (  # noqa: E402
    ADMIN,
    ADMIN_PASSWORD,
    CHROMIUM,
    LiveServer,
    serving,
    sign_in,
)


@contextmanager
def demo_server() -> Iterator[LiveServer]:
    with serving(Path(tempfile.mkdtemp(prefix="formloom-screenshots-"))) as server:
        yield server


def main() -> None:
    from playwright.sync_api import sync_playwright

    with demo_server() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="en-US")
        sign_in(page, server, ADMIN, ADMIN_PASSWORD)

        page.goto(f"{server.url}/designer/clinic_crm/new")
        page.wait_for_selector("[data-testid=designer][data-ready=true]")
        page.get_by_test_id("prop-form-label").fill("Post-visit call")
        # (English only: the machine the screenshots are taken on may lack CJK fonts)
        page.get_by_test_id("palette-section").drag_to(page.get_by_test_id("canvas"))
        page.get_by_test_id("prop-label").fill("Call")
        for kind, text in [
            ("relation", "Patient"),
            ("datetime", "Called at"),
            ("boolean", "Reached"),
            ("select", "Satisfaction"),
            ("textarea", "Comments"),
        ]:
            page.get_by_test_id(f"palette-{kind}").click()  # added after the selected field
            page.get_by_test_id("prop-label").fill(text)
        page.get_by_test_id("field-reached").click()
        page.get_by_test_id("prop-required").check()
        page.get_by_test_id("field-comments").click()
        page.get_by_test_id("cond-add").click()
        page.get_by_test_id("cond-0-field").select_option("reached")
        page.get_by_test_id("field-satisfaction").click()
        for n, text in enumerate(["Happy", "Neutral"]):
            page.get_by_test_id(f"option-{n}-label").fill(text)
        page.get_by_test_id("option-add").click()
        page.get_by_test_id("option-2-label").fill("Unhappy")
        page.get_by_test_id("field-satisfaction").click()
        page.evaluate("document.querySelector('.palette-pane').scrollTop = 0")
        page.mouse.move(0, 0)
        page.screenshot(path=str(HERE / "designer.png"))

        page.goto(f"{server.url}/apps/clinic_crm/forms/patient/new")
        page.wait_for_selector("[data-field=name]")
        page.screenshot(path=str(HERE / "form.png"), full_page=False)

        page.goto(f"{server.url}/apps/clinic_crm/dashboards/manager")
        page.wait_for_selector("svg")
        page.screenshot(path=str(HERE / "dashboard.png"), full_page=True)
        browser.close()
        print(f"saved designer.png, form.png and dashboard.png in {HERE}")


if __name__ == "__main__":
    main()
