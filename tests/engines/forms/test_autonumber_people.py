"""The auto-number, user and department field types: their definitions (checks located by
``loc``), their JSON Schema, and what ``prepare`` does with their values."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from formloom.engines.fhir.questionnaire import export_questionnaire
from formloom.engines.forms import compile_schema, field_types
from formloom.engines.forms.fields import AutonumberField
from tests.engines.forms.factory import codes, errors_of, field, make_form, ok

NUMBER = field("no", "autonumber", format="CP-{YYYY}-{0000}", reset="yearly")


def refused(**attrs: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        make_form(field("no", "autonumber", **attrs))
    return [(error["loc"][-1:], error["type"]) for error in caught.value.errors()]


def test_an_autonumber_renders_its_tokens_on_the_local_date() -> None:
    spec = make_form(NUMBER)
    number = spec.fields[0]
    assert isinstance(number, AutonumberField)
    at = datetime(2026, 3, 7, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert number.render(1, at) == "CP-2026-0001"
    assert number.render(12345, at) == "CP-2026-12345"  # more digits than zeros: kept
    assert number.period(at) == "2026"
    daily = AutonumberField(key="n", type="autonumber", format="{YY}{MM}{DD}-{000}", reset="daily")
    assert (daily.render(7, at), daily.period(at)) == ("260307-007", "2026-03-07")


@pytest.mark.parametrize(
    ("attrs", "where", "kind"),
    [
        ({"format": "CP"}, ("format",), "autonumber_counter"),
        ({"format": "{000}-{00}"}, ("format",), "autonumber_counter"),
        ({"format": "{Q}-{000}"}, ("format",), "autonumber_token"),
        ({"format": "{YYYY}-{000}", "reset": "monthly"}, ("reset",), "autonumber_reset"),
        ({"format": "{000}", "reset": "yearly"}, ("reset",), "autonumber_reset"),
        ({"read_only": False}, ("read_only",), "autonumber_read_only"),
        ({"default": "X"}, ("default",), "autonumber_default"),
        ({"required": True}, ("required",), "autonumber_required"),
    ],
)
def test_a_bad_autonumber_is_refused_where_it_is_wrong(
    attrs: dict[str, Any], where: tuple[str], kind: str
) -> None:
    assert (where, kind) in refused(**attrs)


def test_clients_never_write_an_autonumber() -> None:
    spec = make_form(NUMBER, field("subject"))
    assert codes(spec, {"no": "CP-2026-0001"}) == [("/data/no", "read_only")]
    [error] = errors_of(spec, {"no": "CP-2026-0001"})
    assert error.message == "No is numbered by the server and cannot be written"
    # on update the stored value may be sent back; another value may not
    stored = {"no": "CP-2026-0001", "subject": "a"}
    assert ok(spec, {"no": "CP-2026-0001", "subject": "b"}, existing=stored)["no"] == "CP-2026-0001"
    assert codes(spec, {"no": "CP-2026-0002"}, existing=stored) == [("/data/no", "read_only")]
    schema = compile_schema(spec)["properties"]["no"]
    assert schema["readOnly"] is True and schema["type"] == "string"


def test_user_fields_hold_ids_one_or_many() -> None:
    spec = make_form(
        field("owner", "user", default_current=True),
        field("team", "user", multiple=True),
        field("ward", "department"),
    )
    assert ok(spec, {"owner": "u1", "team": ["u1", "u2"], "ward": " ICU "}) == {
        "owner": "u1",
        "team": ["u1", "u2"],
        "ward": "ICU",
    }
    assert codes(spec, {"owner": 5}) == [("/data/owner", "type")]
    assert codes(spec, {"owner": "not an id!"}) == [("/data/owner", "type")]
    assert codes(spec, {"team": ["u1", "u1"]}) == [("/data/team", "duplicate")]
    assert codes(spec, {"team": "u1"}) == [("/data/team", "type")]
    # filters read one person as text, several as a list of values, a department as text
    assert field_types(spec) == {"owner": "user", "team": "multiselect", "ward": "department"}
    properties = compile_schema(spec)["properties"]
    assert properties["team"]["items"]["x-kind"] == "user"
    assert properties["ward"]["x-kind"] == "department"


def test_several_people_cannot_be_unique_or_indexed() -> None:
    with pytest.raises(ValidationError) as caught:
        make_form(field("team", "user", multiple=True, unique=True))
    assert caught.value.errors()[0]["type"] == "not_supported"


def test_fhir_export_gives_string_items_and_says_what_it_leaves_out() -> None:
    form = make_form(
        NUMBER,
        field("owner", "user"),
        field("team", "user", multiple=True),
        field("ward", "department"),
    ).model_dump(mode="json", exclude_none=True)
    questionnaire, unmapped = export_questionnaire(form)
    items = {item["linkId"]: item for item in questionnaire["item"]}
    assert {key: items[key]["type"] for key in items} == {
        "no": "string", "owner": "string", "team": "string", "ward": "string",
    }  # fmt: skip
    assert items["no"]["readOnly"] is True and items["team"]["repeats"] is True
    assert {entry.path for entry in unmapped} >= {
        "/fields/0/type", "/fields/1/type", "/fields/3/type",
    }  # fmt: skip
