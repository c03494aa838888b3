"""FHIR R4 Questionnaire ↔ form: the HL7 examples, a PHQ-9, every item type and operator.

The conformance questionnaires (tests/conformance/fhir, copied byte for byte) import as valid
forms; their enableWhen behaviour is checked by evaluating the forms' visible_if on answers
(and by the form engine's own write, which drops what is hidden); import → export → import
gives the same form; what is exported validates with fhir.resources' R4B models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from formloom.engines.fhir import (
    QuestionnaireInvalid,
    export_questionnaire,
    import_questionnaire,
    record_to_response,
    response_to_data,
    to_fhirpath,
    to_jsonlogic,
)
from formloom.engines.fhir.questionnaire import answerables_of
from formloom.engines.forms import FormSpec, prepare
from formloom.engines.logic import evaluate

HERE = Path(__file__).parent
CONFORMANCE = HERE.parent.parent / "conformance" / "fhir"
EXAMPLES = sorted(CONFORMANCE.glob("*.json"))
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"


def load(name: str) -> dict[str, Any]:
    path = CONFORMANCE / name if (CONFORMANCE / name).exists() else HERE / name
    return dict(json.loads(path.read_text(encoding="utf-8")))


def field(form: dict[str, Any], key: str) -> dict[str, Any]:
    return next(f for f in form["fields"] if f["key"] == key)


def shown(form: dict[str, Any], key: str, answers: dict[str, Any]) -> bool:
    rule = field(form, key).get("visible_if")
    return rule is None or bool(evaluate(rule, answers))


def test_the_conformance_folder_has_the_examples() -> None:
    assert {p.name for p in EXAMPLES} == {
        "MultipleEnableWhen.json",
        "questionnaire-example-3141.json",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_imports_exports_and_reimports_the_same(path: Path) -> None:
    imported = import_questionnaire(json.loads(path.read_text(encoding="utf-8")))
    FormSpec.model_validate(imported.form)
    exported, unmapped = export_questionnaire(imported.form)
    assert unmapped == []
    Questionnaire.model_validate(exported)
    again = import_questionnaire(exported)
    assert again.form == imported.form
    assert [u.as_json() for u in again.unmapped] == [u.as_json() for u in imported.unmapped]


def test_multiple_enable_when_any_and_all() -> None:
    form = import_questionnaire(load("MultipleEnableWhen.json")).form
    sky, grass, dozen = (
        "ae4bde24_8709_436d_8961_15d04d649d7c",
        ("c3fd1ee9_1f0d_4136_887c_f22589bbdc68"),
        "q_7384620c_276b_46da_cfb0_da857efced0d",
    )
    anyone = "q_9b128844_d321_4748_8666_22c74ff20829"
    everyone = "eadbd01a_21a1_4586_a231_ee5e984aecda"
    assert field(form, sky)["type"] == "boolean"
    assert [o["value"] for o in field(form, grass)["options"]] == [
        "blue", "red", "orange", "green"
    ]  # fmt: skip
    assert field(form, dozen)["type"] == "integer"
    cases = [
        ({}, False, False),
        ({sky: False, grass: "blue", dozen: 11}, False, False),
        ({sky: True}, True, False),
        ({grass: "green"}, True, False),
        ({dozen: 12}, True, False),
        ({sky: True, grass: "green", dozen: 11}, True, False),
        ({sky: True, grass: "green", dozen: 12}, True, True),
    ]
    for answers, any_shown, all_shown in cases:
        assert shown(form, anyone, answers) is any_shown, answers
        assert shown(form, everyone, answers) is all_shown, answers


def test_example_3141_nested_groups_and_coded_enable_when() -> None:
    imported = import_questionnaire(load("questionnaire-example-3141.json"))
    form = imported.form
    spec = FormSpec.model_validate(form)
    comorbidity = field(form, "q_1_1")
    assert comorbidity["type"] == "select"
    assert comorbidity["fhir"]["prefix"] == "1"
    assert comorbidity["fhir"]["code"] == [
        {"system": "http://example.org/system/code/questions", "code": "COMORB"}
    ]
    assert comorbidity["options"][0]["code"]["system"].endswith("v2-0136")
    angina = field(form, "q_1_1_1_1_1")["fhir"]["code"]
    assert angina[1] == {
        "system": "http://snomed.info/sct",
        "code": "194828000",
        "display": "Angina (disorder)",
    }
    # the cardial group appears only when comorbidity is answered "Y" (a coding)
    assert shown(form, "q_1_1_1", {"q_1_1": "Y"})
    assert not shown(form, "q_1_1_1", {"q_1_1": "N"})
    assert not shown(form, "q_1_1_1", {})
    # and its questions are hidden with it: the form engine drops them
    sent = {"q_1_1": "N", "q_1_1_1_1": "Y", "q_1_1_1_1_1": "Y", "q_2_1_2": "T2"}
    assert prepare(spec, sent, now=NOW) == {"q_1_1": "N", "q_2_1_2": "T2"}
    sent["q_1_1"] = "Y"
    assert prepare(spec, sent, now=NOW) == sent
    # the choice without options is a free-text question, and the list says so
    assert field(form, "q_2_1_2")["type"] == "text"
    assert [u.link_id for u in imported.unmapped] == ["2.1.2"]


def test_phq9_scores_and_calculated_total() -> None:
    imported = import_questionnaire(load("phq9.json"))
    assert imported.unmapped == []
    form = imported.form
    spec = FormSpec.model_validate(form)
    first = field(form, "phq9_1")
    assert [(o["value"], o["score"]) for o in first["options"]] == [
        ("LA6568-5", 0), ("LA6569-3", 1), ("LA6570-1", 2), ("LA6571-9", 3)
    ]  # fmt: skip
    assert first["required"] is True
    assert field(form, "total")["type"] == "computed"
    answers = {f"phq9_{i}": "LA6571-9" if i <= 4 else "LA6569-3" for i in range(1, 10)}
    stored = prepare(spec, {**answers, "difficulty": "LA6573-5"}, now=NOW)
    assert stored["total"] == 4 * 3 + 5 * 1
    assert stored["difficulty"] == "LA6573-5"
    nothing = {f"phq9_{i}": "LA6568-5" for i in range(1, 10)}
    stored = prepare(spec, {**nothing, "difficulty": "LA6573-5"}, now=NOW)
    assert stored["total"] == 0
    assert "difficulty" not in stored  # enableWhenExpression: shown when total > 0
    exported, unmapped = export_questionnaire(form)
    assert unmapped == []
    Questionnaire.model_validate(exported)
    total = next(i for i in exported["item"] if i["linkId"] == "total")
    assert total["extension"][0]["url"] == SDC + "sdc-questionnaire-calculatedExpression"
    option = exported["item"][1]["item"][0]["answerOption"][3]
    assert option["extension"][0]["valueDecimal"] == 3
    assert import_questionnaire(exported).form == form


def test_phq9_record_as_questionnaire_response_and_back() -> None:
    form = import_questionnaire(load("phq9.json")).form
    spec = FormSpec.model_validate(form)
    answers = {f"phq9_{i}": "LA6570-1" for i in range(1, 10)}
    data = prepare(spec, {**answers, "difficulty": "LA6575-0"}, now=NOW)
    exported, _ = export_questionnaire(form)
    response = record_to_response(
        exported, form, data, canonical="http://example.org/Questionnaire/phq-9",
        record_id="r1", authored="2026-01-05T09:00:00Z",
    )  # fmt: skip
    QuestionnaireResponse.model_validate(response)
    group = response["item"][0]
    assert group["linkId"] == "questions"
    assert group["item"][0]["answer"] == [
        {"valueCoding": {"system": "http://loinc.org", "code": "LA6570-1",
                         "display": "More than half the days"}}
    ]  # fmt: skip
    total = next(i for i in response["item"] if i["linkId"] == "total")
    assert total["answer"] == [{"valueInteger": 18}]
    back = response_to_data(response, form)
    assert back.problems == []
    assert back.data == {**answers, "difficulty": "LA6575-0"}  # the total is recomputed
    assert prepare(spec, back.data, now=NOW) == data


def sink() -> dict[str, Any]:
    """Every common item type, repeats, a repeating group and every enableWhen operator."""
    q: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "name": "kitchen_sink",
        "status": "draft",
        "contained": [
            {
                "resourceType": "ValueSet",
                "id": "colours",
                "status": "active",
                "compose": {
                    "include": [
                        {
                            "system": "urn:colours",
                            "concept": [
                                {"code": "r", "display": "Red"},
                                {"code": "g", "display": "Green"},
                            ],
                        }
                    ]
                },
            }
        ],
        "item": [
            {"linkId": "b", "type": "boolean", "text": "B", "required": True},
            {"linkId": "d", "type": "decimal", "text": "D", "initial": [{"valueDecimal": 1.5}]},
            {"linkId": "i", "type": "integer", "text": "I"},
            {"linkId": "ro", "type": "string", "text": "Read only", "readOnly": True},
            {"linkId": "date", "type": "date", "text": "Date"},
            {"linkId": "dt", "type": "dateTime", "text": "When"},
            {"linkId": "t", "type": "time", "text": "Time"},
            {"linkId": "s", "type": "string", "text": "S", "maxLength": 20},
            {"linkId": "txt", "type": "text", "text": "Long"},
            {"linkId": "u", "type": "url", "text": "U"},
            {"linkId": "c", "type": "choice", "text": "Colour", "answerValueSet": "#colours"},
            {
                "linkId": "m",
                "type": "choice",
                "repeats": True,
                "text": "Many",
                "answerOption": [
                    {"valueString": "x"},
                    {"valueString": "y", "initialSelected": True},
                ],
            },
            {
                "linkId": "o",
                "type": "open-choice",
                "text": "Open",
                "answerOption": [{"valueCoding": {"code": "a", "display": "A"}}],
            },
            {"linkId": "att", "type": "attachment", "text": "File"},
            {"linkId": "atts", "type": "attachment", "text": "Files", "repeats": True},
            {"linkId": "ref", "type": "reference", "text": "Ref"},
            {
                "linkId": "qty",
                "type": "quantity",
                "text": "Weight",
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
                        "valueCoding": {
                            "system": "http://unitsofmeasure.org",
                            "code": "kg",
                            "display": "kg",
                        },
                    }
                ],
            },
            {
                "linkId": "e1",
                "type": "string",
                "text": "exists",
                "enableWhen": [{"question": "s", "operator": "exists", "answerBoolean": True}],
            },
            {
                "linkId": "e2",
                "type": "string",
                "text": "not exists",
                "enableWhen": [{"question": "s", "operator": "exists", "answerBoolean": False}],
            },
            {
                "linkId": "e3",
                "type": "string",
                "text": "!=",
                "enableWhen": [
                    {
                        "question": "c",
                        "operator": "!=",
                        "answerCoding": {"system": "urn:colours", "code": "r"},
                    }
                ],
            },
            {
                "linkId": "e4",
                "type": "string",
                "text": ">",
                "enableWhen": [{"question": "d", "operator": ">", "answerDecimal": 2}],
            },
            {
                "linkId": "e5",
                "type": "string",
                "text": "<",
                "enableWhen": [{"question": "date", "operator": "<", "answerDate": "2020-01-01"}],
            },
            {
                "linkId": "e6",
                "type": "string",
                "text": ">=",
                "enableWhen": [{"question": "i", "operator": ">=", "answerInteger": 3}],
            },
            {
                "linkId": "e7",
                "type": "string",
                "text": "<=",
                "enableWhen": [{"question": "i", "operator": "<=", "answerInteger": 3}],
            },
            {
                "linkId": "e8",
                "type": "string",
                "text": "in many",
                "enableWhen": [{"question": "m", "operator": "=", "answerString": "x"}],
            },
            {
                "linkId": "e9",
                "type": "string",
                "text": "not in many",
                "enableWhen": [{"question": "m", "operator": "!=", "answerString": "x"}],
            },
            {
                "linkId": "meds",
                "type": "group",
                "repeats": True,
                "text": "Medicines",
                "item": [
                    {"linkId": "meds.name", "type": "string", "text": "Name", "required": True},
                    {
                        "linkId": "meds.dose",
                        "type": "decimal",
                        "text": "Dose",
                        "enableWhen": [
                            {"question": "meds.name", "operator": "exists", "answerBoolean": True}
                        ],
                    },
                ],
            },
            {
                "linkId": "grp",
                "type": "group",
                "text": "Group",
                "enableWhen": [{"question": "b", "operator": "=", "answerBoolean": True}],
                "item": [
                    {
                        "linkId": "grp.inner",
                        "type": "group",
                        "text": "Inner",
                        "enableWhen": [{"question": "i", "operator": "=", "answerInteger": 1}],
                        "item": [{"linkId": "grp.inner.q", "type": "string"}],
                    },
                    {"linkId": "grp.after", "type": "string", "text": "After inner"},
                    {
                        "linkId": "grp.note",
                        "type": "display",
                        "text": "A note",
                        "enableWhen": [{"question": "s", "operator": "=", "answerString": "n"}],
                    },
                    {"linkId": "grp.last", "type": "string", "text": "Last"},
                ],
            },
            {"linkId": "top", "type": "string", "text": "Top again"},
            {
                "linkId": "odd",
                "type": "string",
                "text": "Odd",
                "hidden": True,
                "extension": [{"url": "http://example.org/unknown", "valueString": "?"}],
            },
            {"linkId": "weird", "type": "question", "text": "Unknown type"},
        ],
    }
    return q


def test_every_item_type_and_operator() -> None:
    imported = import_questionnaire(sink())
    form = imported.form
    spec = FormSpec.model_validate(form)
    types = {f["key"]: f["type"] for f in form["fields"]}
    assert {k: types[k] for k in ("b", "d", "i", "date", "dt", "t", "s", "txt", "u", "c", "m",
                                  "o", "att", "ref", "qty", "meds")} == {
        "b": "boolean", "d": "number", "i": "integer", "date": "date", "dt": "datetime",
        "t": "time", "s": "text", "txt": "textarea", "u": "url", "c": "select",
        "m": "multiselect", "o": "select", "att": "file", "ref": "text", "qty": "number",
        "meds": "table",
    }  # fmt: skip
    assert field(form, "b")["required"] and field(form, "ro")["read_only"]
    assert field(form, "s")["max_length"] == 20
    assert field(form, "d")["default"] == 1.5
    assert field(form, "m")["default"] == ["y"]
    assert [o["label"] for o in field(form, "c")["options"]] == ["Red", "Green"]
    assert field(form, "qty")["fhir"]["unit"]["code"] == "kg"
    assert "weird" not in types
    assert field(form, "atts")["multiple"] is True and "multiple" not in field(form, "att")
    reasons = {(u.link_id, u.reason.split(" ")[0]) for u in imported.unmapped}
    assert ("o", "open-choice:") in reasons
    assert ("odd", "hidden") in reasons
    assert ("odd", "extension") in reasons
    assert ("weird", "item") in reasons
    cases: list[tuple[str, dict[str, Any], bool]] = [
        ("e1", {"s": "x"}, True), ("e1", {}, False),
        ("e2", {}, True), ("e2", {"s": "x"}, False),
        ("e3", {"c": "g"}, True), ("e3", {"c": "r"}, False),
        ("e4", {"d": 2.5}, True), ("e4", {"d": 2}, False), ("e4", {}, False),
        ("e5", {"date": "2019-05-01"}, True), ("e5", {"date": "2021-01-01"}, False),
        ("e5", {}, False),
        ("e6", {"i": 3}, True), ("e6", {"i": 2}, False),
        ("e7", {"i": 3}, True), ("e7", {"i": 4}, False), ("e7", {}, False),
        ("e8", {"m": ["y", "x"]}, True), ("e8", {"m": ["y"]}, False), ("e8", {}, False),
        ("e9", {"m": ["y"]}, True), ("e9", {"m": ["x"]}, False),
        ("grp", {"b": True}, True), ("grp", {"b": False}, False),
        ("grp_inner", {"b": True, "i": 1}, True), ("grp_inner", {"b": False, "i": 1}, False),
        ("grp_inner", {"b": True, "i": 2}, False),
        ("grp_note", {"b": True, "s": "n"}, True), ("grp_note", {"b": True}, False),
    ]  # fmt: skip
    for key, answers, expected in cases:
        assert shown(form, key, answers) is expected, (key, answers)
    # after the nested group and the note, the outer group resumes (its condition only)
    data = prepare(spec, {"b": True, "i": 2, "s": "z", "grp_inner_q": "gone",
                          "grp_after": "kept", "grp_last": "kept"}, now=NOW)  # fmt: skip
    assert "grp_inner_q" not in data and data["grp_after"] == data["grp_last"] == "kept"
    data = prepare(spec, {"b": False, "grp_after": "gone", "top": "kept"}, now=NOW)
    assert "grp_after" not in data and data["top"] == "kept"
    # a repeating group is a table; a column's enableWhen reads its own row
    meds = field(form, "meds")
    assert [c["key"] for c in meds["fields"]] == ["meds_name", "meds_dose"]
    data = prepare(spec, {"b": False, "meds": [{"meds_name": "x", "meds_dose": 2}]}, now=NOW)
    assert data["meds"] == [{"meds_name": "x", "meds_dose": 2}]
    exported, unmapped = export_questionnaire(form)
    assert unmapped == []
    Questionnaire.model_validate(exported)
    assert import_questionnaire(exported).form == form


def test_sink_record_round_trip_through_a_response() -> None:
    form = import_questionnaire(sink()).form
    spec = FormSpec.model_validate(form)
    data = prepare(
        spec,
        {"b": True, "d": 3, "date": "2019-01-02", "dt": "2024-05-01T09:30:00+08:00",
         "t": "08:15:00", "s": "n", "txt": "long\ntext", "u": "https://example.org", "c": "g",
         "m": ["x", "y"], "o": "a", "ref": "Patient/1", "qty": 70.5, "e1": "yes",
         "meds": [{"meds_name": "aspirin", "meds_dose": 100}, {"meds_name": "b"}],
         "grp_after": "after", "grp_last": "last", "top": "top"},
        now=NOW,
    )  # fmt: skip
    exported, _ = export_questionnaire(form)
    response = record_to_response(exported, form, data, canonical="urn:q")
    QuestionnaireResponse.model_validate(response)
    back = response_to_data(response, form)
    assert back.problems == []
    assert prepare(spec, back.data, now=NOW) == data
    assert back.sources["grp_after"] == "QuestionnaireResponse.item.where(linkId='grp.after')"


def test_response_problems_name_the_link_id() -> None:
    form = import_questionnaire(sink()).form
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [
            {"linkId": "nope", "answer": [{"valueString": "x"}]},
            {"linkId": "s", "answer": [{"valueString": "a"}, {"valueString": "b"}]},
        ],
    }
    problems = response_to_data(response, form).problems
    assert [(p.link_id, p.path) for p in problems] == [
        ("nope", "QuestionnaireResponse.item.where(linkId='nope')"),
        ("s", "QuestionnaireResponse.item.where(linkId='s')"),
    ]


def test_not_a_questionnaire() -> None:
    with pytest.raises(QuestionnaireInvalid):
        import_questionnaire({"resourceType": "Patient"})
    with pytest.raises(QuestionnaireInvalid) as caught:
        import_questionnaire({"resourceType": "Questionnaire", "item": [{"type": "string"}]})
    assert caught.value.pointer == "/item/0"


def test_fhirpath_subset() -> None:
    form = import_questionnaire(load("phq9.json")).form
    items = {a.link_id: a for a in answerables_of(form["fields"]).values()}
    whole = to_jsonlogic("%resource.repeat(item).answer.value.weight().sum()", items)
    answers = {f"phq9_{i}": "LA6570-1" for i in range(1, 10)}
    assert evaluate(whole, answers) == 18
    rule = to_jsonlogic(
        "iif(%resource.repeat(item).where(linkId='phq9-1').answer.value.ordinal() >= 2, 1, 0)"
        " + %resource.repeat(item).where(linkId='phq9-2').answer.exists().not().not()",
        items,
    )
    assert evaluate(rule, {"phq9_1": "LA6571-9", "phq9_2": "LA6568-5"}) == 2
    with pytest.raises(ValueError):
        to_jsonlogic("%resource.item.where(linkId='phq9-1').answer.value.first()", items)
    with pytest.raises(ValueError):
        to_jsonlogic("today() - 1", items)
    # a hand-written rule goes out as FHIRPath that reads back the same
    by_key = answerables_of(form["fields"])
    written = {"and": [{"==": [{"var": "difficulty"}, "LA6573-5"]},
                       {">": [{"+": [{"var": "total"}, 1]}, 3]}]}  # fmt: skip
    text = to_fhirpath(written, by_key)
    assert text is not None
    assert to_jsonlogic(text, items) == written
    assert to_fhirpath({"today": []}, by_key) is None


def test_malformed_parts_read_as_absent_never_a_crash() -> None:
    q = {
        "resourceType": "Questionnaire",
        "name": "odd",
        "contained": [1, {"resourceType": "ValueSet", "id": "v", "compose": {"include": 3}}],
        "item": [
            {"linkId": "a", "type": "choice", "answerOption": 5, "answerValueSet": "#v"},
            {"linkId": "b", "type": "string", "enableWhen": "a", "code": "x", "initial": 2.5},
            {"linkId": "c", "type": "group", "item": [{"linkId": "c1", "type": "integer",
                                                        "extension": [None, "x"]}]},
        ],
    }  # fmt: skip
    imported = import_questionnaire(q)
    FormSpec.model_validate(imported.form)
    assert [f["key"] for f in imported.form["fields"]] == ["a", "b", "c", "c1"]
    reasons = [u.as_json() for u in imported.unmapped]
    assert {"link_id": "a", "reason": "answerOption is not a list and is left out"} in reasons
    assert {"link_id": "b", "reason": "enableWhen is not a list and is left out"} in reasons
    response = response_to_data(
        {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "b", "answer": [[]]}]},
        imported.form,
    )
    assert [p.link_id for p in response.problems] == ["b"]


def _zh(text: str) -> dict[str, Any]:
    return {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/translation",
                "extension": [
                    {"url": "lang", "valueCode": "zh-CN"},
                    {"url": "content", "valueString": text},
                ],
            }
        ]
    }


def test_translations_become_labels_in_both_languages() -> None:
    q = load("phq9.json")
    q["language"] = "en-US"
    q["_title"] = _zh("患者健康问卷（PHQ-9）")
    group = q["item"][1]
    group["_text"] = _zh("问题")
    first = group["item"][0]
    first["_text"] = _zh("做事时提不起劲或没有兴趣")
    first["answerOption"][0]["valueCoding"]["_display"] = _zh("完全不会")
    form = import_questionnaire(q).form
    FormSpec.model_validate(form)
    assert form["label"] == {"en": "Patient Health Questionnaire (PHQ-9)",
                             "zh-CN": "患者健康问卷（PHQ-9）"}  # fmt: skip
    assert field(form, "questions")["label"]["zh-CN"] == "问题"
    assert field(form, "phq9_1")["label"] == {
        "en": "Little interest or pleasure in doing things",
        "zh-CN": "做事时提不起劲或没有兴趣",
    }
    assert field(form, "phq9_1")["options"][0]["label"] == {"en": "Not at all", "zh-CN": "完全不会"}
    assert field(form, "phq9_2")["label"] == "Feeling down, depressed, or hopeless"
    exported, _ = export_questionnaire(form)
    Questionnaire.model_validate(exported)
    assert exported["item"][1]["item"][0]["text"] == "Little interest or pleasure in doing things"
    assert import_questionnaire(exported).form == form
    # a questionnaire written in Chinese with an English translation: the same labels
    q["language"] = "zh-CN"
    first["text"], first["_text"] = (
        "做事时提不起劲或没有兴趣",
        {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/translation",
                    "extension": [
                        {"url": "lang", "valueCode": "en"},
                        {
                            "url": "content",
                            "valueString": "Little interest or pleasure in doing things",
                        },
                    ],
                }
            ]
        },
    )
    assert field(import_questionnaire(q).form, "phq9_1")["label"] == field(form, "phq9_1")["label"]


def test_every_form_of_the_clinic_exports_as_a_valid_questionnaire() -> None:
    from formloom import builtin_apps

    document = json.loads(builtin_apps.path("clinic_crm").read_text(encoding="utf-8"))
    for form in document["forms"]:
        exported, unmapped = export_questionnaire(form)
        Questionnaire.model_validate(exported)
        # what has no FHIR form (a date formula, a condition on today) is listed by linkId
        assert all(u.link_id for u in unmapped), form["key"]
        again = import_questionnaire(exported)
        FormSpec.model_validate(again.form)
        assert import_questionnaire(export_questionnaire(again.form)[0]).form == again.form
