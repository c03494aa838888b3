"""Template syntax checks and sandboxed rendering."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from formloom.engines.rules import render_template, render_value, template_problems
from formloom.engines.rules.templates import sole_expression


def test_syntax() -> None:
    assert template_problems("Hello {{ record.name }}") is None
    problem = template_problems("Hello {{ record.name ")
    assert problem is not None and problem.startswith("line 1:")


def test_render_per_locale_with_fallback() -> None:
    text = {"en": "Hi {{ name }}", "zh-CN": "你好 {{ name }}"}
    assert render_template(text, {"name": "Li"}, "zh-CN") == "你好 Li"
    assert render_template(text, {"name": "Li"}, "fr") == "Hi Li"
    assert render_template({"zh-CN": "你好"}, {}, "fr") == "你好"


def test_sandbox_and_strict_undefined() -> None:
    with pytest.raises(SecurityError):
        render_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    with pytest.raises(UndefinedError):
        render_template("{{ missing }}", {})


# -- typed values (webhook bodies) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("{{ record.pain }}", "record.pain"),
        ("{{record.pain}}", "record.pain"),
        ("{{ record.pain }} ", None),
        ("Pain {{ record.pain }}", None),
        ("{{ a }}{{ b }}", None),
        ("{{ a }} and {{ b }}", None),
        ("{% if a %}{{ a }}{% endif %}", None),
        ("{{ }}", None),
        ("plain", None),
    ],
)
def test_a_sole_expression_is_recognised(text: str, expression: str | None) -> None:
    assert sole_expression(text) == expression


def test_render_value_keeps_json_types() -> None:
    context = {"record": {"pain": 2, "t": 37.5, "ok": True, "none": None, "tags": ["a"]}}
    assert render_value("{{ record.pain }}", context) == 2
    assert render_value("{{ record.t }}", context) == 37.5
    assert render_value("{{ record.ok }}", context) is True
    assert render_value("{{ record.none }}", context) is None
    assert render_value("{{ record.tags }}", context) == ["a"]
    assert render_value("{{ record.pain > 1 }}", context) is True
    assert render_value("Pain {{ record.pain }}", context) == "Pain 2"
    with pytest.raises(UndefinedError):
        render_value("{{ record.nothing }}", context)
    with pytest.raises(SecurityError):
        render_value("{{ record.__class__.__mro__ }}", context)
