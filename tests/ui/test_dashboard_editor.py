"""The dashboard editor in Chromium (issue 15's proof for dashboards): the clinic's shipped
``manager`` dashboard rebuilt from an empty start by the head office (a designer, not a
platform admin) — with the mouse in English (tiles dragged into order and resized by their
handle, filters wired with the dropdowns) and with the keyboard alone in Chinese (arrows
move a tile, Shift+arrows resize it) — saves the very JSON the clinic ships under a new
key; a KPI tile's period, the server's refusals shown at their element, a stale save, the
unsaved-changes guard and deleting; a branch manager (no design) sees no Edit button on the
dashboard and gets 403 from the page and the save API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ui.conftest import ROOT, LiveServer, sign_in

APP = "clinic_crm"
PASSWORD = "dashboard-editor-tests-pw"
HEAD_OFFICE, MANAGER = "demo_head_office", "demo_manager"
SHIPPED = json.loads((ROOT / "builtin_apps" / APP / "app.json").read_text(encoding="utf-8"))
BOARD = next(board for board in SHIPPED["dashboards"] if board["key"] == "manager")
REPORTS = {report["key"]: report for report in SHIPPED["reports"]}
READY = "[data-testid=dashboard-editor][data-ready]"  # the editor's script has started
MADE = ("manager_by_mouse", "manager_by_keys", "board_checks", "board_kpi")


def normalised(board: dict[str, Any]) -> str:
    """The dashboard without its key, with every object's keys sorted: two dashboards are
    the same when these are equal (lists keep their order: tiles and filters are ordered)."""
    return json.dumps({k: v for k, v in board.items() if k != "key"}, sort_keys=True)


@pytest.fixture(scope="module")
def people(live_server: LiveServer) -> Iterator[None]:
    """The head office and a branch manager with a known password; the dashboards the tests
    make are removed afterwards (other browser tests share the server)."""
    for name in (HEAD_OFFICE, MANAGER):
        done = live_server.cli("user", "set-password", name, "--password-stdin", stdin=PASSWORD)
        assert done.returncode == 0, done.stderr
    yield
    with live_server.api() as api:
        for key in MADE:
            api.delete(f"/api/apps/{APP}/dashboards/{key}")


@pytest.fixture
def tab_as(browser: Any, live_server: LiveServer, people: None) -> Iterator[Any]:
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(username: str, locale: str = "en-US") -> Any:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(45_000)  # a save re-plans the whole clinic app
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, username, PASSWORD)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not errors, errors


def saved_board(server: LiveServer, key: str) -> dict[str, Any]:
    with server.api() as api:
        answer = api.get(f"/api/apps/{APP}/dashboards/{key}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["dashboard"])


def wait_saved(tab: Any) -> None:
    tab.wait_for_function(
        "document.querySelector('[data-testid=board-status]').dataset.kind === 'ok'"
    )
    assert tab.get_by_test_id("board-dirty").is_hidden()


def order_on_screen(tab: Any) -> list[tuple[str, int]]:
    tiles = tab.locator("[data-testid=board-grid] > .tile")
    return [
        (str(tiles.nth(i).get_attribute("data-report")),
         int(tiles.nth(i).get_by_test_id(f"tile-{i}-width").inner_text().split("/")[0]))
        for i in range(tiles.count())
    ]  # fmt: skip


# -- by mouse -----------------------------------------------------------------------------------


def drag(tab: Any, start: dict[str, float], x: float, y: float) -> None:
    tab.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    tab.mouse.down()
    tab.mouse.move(x, y, steps=8)
    tab.mouse.up()


def drag_tile(tab: Any, index: int, onto: int, after: bool) -> None:
    """Drag tile ``index`` by its grip and drop it on the left or right half of ``onto``."""
    tab.get_by_test_id(f"tile-{index}-move").scroll_into_view_if_needed()
    grip = tab.get_by_test_id(f"tile-{index}-move").bounding_box()
    target = tab.get_by_test_id(f"tile-{onto}").bounding_box()
    x = target["x"] + target["width"] * (0.8 if after else 0.2)
    drag(tab, grip, x, grip["y"] + grip["height"] / 2)


def resize_tile(tab: Any, index: int, width: int) -> None:
    """Drag tile ``index``'s right edge to where ``width`` columns end (the editor snaps)."""
    tile = tab.get_by_test_id(f"tile-{index}")
    tile.scroll_into_view_if_needed()
    grid = tab.get_by_test_id("board-grid").bounding_box()
    gap = float(tab.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('[data-testid=board-grid]')).columnGap)"
    ))  # fmt: skip
    step = (grid["width"] + gap) / 12
    handle = tab.get_by_test_id(f"tile-{index}-resize").bounding_box()
    left = tile.bounding_box()["x"]
    drag(tab, handle, left + width * step - gap / 2 - 3, handle["y"] + handle["height"] / 2)
    assert tab.get_by_test_id(f"tile-{index}-width").inner_text() == f"{width}/12"


