"""Every field type: values it accepts (and how they are stored), values it refuses (and why).

The same cases also check the fast pre-check against jsonschema (see test_schema.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from .factory import codes, field, make_form, ok, options

FILE = {"id": "f1", "name": "scan.pdf", "content_type": "application/pdf", "size": 2048}
IMAGE = {"id": "i1", "name": "x.png", "content_type": "image/png", "size": 100}

# (field definition, [(input, stored)], [(input, code, path suffix)])
CASES: list[tuple[dict[str, Any], list[tuple[Any, Any]], list[tuple[Any, str, str]]]] = [
    (
        field("v", "text", min_length=2, max_length=5),
        [("ab", "ab"), ("héllo", "héllo"), (" ab ", " ab ")],
        [
            (5, "type", ""),
            ("a", "min_length", ""),
            ("abcdef", "max_length", ""),
            (True, "type", ""),
        ],
    ),
    (
        field("v", "text"),
        [("x" * 1000, "x" * 1000)],
        [("x" * 1001, "max_length", "")],
    ),
    (
        field("v", "text", pattern="[A-Z]{2}[0-9]+"),
        [("AB12", "AB12")],
        [("ab12", "pattern", ""), ("AB12x", "pattern", ""), ("xAB12", "pattern", "")],
    ),
    (
        field("v", "textarea"),
        [("line 1\nline 2", "line 1\nline 2"), ("x" * 100_000, "x" * 100_000)],
        [("x" * 100_001, "max_length", ""), ([], "type", "")],
    ),
    (
        field("v", "number", min=0, max=10.5),
        [(0, 0), (10.5, 10.5), (3.25, 3.25)],
        [("3", "type", ""), (True, "type", ""), (-0.1, "min", ""), (11, "max", "")],
    ),
    (
        field("v", "integer", min=-5, max=150),
        [(42, 42), (5.0, 5), (-5, -5)],
        [
            (4.5, "type", ""),
            ("4", "type", ""),
            (False, "type", ""),
            (151, "max", ""),
            (-6, "min", ""),
        ],
    ),
    (
        field("v", "boolean"),
        [(True, True), (False, False)],
        [(1, "type", ""), ("true", "type", "")],
    ),
    (
        field("v", "date", min="2000-01-01", max="2030-12-31"),
        [("2024-02-29", "2024-02-29")],
        [
            ("2023-02-29", "format", ""),
            ("2024-5-1", "format", ""),
            ("20240501", "format", ""),
            ("1999-12-31", "min", ""),
            ("2031-01-01", "max", ""),
            (20240501, "type", ""),
        ],
    ),
    (
        field("v", "datetime", min="2020-01-01T00:00:00Z"),
        [
            ("2024-05-01T09:30:00+08:00", "2024-05-01T01:30:00Z"),
            ("2024-05-01T01:30:00Z", "2024-05-01T01:30:00Z"),
            ("2024-05-01T01:30:00.999z", "2024-05-01T01:30:00Z"),
            ("2024-05-01T01:30-02:00", "2024-05-01T03:30:00Z"),
        ],
        [
            ("2024-05-01T09:30:00", "format", ""),
            ("2024-05-01", "format", ""),
            ("2024-13-01T00:00:00Z", "format", ""),
            ("yesterday", "format", ""),
            ("2019-12-31T23:59:59Z", "min", ""),
            (1714555800, "type", ""),
        ],
    ),
    (
        field("v", "time", min="08:00", max="18:00:00"),
        [("09:30", "09:30"), ("17:59:59", "17:59:59"), ("08:00", "08:00")],
        [
            ("9:30", "format", ""),
            ("24:00", "format", ""),
            ("07:59", "min", ""),
            ("18:00:01", "max", ""),
        ],
    ),
    (
        field("v", "select", options=options("red", "green")),
        [("red", "red")],
        [("blue", "option", ""), (["red"], "type", ""), ("Red", "option", "")],
    ),
    (
        field("v", "multiselect", options=options("a", "b", "c"), min_items=1, max_items=2),
        [(["a"], ["a"]), (["c", "a"], ["c", "a"])],
        [
            (["a", "a"], "duplicate", ""),
            (["a", "x"], "option", "/1"),
            ([], "min_items", ""),
            (["a", "b", "c"], "max_items", ""),
            ("a", "type", ""),
            ([1], "type", "/0"),
        ],
    ),
    (
        field("v", "email"),
        [
            ("  ann@example.com ", "ann@example.com"),
            ("a.b+c@mail.example.cn", "a.b+c@mail.example.cn"),
        ],
        [
            ("ann@", "format", ""),
            ("ann example.com", "format", ""),
            ("ann@localhost", "format", ""),
        ],
    ),
    (
        field("v", "phone"),
        [
            ("+86 138-0013-8000", "+86 138-0013-8000"),
            (" (010) 1234 5678 ", "(010) 1234 5678"),
            ("12345", "12345"),
        ],
        [
            ("1234", "format", ""),
            ("call me", "format", ""),
            ("+" + "1" * 21, "format", ""),
            (12345, "type", ""),
        ],
    ),
    (
        field("v", "url"),
        [
            ("https://example.com/a?b=1", "https://example.com/a?b=1"),
            (" http://x.cn ", "http://x.cn"),
        ],
        [
            ("ftp://example.com", "format", ""),
            ("example.com", "format", ""),
            ("https://", "format", ""),
        ],
    ),
    (
        field("v", "relation", target="patient"),
        [("rec_01", "rec_01")],
        [(42, "type", ""), ({"id": "x"}, "type", "")],
    ),
    (
        field("v", "file", accept=["application/pdf", "image/*"], max_size=4096),
        [
            (FILE, FILE),
            ({**FILE, "content_type": "IMAGE/PNG"}, {**FILE, "content_type": "image/png"}),
        ],
        [
            ({**FILE, "content_type": "text/plain"}, "file_type", "/content_type"),
            ({**FILE, "size": 5000}, "file_size", "/size"),
            ({"id": "f1"}, "type", ""),
            ({**FILE, "extra": 1}, "type", ""),
            ([FILE], "type", ""),
        ],
    ),
    (
        field("v", "file", multiple=True),
        [([FILE, FILE], [FILE, FILE]), ([], [])],
        [(FILE, "type", ""), ([FILE, {"id": 1}], "type", "/1")],
    ),
    (
        field("v", "image"),
        [(IMAGE, IMAGE)],
        [(FILE, "file_type", "/content_type")],
    ),
]


def _id(case: tuple[dict[str, Any], Any, Any]) -> str:
    definition = case[0]
    extra = "-".join(key for key in definition if key not in ("key", "type"))
    return definition["type"] + (f"({extra})" if extra else "")


@pytest.mark.parametrize("case", CASES, ids=[_id(case) for case in CASES])
def test_valid_values_are_stored_normalised(case: Any) -> None:
    definition, valid, _ = case
    form = make_form(definition)
    for value, stored in valid:
        assert ok(form, {"v": value}) == {"v": stored}, value


@pytest.mark.parametrize("case", CASES, ids=[_id(case) for case in CASES])
def test_invalid_values_are_refused_with_a_code(case: Any) -> None:
    definition, _, invalid = case
    form = make_form(definition)
    for value, code, suffix in invalid:
        assert codes(form, {"v": value}) == [("/data/v" + suffix, code)], value


def test_empty_string_means_no_value() -> None:
    form = make_form(field("a", "date"), field("b", "text"), field("c", "email"))
    assert ok(form, {"a": "", "b": "", "c": "  "}) == {}


def test_messages_read_well() -> None:
    form = make_form(
        field("phone", "phone", required=True),
        field("age", "integer", max=150),
        field("date_of_birth", "date", label={"zh-CN": "出生日期", "en": "Birthday"}),
        field("kind", "select", options=options("a", "b")),
        field("tags", "multiselect", options=options("a", "b")),
        field("name", "text", pattern="[a-z]+", pattern_message="may only use a-z"),
    )
    from .factory import errors_of

    messages = [
        error.message
        for error in errors_of(
            form,
            {
                "age": 151,
                "date_of_birth": "1990-02-30",
                "kind": "c",
                "tags": ["a", "a"],
                "name": "X",
            },
        )
    ]
    assert messages == [
        "Phone is required",
        "Age must be at most 150",
        "Birthday must be a date in the form YYYY-MM-DD",
        "Kind must be one of: a, b (got 'c')",
        "Tags lists 'a' more than once",
        "Name may only use a-z",
    ]


def test_datetime_without_offset_says_so() -> None:
    from .factory import errors_of

    form = make_form(field("at", "datetime"))
    (error,) = errors_of(form, {"at": "2024-05-01T09:30:00"})
    assert "time zone offset" in error.message
    assert error.code == "format"


def test_file_size_message_is_human() -> None:
    from .factory import errors_of

    form = make_form(field("scan", "file", max_size=1024 * 1024))
    (error,) = errors_of(form, {"scan": {**FILE, "size": 3 * 1024 * 1024}})
    assert error.message == "Scan must be at most 1 MB (the file is 3 MB)"
    assert error.path == "/data/scan/size"
