"""Rating, signature and rich text fields: definitions, schema, stored values, refusals, and
the rich text sanitiser against attack strings."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from formloom.engines.fhir import record_to_response
from formloom.engines.fhir.questionnaire import export_questionnaire
from formloom.engines.forms import FormSpec, compile_schema, definition_errors, field_types
from formloom.engines.forms.fastcheck import compile_check
from formloom.engines.forms.richtext import plain_text, sanitise
from formloom.engines.logic.sql import FIELD_TYPES as SQL_KINDS

from .factory import codes, errors_of, field, form_dict, make_form, ok


def problems_of(form: dict[str, Any]) -> list[dict[str, str]]:
    """The definition's problems (``pointer``, ``code``, ``message``), none when it is valid."""
    try:
        FormSpec.model_validate(form)
    except ValidationError as error:
        return definition_errors(error)
    return []


PNG = {"id": "s1", "name": "signature.png", "content_type": "image/png", "size": 900}


# -- rating -----------------------------------------------------------------------------------


def test_rating_stores_whole_stars() -> None:
    form = make_form(field("r", "rating"), field("r7", "rating", max=7))
    assert ok(form, {"r": 1, "r7": 7}) == {"r": 1, "r7": 7}
    assert ok(form, {"r": 5.0}) == {"r": 5}  # a whole float is the integer
    assert ok(form, {"r": None}) == {}


@pytest.mark.parametrize(
    ("value", "code"),
    [(0, "min"), (6, "max"), (-1, "min"), (2.5, "type"), ("3", "type"), (True, "type")],
)
def test_rating_refuses(value: Any, code: str) -> None:
    form = make_form(field("r", "rating", label="Score"))
    errors = errors_of(form, {"r": value})
    assert [(e.path, e.code) for e in errors] == [("/data/r", code)]
    assert "Score" in errors[0].message
    if code in ("min", "max"):
        assert errors[0].message == "Score must be from 1 to 5 stars"


def test_rating_required() -> None:
    form = make_form(field("r", "rating", required=True))
    assert codes(form, {}) == [("/data/r", "required")]


@pytest.mark.parametrize("stars", [2, 11, 0])
def test_rating_max_is_three_to_ten(stars: int) -> None:
    problems = problems_of(form_dict(field("r", "rating", max=stars)))
    assert [p["pointer"] for p in problems] == ["/fields/0/max"]


def test_rating_default_must_be_a_rating() -> None:
    problems = problems_of(form_dict(field("r", "rating", max=4, default=5)))
    assert [p["pointer"] for p in problems] == ["/fields/0/default"]


def test_rating_schema_and_kind() -> None:
    form = make_form(field("r", "rating", max=7))
    assert compile_schema(form)["properties"]["r"] == {
        "title": "R",
        "type": "integer",
        "minimum": 1,
        "maximum": 7,
    }
    # filters, sorts and reports read it as an integer
    assert field_types(form) == {"r": "integer"}
    assert SQL_KINDS["rating"] == "number"


# -- signature --------------------------------------------------------------------------------


def test_signature_is_a_png_file_reference() -> None:
    form = make_form(field("s", "signature", required=True))
    assert ok(form, {"s": PNG}) == {"s": PNG}
    assert ok(form, {"s": {**PNG, "content_type": "IMAGE/PNG"}})["s"]["content_type"] == "image/png"
    errors = errors_of(form, {"s": {**PNG, "content_type": "image/jpeg"}})
    assert [(e.path, e.code) for e in errors] == [("/data/s/content_type", "file_type")]
    assert codes(form, {"s": "signature.png"}) == [("/data/s", "type")]
    assert codes(form, {}) == [("/data/s", "required")]
    assert field_types(form) == {"s": "image"}


def test_signature_holds_one_signature() -> None:
    problems = problems_of(form_dict(field("s", "signature", multiple=True)))
    assert [(p["pointer"], p["code"]) for p in problems] == [
        ("/fields/0/multiple", "not_supported")
    ]