def test_the_manager_dashboard_rebuilt_with_the_mouse(tab_as: Any, live_server: LiveServer) -> None:
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}")
    tab.get_by_test_id("designer-dashboards").click()  # a link: wait for its page
    tab.get_by_test_id("dashboard-manager").wait_for(state="visible")
    tab.get_by_test_id("dashboards-new").click()
    tab.wait_for_selector(READY)
    tab.get_by_test_id("board-key").fill("manager_by_mouse")
    tab.get_by_test_id("board-label-en").fill(BOARD["label"]["en"])
    tab.get_by_test_id("board-label-zh-CN").fill(BOARD["label"]["zh-CN"])

    # the tiles, the first two and the next two added the wrong way round
    wanted = [item["report"] for item in BOARD["items"]]
    added = [wanted[1], wanted[0], wanted[3], wanted[2], *wanted[4:]]
    for report in added:
        tab.get_by_test_id("tile-report").select_option(report)
        tab.get_by_test_id("tile-add").click()
    assert [r for r, _ in order_on_screen(tab)] == added
    assert all(width == 6 for _, width in order_on_screen(tab))
    drag_tile(tab, 1, onto=0, after=False)  # the KPI before the chart
    drag_tile(tab, 2, onto=3, after=True)  # follow-ups before NPS by doctor
    assert [r for r, _ in order_on_screen(tab)] == wanted
    # the live region says what happened
    announced = tab.get_by_test_id("board-announce")
    assert "moved to tile 4 of 14" in announced.text_content()
    # widths: dragged in an order that keeps each tile's right edge on the grid
    widths = {i: item["width"] for i, item in enumerate(BOARD["items"])}
    for index in (0, 1, 6, 7, 8, 13, 11, 12):
        resize_tile(tab, index, widths[index])
    assert order_on_screen(tab) == [(i["report"], i["width"]) for i in BOARD["items"]]

    # a KPI tile shows what it compares
    kpi = tab.get_by_test_id("tile-0")
    assert kpi.get_by_test_id("tile-0-period").input_value() == "month"
    kpi.get_by_test_id("kpi-compare").wait_for()

    # the three filters, wired per form with the dropdowns
    for index, shipped in enumerate(BOARD["filters"]):
        tab.get_by_test_id(f"filter-add-{shipped['type']}").click()
        tab.get_by_test_id(f"filter-{index}-key").fill(shipped["key"])
        for locale, text in shipped["label"].items():
            tab.get_by_test_id(f"filter-{index}-label-{locale}").fill(text)
        card = tab.get_by_test_id(f"filter-{index}")
        forms = card.locator("tr[data-form]")
        assert sorted(forms.evaluate_all("rows => rows.map(r => r.dataset.form)")) == sorted(
            {REPORTS[r]["form"] for r in wanted}
        )
        for form, field in shipped["field"].items():
            tab.get_by_test_id(f"filter-{index}-field-{form}").select_option(field)
    # which tiles each filter narrows, and which not: patients have no department
    assert "New patients this month" in tab.get_by_test_id("filter-1-skips").inner_text()
    assert "Department" in tab.get_by_test_id("tile-0-not-narrowed").inner_text()
    assert "Branch" in tab.get_by_test_id("tile-0-narrowed").inner_text()
    # a date filter offers dates only, a choice only fields with options or links
    period = tab.get_by_test_id("filter-0-field-appointment")
    assert "department" not in period.locator("option").evaluate_all("o => o.map(x => x.value)")
    choice = tab.get_by_test_id("filter-1-field-appointment")
    assert "starts_at" not in choice.locator("option").evaluate_all("o => o.map(x => x.value)")

    tab.get_by_test_id("board-save").click()
    assert "manager_by_mouse" in tab.get_by_test_id("board-plan-lines").inner_text()
    tab.get_by_test_id("board-confirm").click()
    wait_saved(tab)
    assert tab.url.endswith(f"/designer/{APP}/dashboards/manager_by_mouse")
    saved = saved_board(live_server, "manager_by_mouse")
    assert normalised(saved) == normalised(BOARD)

    # undo and redo walk the edits back and forth; nothing is saved by them
    tab.get_by_test_id("board-undo").click()
    assert tab.get_by_test_id("board-dirty").is_visible()
    tab.get_by_test_id("board-redo").click()
    assert tab.get_by_test_id("board-dirty").is_hidden()
    # the saved dashboard opens on its page
    tab.get_by_test_id("board-view").click()
    tab.wait_for_url(f"{live_server.url}/apps/{APP}/dashboards/manager_by_mouse")
    assert tab.locator("section.tile").count() == len(BOARD["items"])


