"""Record data ↔ FHIR R4 QuestionnaireResponse (docs/fhir.md).

:func:`record_to_response` answers the form's Questionnaire (from
:func:`~formloom.engines.fhir.questionnaire.export_questionnaire`) with a record's data: the
items nest as the questionnaire's do, a table's rows are repeated groups, display items and
unanswered questions are left out. The caller removes what the reader may not see first:
a field absent from ``data`` never appears.

:func:`response_to_data` reads a QuestionnaireResponse back into record data and says where
each field came from (``sources``: key -> a location naming the item's linkId), so the
platform's validation errors can point at the item. Computed fields' answers are skipped
(they are recomputed on write); an unknown linkId or a second answer to a one-answer
question is an :class:`ItemProblem`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from formloom.engines.fhir.questionnaire import _all_fields, _link, _obj, _option_value, _seq
from formloom.engines.forms.richtext import plain_text


@dataclass(frozen=True)
class ItemProblem:
    """An answer that cannot become record data: where (naming the linkId) and why."""

    path: str
    link_id: str
    message: str


@dataclass
class ResponseData:
    data: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[ItemProblem] = field(default_factory=list)


def item_path(link_id: str) -> str:
    """Where an item is in a QuestionnaireResponse, by linkId (a FHIRPath location)."""
    escaped = link_id.replace("'", "\\'")
    return f"QuestionnaireResponse.item.where(linkId='{escaped}')"


def _answers(made: Mapping[str, Any], value: Any) -> list[dict[str, Any]]:
    if value is None or value == "" or value == []:
        return []
    # stars answer as an integer, a signature as an image, rich text as its words
    kind = {"rating": "integer", "signature": "image"}.get(made["type"], made["type"])
    if kind == "richtext" and isinstance(value, str):
        value = plain_text(value)
    values = (
        value
        if isinstance(value, list) and kind in ("multiselect", "file", "image", "user")
        else [value]
    )
    fhir_type = _obj(made.get("fhir")).get("type")
    result_type = made.get("result_type", "text")
    found = []
    for one in values:
        if kind in ("select", "multiselect"):
            option = next((o for o in _seq(made.get("options")) if o["value"] == one), None)
            name, answer = _option_value(option) if option else ("valueString", str(one))
            found.append({name: answer})
        elif kind in ("file", "image") and isinstance(one, dict):
            attachment = {"contentType": one.get("content_type"), "title": one.get("name"),
                          "size": one.get("size"), "id": one.get("id")}  # fmt: skip
            found.append({"valueAttachment": {k: v for k, v in attachment.items() if v}})
        elif fhir_type == "reference" or kind == "relation":
            found.append({"valueReference": {"reference": str(one)}})
        elif fhir_type == "quantity":
            quantity: dict[str, Any] = {"value": one}
            unit = _obj(made.get("fhir")).get("unit")
            if unit:
                quantity["unit"] = unit.get("display") or unit.get("code")
                quantity["system"] = unit.get("system")
                quantity["code"] = unit.get("code")
            found.append({"valueQuantity": {k: v for k, v in quantity.items() if v is not None}})
        else:
            effective = result_type if kind == "computed" else kind
            if effective == "boolean":
                found.append({"valueBoolean": bool(one)})
            elif effective == "integer":
                found.append({"valueInteger": int(one)})
            elif effective == "number":
                found.append({"valueDecimal": one})
            elif effective == "date":
                found.append({"valueDate": str(one)})
            elif effective == "datetime":
                found.append({"valueDateTime": str(one)})
            elif effective == "time":
                text = str(one)
                found.append({"valueTime": text if text.count(":") == 2 else text + ":00"})
            elif effective == "url":
                found.append({"valueUri": str(one)})
            else:
                found.append({"valueString": str(one)})
    return found


def record_to_response(
    questionnaire: Mapping[str, Any],
    form: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    canonical: str,
    record_id: str | None = None,
    authored: str | None = None,
) -> dict[str, Any]:
    """A completed QuestionnaireResponse with ``data``'s answers."""
    by_link = {_link(f): f for f in _all_fields(list(_seq(form.get("fields"))))}
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": canonical,
    }
    if record_id is not None:
        response["id"] = record_id
    if authored is not None:
        response["authored"] = authored
    response["item"] = _items(_seq(questionnaire.get("item")), by_link, data)
    return response


