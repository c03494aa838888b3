"""The designer in Chinese (issue 17, item 12), in a real browser: the palette shows a small
drawing per field type (inline SVG, no letters such as "Aa", "hh", "www", "doc", "img"), and
a field's language fields read 英文标签 / 中文标签 rather than "标签 (English)"; condition and
formula settings say 条件表达式 / 公式表达式, not JsonLogic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP

ICONS = """() => [...document.querySelectorAll('[data-testid^=palette-]')].map((item) => {
  const icon = item.querySelector('.type-icon');
  const drawing = getComputedStyle(icon, '::before');
  const box = icon.getBoundingClientRect();
  return {type: item.dataset.type, mask: drawing.maskImage || drawing.webkitMaskImage,
          width: parseFloat(drawing.width), glyph: getComputedStyle(icon).fontSize,
          box: [box.width, box.height]};
})"""


@pytest.fixture
def zh(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
    yield tab
    context.close()
    assert not errors, errors


def test_the_palette_draws_each_type(zh: Any, live_server: LiveServer) -> None:
    zh.goto(f"{live_server.url}/designer/{APP}/patient")
    zh.get_by_test_id("palette-text").wait_for()
    icons = zh.evaluate(ICONS)
    assert len(icons) >= 19
    for icon in icons:
        # a drawing (an SVG written into the stylesheet), the type's letters not shown
        assert icon["mask"].startswith('url("data:image/svg+xml'), icon
        assert icon["width"] > 10, icon
        assert icon["glyph"] == "0px", icon
        assert icon["box"][0] >= 20 and icon["box"][1] >= 18, icon
    kinds = {icon["type"] for icon in icons}
    assert {"text", "time", "url", "file", "image"} <= kinds
    # each drawing is its own
    assert len({icon["mask"] for icon in icons}) == len(icons)
    # the palette still names each type in words
    assert zh.get_by_test_id("palette-text").inner_text().strip().endswith("单行文本")


CARD_ICONS = """() => [...document.querySelectorAll('.field-card')].map((card) => {
  const icon = card.querySelector(':scope > .card-head > .type-icon');
  const drawing = getComputedStyle(icon, '::before');
  return {uid: card.dataset.testid, type: [...card.classList].find((c) => c.startsWith('type-')),
          mask: drawing.maskImage || drawing.webkitMaskImage,
          glyph: getComputedStyle(icon).fontSize};
})"""


def test_the_canvas_cards_draw_their_type_too(zh: Any, live_server: LiveServer) -> None:
    """The field cards on the canvas show the palette's drawing of their type, not letters."""
    zh.goto(f"{live_server.url}/designer/{APP}/patient")
    zh.get_by_test_id("field-name").wait_for()
    cards = zh.evaluate(CARD_ICONS)
    palette = {icon["type"]: icon["mask"] for icon in zh.evaluate(ICONS)}
    assert len(cards) >= 5
    for card in cards:
        assert card["glyph"] == "0px", card
        assert card["mask"] == palette[card["type"].removeprefix("type-")], card


def test_language_fields_and_settings_in_chinese_words(zh: Any, live_server: LiveServer) -> None:
    zh.goto(f"{live_server.url}/designer/{APP}/patient")
    zh.get_by_test_id("field-name").click()
    labels = zh.locator(".side-pane label").all_inner_texts()
    assert any(text.startswith("英文标签") for text in labels), labels
    assert any(text.startswith("中文标签") for text in labels), labels
    side = zh.locator(".side-pane").inner_text()
    assert "(English)" not in side and "JsonLogic" not in side
