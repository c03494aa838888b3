"""Rating, signature and rich text fields (issue 17, item 9), in a real browser.

* Rating: a row of stars that is one radio group — a click chooses, arrow keys move and
  choose, Home/End the lowest/highest, Backspace clears, and so does "Clear"; the record page
  shows stars and says "4 of 5 stars" to screen readers, the list shows 4/5.
* Signature: drawn with mouse events on the pad, uploaded as a PNG through the file path, the
  record page shows the image (read through the record's file permission); a keyboard user
  signs by typing their name.
* Rich text: Ctrl+B and the toolbar's list make bold text and a list; what is stored is
  sanitised HTML (an attack string written through the API loses its script, handler,
  javascript: link and style) and the record page shows it formatted.
* The browser's checks (form-checks.js) agree with the server's on ratings and rich text.
* The words in English and Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from formloom.engines.forms import FormSpec, RecordInvalid, prepare
from formloom.engines.forms.richtext import sanitise
from tests.engines.forms.test_field_types_extra import ATTACKS
from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in

APP = "field_types_lab"
FORM = {
    "key": "feedback",
    "label": {"en": "Feedback", "zh-CN": "反馈"},
    "fields": [
        {"key": "name", "type": "text", "label": "Name"},
        {"key": "score", "type": "rating", "label": {"en": "Score", "zh-CN": "评分"}},
        {"key": "signed", "type": "signature", "label": {"en": "Signed by", "zh-CN": "签名"}},
        {"key": "notes", "type": "richtext", "label": {"en": "Notes", "zh-CN": "备注"}},
    ],
}
LAB = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Field types lab",
    "locales": ["en", "zh-CN"],
    "roles": [{"key": "clerk", "label": "Clerk"}],
    "forms": [
        FORM,
        {
            "key": "designed",
            "label": {"en": "Designed", "zh-CN": "设计"},
            "fields": [
                {"key": "title", "type": "text", "label": {"en": "Title", "zh-CN": "标题"}},
                {
                    "key": "stars",
                    "type": "rating",
                    "label": {"en": "Stars", "zh-CN": "星级"},
                    "required": True,
                },
                {"key": "body", "type": "richtext", "label": {"en": "Body", "zh-CN": "正文"}},
            ],
        },
    ],
}
RECORD = re.compile(rf"/apps/{APP}/forms/feedback/[0-9a-f]{{32}}$")


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> str:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=LAB)
        assert answer.status_code in (200, 201), answer.text
    return APP


@pytest.fixture
def tab(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    contexts: list[Any] = []
    errors: list[str] = []

    def opened(locale: str = "en-US") -> Any:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, live_server, ADMIN, ADMIN_PASSWORD)
        return page

    yield opened
    for context in contexts:
        context.close()
    assert not errors, f"uncaught script errors on the page: {errors}"


def _record(live_server: LiveServer, page: Any) -> dict[str, Any]:
    record_id = page.url.rsplit("/", 1)[-1]
    with live_server.api() as api:
        answer = api.get(f"/api/records/{APP}/feedback/{record_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def _checked(page: Any) -> list[str]:
    return list(
        page.locator("[data-field=score] [role=radio]").evaluate_all(
            "(stars) => stars.map((s) => s.getAttribute('aria-checked'))"
        )
    )


def test_rating_with_keyboard_and_mouse(tab: Any, lab: str, live_server: LiveServer) -> None:
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/new")
    page.fill("input[name=name]", "Rated")
    stars = page.locator("[data-field=score] [role=radio]")
    assert stars.count() == 5
    assert page.locator("[data-field=score] [role=radiogroup]").get_attribute("aria-labelledby")
    assert stars.nth(2).get_attribute("aria-label") == "3 of 5 stars"
    # one tab stop: the first star while none is chosen
    assert [stars.nth(i).get_attribute("tabindex") for i in range(5)] == [
        "0",
        "-1",
        "-1",
        "-1",
        "-1",
    ]
    page.get_by_test_id("star-score-4").click()
    assert _checked(page) == ["false", "false", "false", "true", "false"]
    focused = page.evaluate("document.activeElement.dataset.value")
    assert focused == "4"
    page.keyboard.press("ArrowLeft")
    assert _checked(page)[2] == "true"
    page.keyboard.press("End")
    assert _checked(page)[4] == "true"
    page.keyboard.press("Home")
    assert _checked(page)[0] == "true"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    assert _checked(page)[2] == "true"
    page.keyboard.press("Backspace")
    assert _checked(page) == ["false"] * 5
    page.get_by_test_id("star-score-2").click()
    page.get_by_test_id("clear-score").click()
    assert _checked(page) == ["false"] * 5
    # the focus ring shows on the star the keyboard is on
    page.get_by_test_id("star-score-1").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.get_by_test_id("submit").click()
    page.wait_for_url(RECORD)
    assert _record(live_server, page)["data"]["score"] == 4
    shown = page.locator("[data-field=score] .fl-stars")
    assert shown.get_attribute("data-value") == "4"
    assert shown.locator(".visually-hidden").inner_text() == "4 of 5 stars"
    assert shown.locator("[aria-hidden=true]").inner_text() == "★★★★☆"
    # the list shows the number
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback")
    assert page.locator(".fl-rating-number[data-value='4']").first.inner_text() == "4/5"
    # a filter on it reads it as a number (the list API, compiled to SQL)
    with live_server.api() as api:
        found = api.get(
            f"/api/records/{APP}/feedback", params={"filter": '{">=": [{"var": "score"}, 4]}'}
        )
        assert found.status_code == 200, found.text
        assert any(item["data"].get("score") == 4 for item in found.json()["items"])


def _draw(page: Any) -> None:
    pad = page.get_by_test_id("signature-pad-signed")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None and box["width"] > 100
    x, y = box["x"], box["y"]
    page.mouse.move(x + 20, y + 100)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(x + 20 + step * 8, y + 100 - (step % 6) * 10)
    page.mouse.up()


def test_signature_drawn_with_the_mouse(tab: Any, lab: str, live_server: LiveServer) -> None:
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/new")
    page.fill("input[name=name]", "Signed")
    # the pad's bitmap has the screen's pixels
    ratio = page.evaluate("window.devicePixelRatio")
    pad = page.get_by_test_id("signature-pad-signed")
    width = page.evaluate("(c) => [c.width, c.getBoundingClientRect().width]", pad.element_handle())
    assert abs(width[0] - width[1] * ratio) <= 1
    _draw(page)
    page.locator("[data-field=signed] .fl-file-status").get_by_text("Signature saved").wait_for()
    page.get_by_test_id("submit").click()
    page.wait_for_url(RECORD)
    record = _record(live_server, page)
    stored = record["data"]["signed"]
    assert stored["content_type"] == "image/png" and stored["size"] > 100
    image = page.get_by_test_id("signature-image")
    image.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=signature-image]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert f"record={record['id']}" in (image.get_attribute("src") or "")
    # the PNG holds ink (not a blank pad)
    with live_server.api() as api:
        png = api.get(f"/api/files/{stored['id']}", params={"record": record["id"]})
        assert png.status_code == 200
        assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    # the printout shows the image too
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/{record['id']}/print")
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=signature-image]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    # edit: "Sign again" shows an empty pad, "Clear" empties the field
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/{record['id']}/edit")
    page.get_by_test_id("signature-signed").wait_for()
    page.get_by_test_id("signature-again-signed").click()
    assert page.get_by_test_id("signature-pad-signed").is_visible()
    page.get_by_test_id("signature-clear-signed").click()
    page.get_by_test_id("submit").click()
    page.wait_for_url(RECORD)
    assert "signed" not in _record(live_server, page)["data"]


def test_signature_by_typed_name(tab: Any, lab: str, live_server: LiveServer) -> None:
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/new")
    page.fill("input[name=name]", "Typed")
    typed = page.get_by_test_id("signature-typed-signed")
    typed.focus()
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Enter")
    page.locator("[data-field=signed] .fl-file-status").get_by_text("Signature saved").wait_for()
    page.get_by_test_id("submit").click()
    page.wait_for_url(RECORD)
    assert _record(live_server, page)["data"]["signed"]["content_type"] == "image/png"


def test_rich_text_bold_and_list(tab: Any, lab: str, live_server: LiveServer) -> None:
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/new")
    page.fill("input[name=name]", "Formatted")
    area = page.get_by_test_id("richtext-notes")
    area.click()
    page.keyboard.type("Plain ")
    page.keyboard.press("Control+b")
    page.keyboard.type("strong")
    assert page.get_by_test_id("rt-bold-notes").get_attribute("aria-pressed") == "true"
    page.keyboard.press("Control+b")
    page.keyboard.press("Enter")
    page.get_by_test_id("rt-insertUnorderedList-notes").click()
    page.keyboard.type("one")
    page.keyboard.press("Enter")
    page.keyboard.type("two")
    page.get_by_test_id("submit").click()
    page.wait_for_url(RECORD)
    stored = _record(live_server, page)["data"]["notes"]
    assert re.search(r"<b>strong</b>", stored), stored
    assert re.search(r"<ul><li>one</li><li>two</li></ul>", stored), stored
    shown = page.locator("[data-field=notes] .fl-richtext")
    assert shown.locator("b").inner_text() == "strong"
    assert shown.locator("ul li").all_inner_texts() == ["one", "two"]
    # the list shows the words, without tags
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback")
    cell = page.locator("tr", has_text="Formatted").first.locator("td[data-col=notes]")
    assert cell.text_content() == "Plain strong one two"
    assert cell.locator("b, li").count() == 0


ATTACK = (
    '<p>Hi <img src=x onerror="window.__hit=1"><script>window.__hit=2</script>'
    '<a href="javascript:window.__hit=3">js</a> <a href="https://example.org" onclick="x()">ok</a>'
    '<b style="color:red"><i>nested <u>deep</u></i></b></p>'
)


def test_rich_text_is_sanitised_on_write(tab: Any, lab: str, live_server: LiveServer) -> None:
    with live_server.api() as api:
        made = api.post(
            f"/api/records/{APP}/feedback", json={"data": {"name": "Attack", "notes": ATTACK}}
        )
        assert made.status_code == 201, made.text
        record = made.json()
    stored = record["data"]["notes"]
    for bad in ("<script", "onerror", "javascript:", "style=", "onclick", "<img"):
        assert bad not in stored, (bad, stored)
    assert '<a href="https://example.org" rel="noopener noreferrer">ok</a>' in stored
    assert "<b><i>nested <u>deep</u></i></b>" in stored
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/{record['id']}")
    shown = page.locator("[data-field=notes] .fl-richtext")
    assert shown.locator("u").inner_text() == "deep"
    assert shown.locator("script, img, [onclick], [style]").count() == 0
    assert page.evaluate("window.__hit") is None
    # editing puts the stored (sanitised) HTML back in the editor
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/{record['id']}/edit")
    assert page.get_by_test_id("richtext-notes").locator("u").inner_text() == "deep"
    assert page.evaluate("window.__hit") is None


# -- the browser's checks against the server's -------------------------------------------------

CHECKED = {
    "key": "checked",
    "label": "Checked",
    "fields": [
        {"key": "r", "type": "rating", "label": "R"},
        {"key": "r7", "type": "rating", "label": "R7", "max": 7, "required": True},
        {"key": "h", "type": "richtext", "label": "H", "max_length": 12},
    ],
}
CASES: list[tuple[str, Any]] = [
    *[("r", value) for value in (1, 3, 5, 0, 6, -1, 2.5, "3", True)],
    *[("r7", value) for value in (None, 1, 7, 8, 0)],
    *[
        ("h", value)
        for value in (
            "<p>twelve chars</p>",
            "<p>thirteen char</p>",
            "<b>a</b><ul><li>bb</li><li>cc</li></ul>",
            "<p>" + "x" * 11 + "</p><p>y</p>",
            "<p>" + "x" * 12 + "</p>",
            "<p>&amp;&amp;&amp;</p>",
            "<p>é" * 4 + "</p>",
            "x" * 13,
        )
    ],
]


def _server_ok(spec: FormSpec, key: str, value: Any) -> bool:
    data = {} if value is None else {key: value}
    try:
        prepare(spec, data, now=datetime.now(UTC))
    except RecordInvalid as invalid:
        return not any(error.field == key for error in invalid.errors)
    return True


def test_browser_checks_agree_with_the_server(tab: Any, lab: str, live_server: LiveServer) -> None:
    spec = FormSpec.model_validate(CHECKED)
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/new")
    fields = {field["key"]: field for field in CHECKED["fields"]}  # type: ignore[union-attr]
    browser = page.evaluate(
        """async ([fields, cases]) => {
          const { localProblem } = await import("/static/form-checks.js");
          return cases.map(([key, value]) => localProblem(fields[key], value));
        }""",
        [fields, CASES],
    )
    mismatches = [
        (key, value, problem)
        for (key, value), problem in zip(CASES, browser, strict=True)
        if (problem is None) != _server_ok(spec, key, value)
    ]
    assert not mismatches, mismatches


def test_words_in_chinese(tab: Any, lab: str, live_server: LiveServer) -> None:
    page = tab("zh-CN")
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/new")
    assert page.get_by_test_id("star-score-3").get_attribute("aria-label") == "3 星（共 5 星）"
    assert page.get_by_test_id("rt-bold-notes").get_attribute("aria-label") == "加粗 (Ctrl+B)"
    assert page.get_by_test_id("signature-typed-signed").get_attribute("placeholder") == (
        "或输入您的全名来签名"
    )
    page.get_by_test_id("star-score-2").click()
    assert page.get_by_test_id("clear-score").inner_text() == "清除"
    page.fill("input[name=name]", "中文")
    page.get_by_test_id("submit").click()
    page.wait_for_url(RECORD)
    said = page.locator("[data-field=score] .fl-stars .visually-hidden").inner_text()
    assert said == "2 星（共 5 星）"


def test_the_designer_offers_and_sets_them(tab: Any, lab: str, live_server: LiveServer) -> None:
    for locale, words in (
        ("en-US", ("Rating", "Signature", "Rich text", "Stars", "Most characters")),
        ("zh-CN", ("评分", "签名", "富文本", "星数", "最多字符数")),
    ):
        page = tab(locale)
        page.goto(f"{live_server.url}/designer/{APP}/designed")
        page.wait_for_selector("[data-testid=designer][data-ready=true]")
        for kind, word in zip(("rating", "signature", "richtext"), words, strict=False):
            assert page.get_by_test_id(f"palette-{kind}").inner_text().strip().endswith(word)
        page.get_by_test_id("field-stars").click()
        assert page.locator("[data-prop=max] label").inner_text() == words[3]
        page.get_by_test_id("field-body").click()
        assert page.locator("[data-prop=max_length] label").inner_text() == words[4]
    page.get_by_test_id("field-stars").click()
    page.get_by_test_id("prop-max").fill("7")
    page.get_by_test_id("field-body").click()
    page.get_by_test_id("prop-max_length").fill("300")
    page.get_by_test_id("designer-save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=designer-status]').dataset.kind === 'ok'"
    )
    with live_server.api() as api:
        fields = api.get(f"/api/apps/{APP}/forms/designed").json()["form"]["fields"]
    kept = {field["key"]: field for field in fields}
    assert kept["stars"]["max"] == 7 and kept["body"]["max_length"] == 300
    page.goto(f"{live_server.url}/apps/{APP}/forms/designed/new")
    assert page.locator("[data-field=stars] [role=radio]").count() == 7
    assert page.get_by_test_id("star-stars-7").get_attribute("aria-label") == "7 星（共 7 星）"


def test_the_editor_cleans_what_it_is_given_as_the_server_does(
    tab: Any, lab: str, live_server: LiveServer
) -> None:
    """form-richtext.js's allow-list (for values put into the editor) against nh3's: the same
    HTML for every attack string (MathML aside: nh3 drops its text, the browser keeps it)."""
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/feedback/new")
    given = [attack for attack, _ in ATTACKS if "<math" not in attack]
    cleaned = page.evaluate(
        """async (given) => {
          const { cleanFragment } = await import("/static/form-richtext.js");
          return given.map((html) => {
            const box = document.createElement("div");
            box.append(cleanFragment(html));
            return box.innerHTML;
          });
        }""",
        given,
    )
    assert page.evaluate("window.__hit") is None
    mismatches = [
        (html, browser, sanitise(html))
        for html, browser in zip(given, cleaned, strict=True)
        if browser != sanitise(html)
    ]
    assert not mismatches, mismatches


def test_a_required_rating_refused_then_chosen(tab: Any, lab: str, live_server: LiveServer) -> None:
    page = tab()
    page.goto(f"{live_server.url}/apps/{APP}/forms/designed/new")
    page.fill("input[name=title]", "Unrated")
    group = page.locator("[data-field=stars] [role=radiogroup]")
    assert group.get_attribute("aria-required") == "true"
    page.get_by_test_id("submit").click()
    error = page.locator("[data-field=stars] .fl-error")
    error.wait_for(state="visible")
    assert group.get_attribute("aria-invalid") == "true"
    # the error sends the focus to the stars: the keyboard chooses at once
    assert page.evaluate("document.activeElement.getAttribute('role')") == "radio"
    page.keyboard.press("End")
    error.wait_for(state="hidden")
    assert group.get_attribute("aria-invalid") is None
    page.get_by_test_id("submit").click()
    page.wait_for_url(re.compile(rf"/apps/{APP}/forms/designed/[0-9a-f]{{32}}$"))