def _items(
    items: Sequence[Mapping[str, Any]], by_link: Mapping[str, Mapping[str, Any]], data: Any
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in items:
        link = item["linkId"]
        made = by_link.get(link)
        base: dict[str, Any] = {"linkId": link}
        if item.get("text"):
            base["text"] = item["text"]
        if item["type"] == "display":
            continue
        if item["type"] == "group":
            if item.get("repeats") and made is not None:
                rows = data.get(made["key"]) if isinstance(data, Mapping) else None
                for row in rows or []:
                    children = _items(_seq(item.get("item")), by_link, row)
                    if children:
                        found.append({**base, "item": children})
                continue
            children = _items(_seq(item.get("item")), by_link, data)
            if children:
                found.append({**base, "item": children})
            continue
        if made is None or not isinstance(data, Mapping):
            continue
        answers = _answers(made, data.get(made["key"]))
        children = _items(_seq(item.get("item")), by_link, data)
        if answers:
            if children:
                answers[0]["item"] = children
            found.append({**base, "answer": answers})
        elif children:
            found.append({**base, "item": children})
    return found


def response_to_data(response: Any, form: Mapping[str, Any]) -> ResponseData:
    """Record data from a QuestionnaireResponse (validation is the platform's write)."""
    result = ResponseData({})
    if not isinstance(response, dict) or response.get("resourceType") != "QuestionnaireResponse":
        result.problems.append(
            ItemProblem(
                "QuestionnaireResponse.resourceType", "", "must be 'QuestionnaireResponse'"
            )  # fmt: skip
        )
        return result
    fields = list(_seq(form.get("fields")))
    top = {_link(f): f for f in fields if f["type"] != "section"}
    tables = {f["key"]: {_link(c): c for c in _seq(f.get("fields"))} for f in fields
              if f["type"] == "table"}  # fmt: skip
    _read(_seq(response.get("item")), top, tables, result.data, result, None)
    return result


def _read(
    items: Any,
    fields: Mapping[str, Mapping[str, Any]],
    tables: Mapping[str, Mapping[str, Mapping[str, Any]]],
    target: dict[str, Any],
    result: ResponseData,
    table: str | None,
) -> None:
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("linkId"), str):
            result.problems.append(ItemProblem("QuestionnaireResponse.item", "",
                                               "every item needs a linkId"))  # fmt: skip
            continue
        link = item["linkId"]
        where = item_path(link)
        made = fields.get(link)
        if made is None and table is None and not item.get("answer"):
            _read(item.get("item"), fields, tables, target, result, table)  # a group
            continue
        if made is None:
            result.problems.append(ItemProblem(where, link, f"no question has linkId {link!r}"))
            continue
        key = made["key"]
        if made["type"] == "table":
            row: dict[str, Any] = {}
            _read(item.get("item"), tables[key], tables, row, result, key)
            target.setdefault(key, []).append(row)
            result.sources.setdefault(key, where)
            continue
        answers = _seq(item.get("answer"))
        for answer in answers:
            if isinstance(answer, dict):
                _read(answer.get("item"), fields, tables, target, result, table)
        _read(item.get("item"), fields, tables, target, result, table)
        if made["type"] == "computed":
            continue
        raw_answers = item.get("answer", [])
        values = [_value(made, a) if isinstance(a, dict) else _BAD for a in answers]
        if not isinstance(raw_answers, list):
            values.append(_BAD)
        if any(v is _BAD for v in values):
            result.problems.append(ItemProblem(where, link, f"an answer to {link!r} has no "
                                               "value[x] this question takes"))  # fmt: skip
            continue
        result.sources[key] = where
        if made["type"] in ("multiselect",) or (
            made["type"] in ("file", "image") and made.get("multiple")
        ):
            target[key] = values
        elif len(values) > 1:
            result.problems.append(ItemProblem(where, link, f"{link!r} takes one answer "
                                               f"({len(values)} were sent)"))  # fmt: skip
        elif values:
            target[key] = values[0]
        else:
            target[key] = None


_BAD = object()


def _value(made: Mapping[str, Any], answer: Mapping[str, Any]) -> Any:
    names = [n for n in answer if n.startswith("value")]
    if len(names) != 1:
        return _BAD
    name, value = names[0], answer[names[0]]
    if name == "valueCoding" and isinstance(value, dict):
        code = value.get("code")
        for option in _seq(made.get("options")):
            coding = option.get("code") or {}
            if option["value"] == code and coding.get("system") in (None, value.get("system")):
                return option["value"]
            if coding.get("code") == code and coding.get("system") == value.get("system"):
                return option["value"]
        return code
    if name == "valueAttachment" and isinstance(value, dict):
        return {"id": value.get("id"), "name": value.get("title"),
                "content_type": value.get("contentType"), "size": value.get("size")}  # fmt: skip
    if name == "valueReference" and isinstance(value, dict):
        return value.get("reference")
    if name == "valueQuantity" and isinstance(value, dict):
        return value.get("value")
    if isinstance(value, dict | list):
        return _BAD
    return value