# -- by keyboard --------------------------------------------------------------------------------


def focused(tab: Any) -> str:
    return str(tab.evaluate("document.activeElement?.dataset?.testid || ''"))


def tab_to(tab: Any, testid: str, limit: int = 300) -> None:
    """Press Tab until the element with ``testid`` has the focus."""
    for _ in range(limit):
        if focused(tab) == testid:
            return
        tab.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {testid} (stuck at {focused(tab)!r})")


def choose(tab: Any, testid: str, value: str) -> None:
    """Pick an option of a select with the arrow keys."""
    tab_to(tab, testid)
    options = tab.evaluate("[...document.activeElement.options].map((o) => o.value)")
    current = tab.evaluate("document.activeElement.value")
    steps = options.index(value) - options.index(current)
    for _ in range(abs(steps)):
        tab.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
    assert focused(tab) == testid
    assert tab.evaluate("document.activeElement.value") == value


def test_the_manager_dashboard_rebuilt_with_the_keyboard_in_chinese(
    tab_as: Any, live_server: LiveServer
) -> None:
    tab = tab_as(HEAD_OFFICE, locale="zh-CN")
    tab.goto(f"{live_server.url}/designer/{APP}/dashboards/new")
    tab.wait_for_selector(READY)
    assert "新建仪表盘" in tab.locator("h1").inner_text()
    keys = tab.keyboard
    tab_to(tab, "board-key")
    keys.type("manager_by_keys")
    tab_to(tab, "board-label-en")
    keys.type(BOARD["label"]["en"])
    tab_to(tab, "board-label-zh-CN")
    keys.type(BOARD["label"]["zh-CN"])

    # the tiles: the last one added first, then moved to the end with the arrows
    wanted = [item["report"] for item in BOARD["items"]]
    for report in [wanted[-1], *wanted[:-1]]:
        choose(tab, "tile-report", report)
        keys.press("Tab")
        assert focused(tab) == "tile-add"
        keys.press("Enter")
        keys.press("Shift+Tab")
    announced = tab.get_by_test_id("board-announce")
    tab_to(tab, "tile-0")
    keys.press("End")
    assert focused(tab) == "tile-13"
    assert [r for r, _ in order_on_screen(tab)] == wanted
    keys.press("ArrowLeft")
    assert focused(tab) == "tile-12"
    assert tab.get_by_test_id("tile-12").get_attribute("data-report") == wanted[-1]
    keys.press("ArrowRight")
    assert [r for r, _ in order_on_screen(tab)] == wanted
    assert "移到" in announced.text_content()

    # widths with Shift and the arrows, one column a press
    tab_to(tab, "tile-0")
    for index, item in enumerate(BOARD["items"]):
        tab_to(tab, f"tile-{index}")
        steps = item["width"] - 6
        for _ in range(abs(steps)):
            keys.press("Shift+ArrowRight" if steps > 0 else "Shift+ArrowLeft")
        assert focused(tab) == f"tile-{index}"
    assert order_on_screen(tab) == [(i["report"], i["width"]) for i in BOARD["items"]]
    tab.wait_for_function(
        "document.querySelector('[data-testid=board-announce]').textContent.includes('12')"
    )
    assert "宽" in announced.text_content()

    # Delete removes the focused tile, Ctrl+Z brings it back
    tab_to(tab, "tile-5")
    keys.press("Delete")
    assert tab.locator("[data-testid=board-grid] > .tile").count() == len(wanted) - 1
    keys.press("Control+z")
    assert [r for r, _ in order_on_screen(tab)] == wanted

    # the filters, wired with the arrow keys
    for index, shipped in enumerate(BOARD["filters"]):
        tab_to(tab, f"filter-add-{shipped['type']}")
        keys.press("Enter")
        assert focused(tab) == f"filter-{index}-key"
        keys.type(shipped["key"])
        for locale in ("en", "zh-CN"):
            tab_to(tab, f"filter-{index}-label-{locale}")
            keys.type(shipped["label"][locale])
        for form, field in shipped["field"].items():
            choose(tab, f"filter-{index}-field-{form}", field)
    assert "未按" in tab.get_by_test_id("tile-0-not-narrowed").inner_text()

    keys.press("Control+s")
    tab.get_by_test_id("board-confirm").wait_for()
    assert focused(tab) == "board-confirm"
    keys.press("Enter")
    wait_saved(tab)
    assert "已保存" in tab.get_by_test_id("board-status").inner_text()
    saved = saved_board(live_server, "manager_by_keys")
    assert normalised(saved) == normalised(BOARD)
    # Ctrl+Z and Ctrl+Shift+Z
    tab_to(tab, "tile-0")
    keys.press("Control+z")
    assert tab.get_by_test_id("board-dirty").is_visible()
    keys.press("Control+Shift+z")
    assert tab.get_by_test_id("board-dirty").is_hidden()


