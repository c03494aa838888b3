"""Template syntax checks and sandboxed rendering."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from formloom.engines.rules import render_template, template_problems


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