def test_signature_in_a_table_column() -> None:
    form = make_form(field("t", "table", fields=[field("who", "text"), field("s", "signature")]))
    assert ok(form, {"t": [{"who": "a", "s": PNG}]}) == {"t": [{"who": "a", "s": PNG}]}


# -- rich text --------------------------------------------------------------------------------

ATTACKS = [
    ("<img src=x onerror=alert(1)>hello", "hello"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
    ('<a href="  javascript:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
    (
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        '<a rel="noopener noreferrer">x</a>',
    ),
    ('<a href="/relative">x</a>', '<a rel="noopener noreferrer">x</a>'),
    ("<script>alert(1)</script>ok", "ok"),
    ("<p>a<script>document.cookie</script>b</p>", "<p>ab</p>"),
    ("<style>p{color:red}</style><p>a</p>", "<p>a</p>"),
    ('<p style="color:red" class="x" id="y" onclick="alert(1)">a</p>', "<p>a</p>"),
    ("<b><i><u>deep</u></i></b>", "<b><i><u>deep</u></i></b>"),
    ("<b><i>open", "<b><i>open</i></b>"),
    ("<iframe src=https://evil.example></iframe>x", "x"),
    ("<svg><script>alert(1)</script></svg>x", "x"),
    ("<math><mi xlink:href=javascript:alert(1)>m</mi></math>", ""),
    ("<!-- c --><p>a</p>", "<p>a</p>"),
    (
        '<a href="https://example.org" target="_blank">x</a>',
        '<a href="https://example.org" rel="noopener noreferrer">x</a>',
    ),
    (
        '<a href="mailto:a@b.cn">mail</a>',
        '<a href="mailto:a@b.cn" rel="noopener noreferrer">mail</a>',
    ),
    (
        "<ul><li>one</li><li>two</li></ul><ol><li>1</li></ol>",
        "<ul><li>one</li><li>two</li></ul><ol><li>1</li></ol>",
    ),
    ("<p>a &lt;b&gt; &amp; c</p>", "<p>a &lt;b&gt; &amp; c</p>"),
    ('<p>x</p><form action="https://x"><input name=a></form>', "<p>x</p>"),
]


@pytest.mark.parametrize(("given", "stored"), ATTACKS)
def test_sanitise(given: str, stored: str) -> None:
    assert sanitise(given) == stored
    assert sanitise(stored) == stored  # idempotent


def test_rich_text_is_sanitised_on_write() -> None:
    form = make_form(field("h", "richtext"))
    written = ok(form, {"h": '<p onclick="x()">Hi <b>there</b><script>alert(1)</script></p>'})
    assert written == {"h": "<p>Hi <b>there</b></p>"}


def test_rich_text_with_no_words_is_no_value() -> None:
    form = make_form(field("h", "richtext", required=True))
    for empty in ("<p><br></p>", "<script>x</script>", "<img src=x onerror=alert(1)>", "  "):
        assert codes(form, {"h": empty}) == [("/data/h", "required")], empty


def test_rich_text_max_length_counts_the_text() -> None:
    form = make_form(field("h", "richtext", max_length=5, label="Notes"))
    assert ok(form, {"h": "<b><i>abcde</i></b>"}) == {"h": "<b><i>abcde</i></b>"}
    errors = errors_of(form, {"h": "<b>abcdef</b>"})
    assert [(e.path, e.code) for e in errors] == [("/data/h", "max_length")]
    assert errors[0].message == "Notes must be at most 5 characters long (it has 6)"
    # the default: 10 000 characters of text
    default = make_form(field("h", "richtext"))
    assert ok(default, {"h": "x" * 10_000})
    assert codes(default, {"h": "x" * 10_001}) == [("/data/h", "max_length")]


def test_rich_text_default_must_be_sanitised_already() -> None:
    problems = problems_of(form_dict(field("h", "richtext", default="<b onclick='x()'>hi</b>")))
    assert [(p["pointer"], p["code"]) for p in problems] == [
        ("/fields/0/default", "unsafe_default")
    ]
    assert "'<b>hi</b>'" in problems[0]["message"]
    assert problems_of(form_dict(field("h", "richtext", default="<b>hi</b>"))) == []


def test_rich_text_type_errors() -> None:
    form = make_form(field("h", "richtext"))
    assert codes(form, {"h": 5}) == [("/data/h", "type")]
    assert codes(form, {"h": ["<b>x</b>"]}) == [("/data/h", "type")]


def test_plain_text() -> None:
    assert plain_text("<p>Hi <b>there</b></p><ul><li>one</li><li>two</li></ul>") == (
        "Hi there\none\ntwo"
    )
    assert plain_text("<p>a &amp; b&nbsp;c</p><p><br></p><p>d</p>") == "a & b c\nd"
    assert plain_text("a<br>b") == "a\nb"


def test_rich_text_schema_and_kind() -> None:
    form = make_form(field("h", "richtext"))
    schema = compile_schema(form)["properties"]["h"]
    assert schema["type"] == "string" and schema["contentMediaType"] == "text/html"
    assert field_types(form) == {"h": "textarea"}  # searched and filtered as text


# -- the fast check and jsonschema agree on the new types --------------------------------------

VALUES: list[Any] = [None, 0, 1, 3, 5, 7, 11, 2.5, 3.0, "3", True, "", "<b>x</b>", PNG,
                     {**PNG, "content_type": "image/jpeg"}, {"id": "x"}, [PNG], []]  # fmt: skip


@pytest.mark.parametrize("kind", ["rating", "signature", "richtext"])
def test_fast_check_never_looser_than_jsonschema(kind: str) -> None:
    extra: dict[str, Any] = {"max": 7} if kind == "rating" else {}
    schema = compile_schema(make_form(field("v", kind, **extra)))["properties"]["v"]
    check = compile_check(schema)
    validator = Draft202012Validator(schema)
    for value in VALUES:
        if check(value):
            assert validator.is_valid(value), value


# -- FHIR ---------------------------------------------------------------------------------------


def test_fhir_items() -> None:
    questionnaire, lost = export_questionnaire(
        form_dict(
            field("r", "rating", max=7, required=True),
            field("s", "signature"),
            field("h", "richtext", max_length=200),
        )
    )
    items = {item["linkId"]: item for item in questionnaire["item"]}
    assert items["r"]["type"] == "integer" and items["r"]["required"] is True
    extensions = {e["url"].rsplit("/", 1)[-1]: e for e in items["r"]["extension"]}
    assert extensions["minValue"]["valueInteger"] == 1
    assert extensions["maxValue"]["valueInteger"] == 7
    assert extensions["questionnaire-itemControl"]["valueCodeableConcept"]["coding"][0]["code"] == (
        "slider"
    )
    assert items["s"]["type"] == "attachment" and "repeats" not in items["s"]
    assert items["h"]["type"] == "text" and items["h"]["maxLength"] == 200
    assert [(u.link_id, u.path) for u in lost] == [("h", "/fields/2/type")]


def test_fhir_response_answers() -> None:
    form = form_dict(field("r", "rating"), field("s", "signature"), field("h", "richtext"))
    questionnaire, _ = export_questionnaire(form)
    Questionnaire.model_validate(questionnaire)
    data = {"r": 4, "s": PNG, "h": "<p>Hi <b>there</b></p><ul><li>one</li></ul>"}
    response = record_to_response(questionnaire, form, data, canonical="urn:q")
    QuestionnaireResponse.model_validate(response)
    answers = {item["linkId"]: item["answer"] for item in response["item"]}
    assert answers["r"] == [{"valueInteger": 4}]
    assert answers["s"][0]["valueAttachment"]["contentType"] == "image/png"
    assert answers["h"] == [{"valueString": "Hi there\none"}]


def test_definitions_refuse_unknown_attributes() -> None:
    with pytest.raises(ValidationError):
        make_form(field("r", "rating", min=2))
    with pytest.raises(ValidationError):
        make_form(field("h", "richtext", pattern="x"))