# -- KPI period, errors at their element, stale saves, the guard, delete -------------------------


def test_a_kpi_tile_compares_by_another_period(tab_as: Any, live_server: LiveServer) -> None:
    body = {"label": "KPI", "items": [{"report": "nps_overall", "width": 4}]}
    with live_server.api() as api:
        made = api.put(f"/api/apps/{APP}/dashboards/board_kpi", json=body)
        assert made.status_code == 201, made.text
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/dashboards/board_kpi")
    tab.wait_for_selector(READY)
    tile = tab.get_by_test_id("tile-0")
    tile.get_by_test_id("kpi-compare").wait_for()
    tab.get_by_test_id("tile-0-period").select_option("week")
    tab.get_by_test_id("tile-0-own-chart").wait_for()
    tile.get_by_test_id("kpi-compare").wait_for()
    tab.get_by_test_id("board-save").click()
    tab.get_by_test_id("board-confirm").click()
    wait_saved(tab)
    chart = REPORTS["nps_overall"]["chart"]
    assert saved_board(live_server, "board_kpi")["items"] == [
        {"report": "nps_overall", "width": 4, "chart": {**chart, "period": "week"}}
    ]
    # back to the report's own period: the tile has no chart of its own again
    tab.get_by_test_id("tile-0-period").select_option("month")
    assert tab.get_by_test_id("tile-0-own-chart").count() == 0
    tab.get_by_test_id("board-save").click()
    tab.get_by_test_id("board-confirm").click()
    wait_saved(tab)
    assert saved_board(live_server, "board_kpi")["items"] == body["items"]


def test_refusals_are_shown_at_their_element(tab_as: Any, live_server: LiveServer) -> None:
    body = {k: v for k, v in BOARD.items() if k != "key"}
    with live_server.api() as api:
        made = api.put(f"/api/apps/{APP}/dashboards/board_checks", json=body)
        assert made.status_code == 201, made.text
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/dashboards/board_checks")
    tab.wait_for_selector(READY)
    # the server's refusal (no name) is shown at the name
    tab.get_by_test_id("board-label-en").fill("")
    tab.get_by_test_id("board-label-zh-CN").fill("")
    tab.get_by_test_id("board-label-zh-CN").blur()
    tab.get_by_test_id("board-save").click()
    error = tab.locator("[data-error-for='/label']")
    error.wait_for()
    assert error.is_visible()
    assert tab.get_by_test_id("board-problems").is_visible()
    # a filter without a key is refused before the server is asked, at its key
    tab.get_by_test_id("board-label-en").fill("Checks")
    tab.get_by_test_id("board-label-en").blur()
    tab.get_by_test_id("filter-2-key").fill("")
    tab.get_by_test_id("filter-2-key").blur()
    tab.keyboard.press("Control+s")
    tab.locator("[data-error-for='/filters/2/key']").wait_for()
    assert tab.get_by_test_id("filter-2").get_attribute("class").endswith("has-error")
    tab.get_by_test_id("filter-2-key").fill("branch")
    tab.get_by_test_id("filter-2-key").blur()

    # someone saves the app meanwhile: a clear message, nothing overwritten
    with live_server.api() as api:
        other = api.put(f"/api/apps/{APP}/dashboards/board_kpi", json={"label": "x", "items": [
            {"report": "nps_overall", "width": 3}]})  # fmt: skip
        assert other.status_code in (200, 201), other.text
    tab.get_by_test_id("board-save").click()
    status = tab.get_by_test_id("board-status")
    tab.wait_for_function(
        "document.querySelector('[data-testid=board-status]').dataset.kind === 'error'"
    )
    assert "reload" in status.inner_text()
    assert tab.get_by_test_id("board-reload").is_visible()
    assert saved_board(live_server, "board_checks")["label"] == BOARD["label"]

    # the unsaved-changes guard asks before leaving
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    tab.get_by_role("link", name="Dashboards", exact=False).first.click()
    time.sleep(0.5)
    assert dialogs == ["beforeunload"]


def test_a_dashboard_is_deleted_from_the_editor(tab_as: Any, live_server: LiveServer) -> None:
    body = {"label": "Checks", "items": [{"report": "nps_overall", "width": 4}]}
    with live_server.api() as api:
        made = api.put(f"/api/apps/{APP}/dashboards/board_checks", json=body)
        assert made.status_code in (200, 201), made.text
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/dashboards")
    tab.get_by_test_id("dashboard-board_checks").click()
    tab.wait_for_selector(READY)
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.get_by_test_id("board-delete").click()
    tab.wait_for_function(
        "location.pathname.endsWith('/dashboards') || document.querySelector("
        "'[data-testid=board-status]')?.dataset.kind === 'error'",
        timeout=90_000,
    )
    assert tab.url == f"{live_server.url}/designer/{APP}/dashboards", tab.get_by_test_id(
        "board-status"
    ).inner_text()
    assert tab.get_by_test_id("dashboard-board_checks").count() == 0
    with live_server.api() as api:
        assert api.get(f"/api/apps/{APP}/dashboards/board_checks").status_code == 404


# -- who may edit -------------------------------------------------------------------------------


def test_the_edit_button_is_for_designers_only(tab_as: Any, live_server: LiveServer) -> None:
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/apps/{APP}/dashboards/manager")
    tab.get_by_test_id("dashboard-edit").click()
    tab.wait_for_url(f"{live_server.url}/designer/{APP}/dashboards/manager")
    tab.wait_for_selector(READY)
    assert [r for r, _ in order_on_screen(tab)] == [i["report"] for i in BOARD["items"]]
    assert tab.get_by_test_id("board-dirty").is_hidden()

    tab = tab_as(MANAGER)
    tab.goto(f"{live_server.url}/apps/{APP}/dashboards/manager")
    tab.locator("section.tile").first.wait_for()
    assert tab.get_by_test_id("dashboard-edit").count() == 0
    for path in ("dashboards", "dashboards/manager", "dashboards/new"):
        page = tab.goto(f"{live_server.url}/designer/{APP}/{path}")
        assert page is not None and page.status == 403, path
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        token = client.post(
            "/api/auth/token", json={"username": MANAGER, "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {k: v for k, v in BOARD.items() if k != "key"}
        put = client.put(f"/api/apps/{APP}/dashboards/manager", json=body, headers=headers)
        tile = client.get(
            f"/designer/{APP}/dashboards/-/tile", params={"report": "nps_overall"}, headers=headers
        )
    assert (put.status_code, tile.status_code) == (403, 403)
