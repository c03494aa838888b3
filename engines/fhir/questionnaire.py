"""FHIR R4 Questionnaire ↔ Formloom form definition (docs/fhir.md).

:func:`import_questionnaire` turns a Questionnaire (parsed JSON) into a form definition
(JSON, for the app's import plan) plus :class:`Unmapped` entries: every part of an item
that could not be carried over, with its linkId and why. Nothing is dropped silently.
:func:`export_questionnaire` turns a form back into a Questionnaire, with its own list.

Layout: forms are flat (sections are headings over the fields after them), questionnaires
are trees. A group becomes a ``section`` whose ``visible_if`` is the whole chain of its
ancestors' conditions; a ``display`` item becomes a section too (marked ``fhir.type``);
after a nested group or a display, a *continuation* section (``fhir.continues``) resumes the
enclosing group. Every field remembers its parent's linkId (``fhir.parent``), so export
rebuilds the tree. A repeating group becomes a ``table`` of its questions.

Invariant: for any questionnaire ``q``, ``import(export(import(q)))`` gives the same form as
``import(q)`` (tests check it on every example).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from formloom.engines.fhir.fhirpath import (
    SCORE_EXTENSIONS,
    Answerable,
    Unsupported,
    to_fhirpath,
    to_jsonlogic,
)

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
CALCULATED = SDC + "sdc-questionnaire-calculatedExpression"
ENABLE_WHEN_EXPRESSION = SDC + "sdc-questionnaire-enableWhenExpression"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED = frozenset(
    {"id", "app", "form", "form_version", "version", "data", "created_at", "created_by",
     "updated_at", "updated_by", "deleted_at"}
)  # fmt: skip

#: Value sets the HL7 examples use, known without a terminology server.
_V2_0136 = "http://terminology.hl7.org/CodeSystem/v2-0136"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
KNOWN_VALUE_SETS: dict[str, list[dict[str, str]]] = {
    "http://hl7.org/fhir/ValueSet/yesnodontknow": [
        {"system": _V2_0136, "code": "Y", "display": "Yes"},
        {"system": _V2_0136, "code": "N", "display": "No"},
        {"system": _ABSENT, "code": "asked-unknown", "display": "Don't know"},
    ],
    "http://terminology.hl7.org/ValueSet/v2-0136": [
        {"system": _V2_0136, "code": "Y", "display": "Yes"},
        {"system": _V2_0136, "code": "N", "display": "No"},
    ],
}

#: FHIR item type -> Formloom field type (choice depends on repeats; group on repeats).
SIMPLE_TYPES = {
    "boolean": "boolean",
    "decimal": "number",
    "integer": "integer",
    "date": "date",
    "dateTime": "datetime",
    "time": "time",
    "string": "text",
    "text": "textarea",
    "url": "url",
    "attachment": "file",
    "reference": "text",
    "quantity": "number",
}
#: Formloom result type of a computed field -> FHIR item type, and back.
RESULT_TYPES = {"integer": "integer", "number": "decimal", "text": "string",
                "boolean": "boolean", "date": "date"}  # fmt: skip

_HANDLED_ITEM_KEYS = frozenset(
    {"linkId", "text", "type", "item", "required", "repeats", "readOnly", "maxLength",
     "initial", "prefix", "enableWhen", "enableBehavior", "code", "answerOption",
     "answerValueSet", "extension", "id", "definition"}
)  # fmt: skip


@dataclass(frozen=True)
class Unmapped:
    """One part of a questionnaire (or form) that was not carried over, and why."""

    link_id: str | None
    reason: str
    #: On export: JSON pointer of what was left out in the form definition
    #: (``/fields/3/pattern``); on import the linkId locates it.
    path: str | None = None

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"link_id": self.link_id, "reason": self.reason}
        if self.path is not None:
            found["path"] = self.path
        return found


@dataclass
class Imported:
    """The form definition made from a questionnaire, and what it could not keep."""

    form: dict[str, Any]
    unmapped: list[Unmapped]


class QuestionnaireInvalid(ValueError):
    """Not a Questionnaire at all (the pointer says where)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message


def make_key(text: str, used: set[str]) -> str:
    """A field key from a linkId (or name): lower-case, ``_`` for the rest, unique."""
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not key or not key[0].isalpha():
        key = "q_" + key if key else "q"
    key = key[:56].rstrip("_")
    if key in RESERVED:
        key += "_q"
    candidate, number = key, 2
    while candidate in used:
        candidate = f"{key}_{number}"
        number += 1
    used.add(candidate)
    return candidate


def _seq(value: Any) -> list[Any]:
    """``value`` if it is a list, else nothing (a malformed part reads as absent)."""
    return value if isinstance(value, list) else []


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _locale(code: str) -> str:
    """A FHIR language code as a Formloom locale (``zh``, ``zh-Hans`` -> ``zh-CN``)."""
    lower = code.lower()
    if lower.startswith("zh"):
        return "zh-CN"
    return lower.split("-")[0]


def translated(text: Any, shadow: Any, primary: str) -> Any:
    """A label from a FHIR string and its ``_text``-style element: the text alone, or
    ``{locale: text}`` with the translations its ``translation`` extensions carry."""
    if text is None:
        return None
    found: dict[str, str] = {}
    for extension in _seq(_obj(shadow).get("extension")):
        if _obj(extension).get("url") != TRANSLATION:
            continue
        parts = {_obj(p).get("url"): _obj(p) for p in _seq(_obj(extension).get("extension"))}
        lang = _obj(parts.get("lang")).get("valueCode")
        content = _obj(parts.get("content")).get("valueString")
        if isinstance(lang, str) and lang and isinstance(content, str):
            found[_locale(lang)] = content
    found.pop(primary, None)
    if not found:
        return str(text)
    return {primary: str(text), **found}


def with_translations(label: Any) -> tuple[str | None, dict[str, Any] | None]:
    """A label as FHIR text (English, else the first) and its ``_text`` translations."""
    if label is None or isinstance(label, str):
        return label, None
    if not isinstance(label, dict) or not label:
        return None, None
    primary = "en" if "en" in label else next(iter(label))
    others = [
        {"url": TRANSLATION, "extension": [{"url": "lang", "valueCode": locale},
                                           {"url": "content", "valueString": text}]}
        for locale, text in label.items()
        if locale != primary
    ]  # fmt: skip
    return str(label[primary]), ({"extension": others} if others else None)


def _combine(rules: Sequence[Any]) -> Any:
    if not rules:
        return None
    if len(rules) == 1:
        return rules[0]
    return {"and": list(rules)}


@dataclass
class _Item:
    raw: dict[str, Any]
    pointer: str
    link_id: str
    key: str
    parent: _Item | None
    options: list[dict[str, Any]] = field(default_factory=list)
    own: Any = None
    column_of: _Item | None = None

    @property
    def kind(self) -> str:
        return str(self.raw.get("type", ""))

    def is_group(self) -> bool:
        return self.kind == "group"

    def is_table(self) -> bool:
        return self.is_group() and bool(self.raw.get("repeats"))

    def chain(self) -> list[Any]:
        """Own conditions of this item and its ancestors, outermost first."""
        rules = self.parent.chain() if self.parent is not None else []
        return [*rules, self.own] if self.own is not None else rules

    def group_chain(self) -> list[Any]:
        """The chain of the nearest enclosing group (what its section already checks)."""
        parent = self.parent
        while parent is not None and not parent.is_group():
            parent = parent.parent
        return parent.chain() if parent is not None else []


class _Importer:
    def __init__(self, questionnaire: Mapping[str, Any]) -> None:
        self.q = questionnaire
        self.used: set[str] = set()
        self.items: dict[str, _Item] = {}
        self.order: list[_Item] = []
        self.unmapped: list[Unmapped] = []
        self.value_sets: dict[str, list[dict[str, Any]]] = {}
        language = questionnaire.get("language")
        self.primary = _locale(language) if isinstance(language, str) and language else "en"
        for resource in _seq(questionnaire.get("contained")):
            if isinstance(resource, dict) and resource.get("resourceType") == "ValueSet":
                self.value_sets["#" + str(resource.get("id"))] = _concepts(resource)
                if resource.get("url"):
                    self.value_sets[str(resource["url"])] = _concepts(resource)

    def note(self, item: _Item | None, reason: str) -> None:
        self.unmapped.append(Unmapped(item.link_id if item else None, reason))

    # -- pass 1: keys, options -------------------------------------------------------
    def collect(self, raw_items: Any, pointer: str, parent: _Item | None) -> None:
        if raw_items is None:
            return
        if not isinstance(raw_items, list):
            raise QuestionnaireInvalid(pointer, "item must be a list")
        for index, raw in enumerate(raw_items):
            here = f"{pointer}/{index}"
            if not isinstance(raw, dict) or not isinstance(raw.get("linkId"), str):
                raise QuestionnaireInvalid(here, "an item needs a linkId (a string)")
            if not isinstance(raw.get("type"), str):
                raise QuestionnaireInvalid(here + "/type", "an item needs a type")
            link_id = raw["linkId"]
            if link_id in self.items:
                raise QuestionnaireInvalid(here + "/linkId", f"linkId {link_id!r} repeats")
            item = _Item(raw, here, link_id, make_key(link_id, self.used), parent)
            if parent is not None and parent.is_table():
                item.column_of = parent
            elif parent is not None and parent.column_of is not None:
                item.column_of = parent.column_of
            self.items[link_id] = item
            self.order.append(item)
            if item.kind in ("choice", "open-choice"):
                item.options = self.options(item)
            self.collect(raw.get("item"), here + "/item", item)

    def options(self, item: _Item) -> list[dict[str, Any]]:
        raw = item.raw
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, option in enumerate(_seq(raw.get("answerOption"))):
            made = self.option(item, option, index)
            if made is not None and made["value"] not in seen:
                seen.add(made["value"])
                found.append(made)
        value_set = raw.get("answerValueSet")
        if isinstance(value_set, str):
            concepts = self.value_sets.get(value_set) or KNOWN_VALUE_SETS.get(value_set)
            if concepts is None:
                self.note(
                    item,
                    f"answerValueSet {value_set} cannot be expanded here: the "
                    "question takes a free-text answer (the code)",
                )
            for concept in concepts or []:
                made = _coded_option(concept, None, self.primary)
                if made is not None and made["value"] not in seen:
                    seen.add(made["value"])
                    found.append(made)
        return found

    def option(self, item: _Item, option: Any, index: int) -> dict[str, Any] | None:
        if not isinstance(option, dict):
            self.note(item, f"answerOption {index} is not an object")
            return None
        score = _score(option.get("extension")) if "extension" in option else None
        if "valueCoding" in option and isinstance(option["valueCoding"], dict):
            coding = option["valueCoding"]
            if score is None:
                score = _score(coding.get("extension"))
            coded = _coded_option(coding, score, self.primary)
            if coded is None:
                self.note(item, f"answerOption {index} has a coding without a code")
            return coded
        for name in ("valueString", "valueInteger", "valueDate", "valueTime"):
            if name in option:
                value = str(option[name])
                if name != "valueString":
                    self.note(item, f"answerOption {index}: {name} is kept as text")
                if not 1 <= len(value) <= 200:
                    self.note(item, f"answerOption {index}: a value must have 1-200 characters")
                    return None
                made: dict[str, Any] = {"value": value}
                if score is not None:
                    made["score"] = score
                return made
        self.note(item, f"answerOption {index}: no value the form can hold")
        return None

    # -- pass 2: conditions ------------------------------------------------------------
    def conditions(self) -> None:
        for item in self.order:
            rules: list[Any] = []
            for index, when in enumerate(_seq(item.raw.get("enableWhen"))):
                rule = self.condition(item, when, index)
                if rule is not None:
                    rules.append(rule)
            behavior = item.raw.get("enableBehavior", "all")
            if len(rules) == 1:
                item.own = rules[0]
            elif rules:
                item.own = {"or" if behavior == "any" else "and": rules}
            expression = _extension_expression(item.raw, ENABLE_WHEN_EXPRESSION)
            if expression is not None:
                if item.own is not None:
                    self.note(
                        item,
                        "enableWhenExpression together with enableWhen: only enableWhen is kept",
                    )
                    continue
                try:
                    item.own = to_jsonlogic(expression, self.answerables())
                except Unsupported as exc:
                    self.note(
                        item,
                        f"enableWhenExpression {expression!r}: {exc}; the item is always shown",
                    )

    def answerables(self) -> dict[str, Answerable]:
        return {
            link_id: Answerable(
                item.key,
                link_id,
                tuple((o["value"], o["score"]) for o in item.options if "score" in o),
                coded=bool(item.options),
            )
            for link_id, item in self.items.items()
        }

    def condition(self, item: _Item, when: Any, index: int) -> Any:
        if not isinstance(when, dict):
            self.note(item, f"enableWhen {index} is not an object")
            return None
        target = self.items.get(str(when.get("question")))
        operator = when.get("operator")
        answers = [name for name in when if name.startswith("answer")]
        if target is None:
            self.note(
                item,
                f"enableWhen {index} asks about {when.get('question')!r}, which "
                "is not an item of this questionnaire",
            )
            return None
        if len(answers) != 1:
            self.note(item, f"enableWhen {index} needs exactly one answer[x]")
            return None
        answer = when[answers[0]]
        var = {"var": target.key}
        if operator == "exists":
            return {"!=" if answer else "==": [var, None]}
        value = self.value_of(target, answers[0], answer)
        if value is None:
            self.note(item, f"enableWhen {index}: {answers[0]} cannot be compared")
            return None
        if target.kind in ("choice", "open-choice") and target.raw.get("repeats"):
            contains = {"in": [value, {"var": [target.key, []]}]}
            if operator == "=":
                return contains
            if operator == "!=":
                return {"!": contains}
            self.note(item, f"enableWhen {index}: {operator} on a repeating choice")
            return None
        if operator == "=":
            return {"==": [var, value]}
        if operator == "!=":
            return {"!=": [var, value]}
        if operator in ("<", "<=", ">", ">="):
            return {"and": [{"!=": [var, None]}, {operator: [var, value]}]}
        self.note(item, f"enableWhen {index}: unknown operator {operator!r}")
        return None

    def value_of(self, target: _Item, name: str, answer: Any) -> Any:
        """A FHIR value as the target field stores it."""
        if name.endswith("Coding") and isinstance(answer, dict):
            code = answer.get("code")
            for option in target.options:
                coding = option.get("code") or {}
                if coding.get("code") == code and (
                    answer.get("system") is None
                    or coding.get("system") in (None, answer.get("system"))
                ):
                    return option["value"]
            return code
        if name.endswith("Quantity") and isinstance(answer, dict):
            return answer.get("value")
        if name.endswith("Reference") and isinstance(answer, dict):
            return answer.get("reference")
        if isinstance(answer, dict | list):
            return None
        return answer

    # -- pass 3: fields ----------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        self.collect(self.q.get("item"), "/item", None)
        self.conditions()
        fields: list[dict[str, Any]] = []
        current: list[_Item | None] = [None]  # the group whose section now governs
        for item in self.order:
            if item.column_of is not None:
                continue
            self.emit(item, fields, current)
        name = self.name()
        form: dict[str, Any] = {
            "key": make_key(name, set()),
            "label": self.title(),
            "fields": fields,
        }
        if self.q.get("description"):
            form["description"] = str(self.q["description"])
        info = {k: v for k, v in {"url": self.q.get("url"), "name": self.q.get("name")}.items()
                if isinstance(v, str)}  # fmt: skip
        if info.get("name") == form["key"]:
            del info["name"]
        if info:
            form["fhir"] = info
        return form

    def name(self) -> str:
        return str(self.q.get("name") or self.q.get("id") or self.q.get("title") or "questionnaire")

    def title(self) -> Any:
        if self.q.get("title"):
            return translated(self.q["title"], self.q.get("_title"), self.primary)
        return self.name()

    def emit(self, item: _Item, fields: list[dict[str, Any]], current: list[_Item | None]) -> None:
        group = item.parent
        while group is not None and not group.is_group():
            group = group.parent
        if item.is_group() and not item.is_table() or item.kind == "display":
            fields.append(self.section(item))
            current[0] = item if item.is_group() else _DISPLAY
            return
        if current[0] is not group:
            fields.append(self.continuation(group))
            current[0] = group
        made = self.field(item)
        if made is not None:
            rule = _combine(item.chain()[len(item.group_chain()) :])
            if rule is not None:
                made["visible_if"] = rule
            fields.append(made)

    def continuation(self, group: _Item | None) -> dict[str, Any]:
        base = group.key if group is not None else "questionnaire"
        section: dict[str, Any] = {
            "key": make_key(base + "_more", self.used),
            "type": "section",
            "fhir": {"continues": True},
        }
        if group is None:
            section["label"] = self.title()
        if group is not None:
            section["fhir"]["parent"] = group.link_id
            if group.raw.get("text"):
                section["label"] = translated(
                    group.raw["text"], group.raw.get("_text"), self.primary
                )
            rule = _combine(group.chain())
            if rule is not None:
                section["visible_if"] = rule
        return section

    def section(self, item: _Item) -> dict[str, Any]:
        section: dict[str, Any] = {"key": item.key, "type": "section"}
        self.common(item, section, display=item.kind == "display")
        rule = _combine(item.chain())
        if rule is not None:
            section["visible_if"] = rule
        for name in ("required", "readOnly", "repeats"):
            if item.raw.get(name) and item.kind == "display":
                self.note(item, f"{name} on a display item means nothing and is left out")
        return section

    def common(self, item: _Item, made: dict[str, Any], display: bool = False) -> None:
        raw = item.raw
        label = raw.get("text")
        codes = [c for c in _seq(raw.get("code")) if isinstance(c, dict)]
        if label is None and codes and codes[0].get("display"):
            label = codes[0]["display"]
        if label is not None:
            made["label"] = translated(label, raw.get("_text"), self.primary)
        info: dict[str, Any] = dict(_obj(made.get("fhir")))
        if item.link_id != item.key:
            info["link_id"] = item.link_id
        if item.parent is not None and item.column_of is None:
            info["parent"] = item.parent.link_id
        if display:
            info["type"] = "display"
        if codes:
            info["code"] = [_coding(c) for c in codes]
        if isinstance(raw.get("prefix"), str):
            info["prefix"] = raw["prefix"]
        if info:
            made["fhir"] = info
        for name in sorted(set(raw) - _HANDLED_ITEM_KEYS):
            if not name.startswith("_"):
                self.note(item, f"{name} is not supported and is left out")
        for name in ("item", "answerOption", "enableWhen", "code", "initial", "extension"):
            if name in raw and not isinstance(raw[name], list):
                self.note(item, f"{name} is not a list and is left out")
        if raw.get("definition"):
            self.note(item, "definition (a link to a StructureDefinition) is left out")
        for extension in _seq(raw.get("extension")):
            url = extension.get("url") if isinstance(extension, dict) else None
            if url not in (CALCULATED, ENABLE_WHEN_EXPRESSION, UNIT):
                self.note(item, f"extension {url} is not supported and is left out")

    def field(self, item: _Item) -> dict[str, Any] | None:
        raw = item.raw
        kind = item.kind
        made: dict[str, Any] = {"key": item.key}
        info: dict[str, Any] = {}
        expression = _extension_expression(raw, CALCULATED)
        if item.is_table():
            made["type"] = "table"
            columns = []
            for child in self.order:
                if child.parent is item:
                    if child.is_group() or child.kind == "display" or child.raw.get("item"):
                        self.note(
                            child,
                            "a repeating group holds only plain questions here: "
                            "this item and what it holds are left out",
                        )
                        continue
                    column = self.field(child)
                    if column is not None:
                        if child.own is not None:
                            column["visible_if"] = child.own
                        columns.append(column)
            if not columns:
                self.note(item, "a repeating group without questions is left out")
                return None
            made["fields"] = columns
        elif expression is not None:
            try:
                formula = to_jsonlogic(expression, self.answerables())
            except Unsupported as exc:
                self.note(
                    item,
                    f"calculatedExpression {expression!r}: {exc}; the item is "
                    "a plain read-only question",
                )
            else:
                made.update({"type": "computed", "formula": formula,
                             "result_type": _result_type(kind)})  # fmt: skip
                info["calculated_expression"] = expression
                made["fhir"] = info
                self.common(item, made)
                return made
        if kind in ("choice", "open-choice"):
            if not item.options:
                if not raw.get("answerValueSet") or raw.get("answerValueSet") in (
                    self.value_sets.keys() | KNOWN_VALUE_SETS.keys()
                ):
                    self.note(item, "a choice without answer options takes free text")
                made["type"] = "text"
                info["type"] = kind
            else:
                made["type"] = "multiselect" if raw.get("repeats") else "select"
                made["options"] = item.options
                if kind == "open-choice":
                    info["type"] = "open-choice"
                    self.note(item, "open-choice: only the listed options are accepted")
        elif "type" not in made:
            if kind not in SIMPLE_TYPES:
                self.note(item, f"item type {kind!r} is not supported; the item is left out")
                return None
            made["type"] = SIMPLE_TYPES[kind]
            if kind in ("reference", "quantity", "string"):
                info["type"] = kind if kind != "string" else None
            if kind == "quantity":
                unit = _unit(raw)
                if unit is not None:
                    info["unit"] = unit
        info = {k: v for k, v in info.items() if v is not None}
        if info:
            made["fhir"] = info
        if raw.get("repeats") and made["type"] == "file":
            made["multiple"] = True
        elif raw.get("repeats") and made["type"] not in ("multiselect", "table"):
            self.note(item, "repeats: only one answer is kept")
        if raw.get("required"):
            made["required"] = True
        if raw.get("readOnly"):
            made["read_only"] = True
        if "maxLength" in raw:
            if made["type"] in ("text", "textarea") and isinstance(raw["maxLength"], int):
                made["max_length"] = raw["maxLength"]
            else:
                self.note(item, "maxLength applies to text answers only and is left out")
        self.initial(item, made)
        self.common(item, made)
        return made

    def initial(self, item: _Item, made: dict[str, Any]) -> None:
        initial = _seq(item.raw.get("initial"))
        selected = [
            o for o in _seq(item.raw.get("answerOption"))
            if isinstance(o, dict) and o.get("initialSelected")
        ]  # fmt: skip
        values = []
        for entry in initial:
            names = [n for n in entry if n.startswith("value")] if isinstance(entry, dict) else []
            if len(names) == 1:
                values.append(self.value_of(item, names[0], entry[names[0]]))
        for option in selected:
            names = [n for n in option if n.startswith("value")]
            if names:
                values.append(self.value_of(item, names[0], option[names[0]]))
        values = [v for v in values if v is not None]
        if not values:
            return
        if made["type"] == "multiselect":
            made["default"] = values
        elif made["type"] in ("table", "file", "computed"):
            self.note(item, "initial values of this type are left out")
        else:
            made["default"] = values[0]
            if len(values) > 1:
                self.note(item, "only the first initial value is kept")


_DISPLAY = _Item({}, "", "", "", None)


def _concepts(value_set: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for include in _seq(_obj(value_set.get("compose")).get("include")):
        for concept in _seq(_obj(include).get("concept")):
            if isinstance(concept, dict):
                found.append({**concept, "system": _obj(include).get("system")})
    for concept in _seq(_obj(value_set.get("expansion")).get("contains")):
        if isinstance(concept, dict):
            found.append(dict(concept))
    return found


def _coding(raw: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(raw[k]) for k in ("system", "code", "display") if raw.get(k) is not None}


def _coded_option(
    coding: Mapping[str, Any], score: float | None, primary: str
) -> dict[str, Any] | None:
    code = coding.get("code")
    if not isinstance(code, str) or not 1 <= len(code) <= 200:
        return None
    made: dict[str, Any] = {"value": code}
    if coding.get("display"):
        made["label"] = translated(coding["display"], coding.get("_display"), primary)
    if score is None:
        score = _score(coding.get("extension"))
    if score is not None:
        made["score"] = score
    made["code"] = _coding(coding)
    return made


def _score(extensions: Any) -> float | None:
    for extension in _seq(extensions):
        if isinstance(extension, dict) and extension.get("url") in SCORE_EXTENSIONS:
            value = extension.get("valueDecimal", extension.get("valueInteger"))
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value) if float(value).is_integer() else float(value)
    return None


def _extension_expression(raw: Mapping[str, Any], url: str) -> str | None:
    for extension in _seq(raw.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == url:
            expression = _obj(extension.get("valueExpression")).get("expression")
            if isinstance(expression, str):
                return expression
    return None


def _unit(raw: Mapping[str, Any]) -> dict[str, str] | None:
    for extension in _seq(raw.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == UNIT:
            coding = extension.get("valueCoding")
            if isinstance(coding, dict):
                return _coding(coding)
    return None


def _result_type(kind: str) -> str:
    for result, fhir_type in RESULT_TYPES.items():
        if fhir_type == kind:
            return result
    return "number" if kind == "quantity" else "text"


def import_questionnaire(questionnaire: Any) -> Imported:
    """A form definition (JSON) for a Questionnaire, and the list of what was not mapped.

    Raises :class:`QuestionnaireInvalid` for something that is no Questionnaire at all.
    """
    if not isinstance(questionnaire, dict) or questionnaire.get("resourceType") != "Questionnaire":
        raise QuestionnaireInvalid("/resourceType", "must be 'Questionnaire'")
    importer = _Importer(questionnaire)
    form = importer.build()
    return Imported(form, importer.unmapped)


def fit_labels(
    form: Mapping[str, Any], locales: Sequence[str]
) -> tuple[dict[str, Any], list[Unmapped]]:
    """``form`` with its translated labels fitted to an app's ``locales``: translations into
    other locales are left out, and a label lacking one of the app's locales becomes its
    plain text (an app wants every locale or one string). Each change is listed."""
    notes: list[Unmapped] = []
    if not locales:
        return dict(form), notes
    wanted = list(locales)

    def fit(label: Any, link_id: str | None) -> Any:
        if not isinstance(label, dict):
            return label
        kept = {k: v for k, v in label.items() if k in wanted}
        for other in sorted(set(label) - set(kept)):
            notes.append(Unmapped(link_id, f"the {other} translation is not one of the "
                                  "app's languages and is left out"))  # fmt: skip
        if all(locale in kept for locale in wanted):
            return kept
        text, _ = with_translations(label)
        missing = ", ".join(locale for locale in wanted if locale not in kept)
        notes.append(Unmapped(link_id, f"no {missing} translation: one text for every language"))
        return text

    def fit_field(made: Mapping[str, Any]) -> dict[str, Any]:
        link = _link(made)
        fitted = dict(made)
        if "label" in fitted:
            fitted["label"] = fit(fitted["label"], link)
        if "options" in fitted:
            fitted["options"] = [
                {**o, "label": fit(o["label"], link)} if "label" in o else o
                for o in fitted["options"]
            ]
        if "fields" in fitted:
            fitted["fields"] = [fit_field(column) for column in fitted["fields"]]
        return fitted

    result = dict(form)
    result["label"] = fit(result.get("label"), None)
    result["fields"] = [fit_field(made) for made in _seq(form.get("fields"))]
    return result, notes


# -- export --------------------------------------------------------------------------------


def _link(field: Mapping[str, Any]) -> str:
    info = field.get("fhir") or {}
    return str(info.get("link_id") or field["key"])


def _label(label: Any) -> str | None:
    if label is None:
        return None
    if isinstance(label, str):
        return label
    if isinstance(label, dict) and label:
        return str(label.get("en") or next(iter(label.values())))
    return None


def answerables_of(fields: Sequence[Mapping[str, Any]]) -> dict[str, Answerable]:
    """Each field (and table column) that holds an answer, by key."""
    found: dict[str, Answerable] = {}
    for made in _all_fields(fields):
        if made["type"] in ("section", "table"):
            continue
        options = _seq(made.get("options"))
        found[made["key"]] = Answerable(
            made["key"],
            _link(made),
            tuple((o["value"], o["score"]) for o in options if o.get("score") is not None),
            coded=bool(options),
        )
    return found


def _all_fields(fields: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for made in fields:
        yield made
        if made.get("type") == "table":
            yield from _seq(made.get("fields"))


def _option_value(option: Mapping[str, Any]) -> tuple[str, Any]:
    code = option.get("code")
    label = _label(option.get("label"))
    if code:
        coding = dict(code)
        _text, shadow = with_translations(option.get("label"))
        if shadow is not None:
            coding["_display"] = shadow
        return "valueCoding", coding
    if label is not None and label != option["value"]:
        return "valueCoding", {"code": option["value"], "display": label}
    return "valueString", option["value"]


def _own(rule: Any, base: list[Any]) -> Any:
    """The part of a ``visible_if`` that is the item's own (its ancestors' taken off)."""
    if rule is None or not base:
        return rule
    if rule == _combine(base):
        return None
    if isinstance(rule, dict) and list(rule) == ["and"]:
        args = rule["and"]
        if isinstance(args, list) and len(args) == len(base) + 1 and args[:-1] == base:
            return args[-1]
    return rule


#: What a field definition says that no Questionnaire item carries (export lists each one
#: set, with its path). Storage settings (``indexed``) are no part of a questionnaire.
_NOT_EXPORTED = {
    "help": "the help text is not exported",
    "min": "the smallest value allowed is not exported",
    "max": "the largest value allowed is not exported",
    "min_length": "the fewest characters allowed is not exported",
    "pattern": "the pattern values must match is not exported",
    "unique": "that each record's value is unique is a check of the server, not of the form",
    "target": "the related form is not named: the item is a plain reference",
    "accept": "the file types accepted are not exported",
    "max_size": "the largest file allowed is not exported",
    "min_rows": "the fewest rows are not exported",
    "max_rows": "the most rows are not exported",
    "min_items": "the fewest choices are not exported",
    "max_items": "the most choices are not exported",
    "default_expr": "the computed default is not exported",
}
#: Field types exported as a plain item type, losing their own check.
_PLAIN_TYPES = {
    "email": "an e-mail field is a plain string item: the e-mail check is not exported",
    "phone": "a phone field is a plain string item: the phone number check is not exported",
    "richtext": "a rich text field is a plain text item: its formatting is not exported",
    "autonumber": "an auto-number is a read-only string item: its numbering is not exported",
    "user": "a member field is a string item holding the Formloom user id (no Practitioner "
    "reference): the app's members are not exported",
    "department": "a department field is a string item: the app's departments are not "
    "exported as answer options",
}
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
SLIDER_STEP = "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"


def _rating_extensions(made: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A rating's item: an integer from 1 to its stars, shown as a slider of whole steps
    (the nearest SDC item control to a row of stars)."""
    top = made.get("max", 5)
    return [
        {"url": MIN_VALUE, "valueInteger": 1},
        {"url": MAX_VALUE, "valueInteger": top},
        {"url": SLIDER_STEP, "valueInteger": 1},
        {
            "url": ITEM_CONTROL,
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/questionnaire-item-control",
                        "code": "slider",
                        "display": "Slider",
                    }
                ]
            },
        },
    ]


class _Exporter:
    def __init__(self, form: Mapping[str, Any]) -> None:
        self.form = form
        self.fields: list[Mapping[str, Any]] = list(_seq(form.get("fields")))
        #: id of each field definition -> its JSON pointer in the form
        self.paths: dict[int, str] = {}
        for index, made in enumerate(self.fields):
            self.paths[id(made)] = f"/fields/{index}"
            if made.get("type") == "table":
                for column, inner in enumerate(_seq(made.get("fields"))):
                    self.paths[id(inner)] = f"/fields/{index}/fields/{column}"
        self.by_key = {f["key"]: f for f in _all_fields(self.fields)}
        self.answerables = answerables_of(self.fields)
        self.unmapped: list[Unmapped] = []
        self.chains: dict[str, list[Any]] = {}
        self.group_chains: dict[str, list[Any]] = {}

    def lost(self, made: Mapping[str, Any], attribute: str | None, reason: str) -> None:
        """Say that ``attribute`` of the field ``made`` (the field itself: ``None``) is not
        in the Questionnaire, at its path in the form."""
        where = self.paths.get(id(made))
        path = f"{where}/{attribute}" if where is not None and attribute else where
        self.unmapped.append(Unmapped(_link(made), reason, path))

    def questionnaire(self) -> dict[str, Any]:
        form = self.form
        info = form.get("fhir") or {}
        result: dict[str, Any] = {
            "resourceType": "Questionnaire",
            "status": "active",
            "name": info.get("name") or form["key"],
            "title": _label(form.get("label")) or form["key"],
        }
        _text, shadow = with_translations(form.get("label"))
        if shadow is not None:
            result["_title"] = shadow
        if info.get("url"):
            result["url"] = info["url"]
        if form.get("description"):
            result["description"] = _label(form["description"])
        roots: list[dict[str, Any]] = []
        items: dict[str, dict[str, Any]] = {}
        kinds: dict[str, str] = {}
        current: str | None = None  # linkId of the group a plain section opened
        for made in self.fields:
            fhir = made.get("fhir") or {}
            if made["type"] == "section" and fhir.get("continues"):
                current = fhir.get("parent")
                continue
            parent = fhir.get("parent") if made.get("fhir") is not None else current
            if made["type"] == "section" and "parent" not in fhir and not fhir.get("type"):
                parent = None
            link = _link(made)
            item = self.item(made, parent, kinds)
            if item is None:
                continue
            items[link] = item
            kinds[link] = item["type"]
            if made["type"] == "section" and fhir.get("type") != "display":
                current = link
            holder = items.get(parent) if parent is not None else None
            (holder.setdefault("item", []) if holder is not None else roots).append(item)
        result["item"] = roots
        return result

    def item(
        self, made: Mapping[str, Any], parent: str | None, kinds: Mapping[str, str]
    ) -> dict[str, Any] | None:
        link = _link(made)
        fhir = made.get("fhir") or {}
        kind = made["type"]
        item: dict[str, Any] = {"linkId": link}
        if fhir.get("prefix"):
            item["prefix"] = fhir["prefix"]
        if fhir.get("code"):
            item["code"] = [dict(c) for c in fhir["code"]]
        label, shadow = with_translations(made.get("label"))
        if label is not None:
            item["text"] = label
        if shadow is not None:
            item["_text"] = shadow
        parent_chain = self.chains.get(parent, []) if parent is not None else []
        parent_group_chain = self.group_chains.get(parent, []) if parent is not None else []
        if kind == "section":
            item["type"] = fhir.get("type") or "group"
            own = _own(made.get("visible_if"), parent_chain)
            self.not_exported(made)
        else:
            own = _own(made.get("visible_if"), parent_chain[len(parent_group_chain) :])
        chain = [*parent_chain, own] if own is not None else list(parent_chain)
        self.chains[link] = chain
        self.group_chains[link] = (
            chain if kind == "section" and item["type"] == "group" else parent_group_chain
        )
        self.condition(item, made, own)
        if kind != "section":
            self.typed(item, made)
        return item

    def condition(self, item: dict[str, Any], made: Mapping[str, Any], own: Any) -> None:
        if own is None:
            return
        fhir = made.get("fhir") or {}
        stored = fhir.get("enable_when_expression")
        by_link = {a.link_id: a for a in self.answerables.values()}
        if stored is not None:
            try:
                if to_jsonlogic(stored, by_link) == own:
                    _add_expression(item, ENABLE_WHEN_EXPRESSION, stored)
                    return
            except Unsupported:
                pass
        enable = self.enable_when(own)
        if enable is not None:
            item["enableWhen"] = enable[0]
            if len(enable[0]) > 1:
                item["enableBehavior"] = enable[1]
            return
        text = to_fhirpath(own, self.answerables)
        if text is not None:
            _add_expression(item, ENABLE_WHEN_EXPRESSION, text)
            return
        self.lost(
            made,
            "visible_if",
            "visible_if has no FHIR form here and is left out: the item is always enabled",
        )

    def enable_when(self, rule: Any) -> tuple[list[dict[str, Any]], str] | None:
        single = self.single(rule)
        if single is not None:
            return [single], "all"
        if isinstance(rule, dict) and len(rule) == 1:
            ((operator, args),) = rule.items()
            if operator in ("and", "or") and isinstance(args, list) and len(args) > 1:
                found = [self.single(arg) for arg in args]
                if all(f is not None for f in found):
                    return [f for f in found if f is not None], (
                        "all" if operator == "and" else "any"
                    )
        return None

    def single(self, rule: Any) -> dict[str, Any] | None:
        if not isinstance(rule, dict) or len(rule) != 1:
            return None
        ((operator, args),) = rule.items()
        if operator == "!" and isinstance(args, dict) and "in" in args:
            found = self.single(args)
            if found is not None and found["operator"] == "=":
                found["operator"] = "!="
                return found
            return None
        if not isinstance(args, list) or len(args) != 2:
            return None
        if operator == "in" and isinstance(args[1], dict) and isinstance(args[1].get("var"), list):
            key = args[1]["var"][0] if args[1]["var"] else None
            return self.when(key, "=", args[0])
        if operator == "and":
            guard, compare = args
            if (
                isinstance(compare, dict) and len(compare) == 1
                and next(iter(compare)) in ("<", "<=", ">", ">=")
                and guard == {"!=": [next(iter(compare.values()))[0], None]}
            ):  # fmt: skip
                ((op, pair),) = compare.items()
                return self.when(_var(pair[0]), op, pair[1]) if len(pair) == 2 else None
            return None
        key = _var(args[0])
        if operator in ("==", "!=") and args[1] is None:
            if key is None or key not in self.by_key:
                return None
            return {"question": _link(self.by_key[key]), "operator": "exists",
                    "answerBoolean": operator == "!="}  # fmt: skip
        if operator in ("==", "==="):
            return self.when(key, "=", args[1])
        if operator in ("!=", "!=="):
            return self.when(key, "!=", args[1])
        return None

    def when(self, key: Any, operator: str, value: Any) -> dict[str, Any] | None:
        target = self.by_key.get(key) if isinstance(key, str) else None
        if target is None or isinstance(value, dict | list) or value is None:
            return None
        found: dict[str, Any] = {"question": _link(target), "operator": operator}
        kind = target["type"]
        if kind in ("select", "multiselect"):
            for option in _seq(target.get("options")):
                if option["value"] == value:
                    name, answer = _option_value(option)
                    found["answer" + name[5:]] = answer
                    return found
            return None
        name = {"boolean": "answerBoolean", "integer": "answerInteger", "number": "answerDecimal",
                "date": "answerDate", "datetime": "answerDateTime",
                "time": "answerTime"}.get(kind, "answerString")  # fmt: skip
        if name == "answerBoolean" and not isinstance(value, bool):
            return None
        if name in ("answerInteger", "answerDecimal") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            return None
        if name not in ("answerBoolean", "answerInteger", "answerDecimal") and not isinstance(
            value, str
        ):
            return None
        if _obj(target.get("fhir")).get("type") == "quantity":
            name, value = "answerQuantity", {"value": value}
        found[name] = value
        return found

    def typed(self, item: dict[str, Any], made: Mapping[str, Any]) -> None:
        fhir = made.get("fhir") or {}
        kind = made["type"]
        if kind == "computed":
            item["type"] = RESULT_TYPES.get(made.get("result_type", "text"), "string")
            item["readOnly"] = True
            stored = fhir.get("calculated_expression")
            by_link = {a.link_id: a for a in self.answerables.values()}
            text: str | None = None
            if stored is not None:
                try:
                    if to_jsonlogic(stored, by_link) == made.get("formula"):
                        text = stored
                except Unsupported:
                    pass
            if text is None:
                text = to_fhirpath(made.get("formula"), self.answerables)
            if text is None:
                self.lost(
                    made,
                    "formula",
                    "the formula has no FHIRPath form here: exported without a calculation",
                )
            else:
                _add_expression(item, CALCULATED, text)
            return
        if kind == "table":
            item["type"] = "group"
            item["repeats"] = True
            columns = []
            for column in _seq(made.get("fields")):
                child = self.item(column, None, {})
                if child is not None:
                    columns.append(child)
            item["item"] = columns
        elif kind in ("select", "multiselect"):
            item["type"] = fhir.get("type") or "choice"
            item["answerOption"] = []
            for option in _seq(made.get("options")):
                name, value = _option_value(option)
                answer: dict[str, Any] = {name: value}
                if option.get("score") is not None:
                    answer["extension"] = [{"url": ORDINAL, "valueDecimal": option["score"]}]
                item["answerOption"].append(answer)
            if kind == "multiselect":
                item["repeats"] = True
        else:
            default_type = {"text": "string", "textarea": "text", "number": "decimal",
                            "integer": "integer", "boolean": "boolean", "date": "date",
                            "datetime": "dateTime", "time": "time", "email": "string",
                            "phone": "string", "url": "url", "relation": "reference",
                            "file": "attachment", "image": "attachment",
                            "rating": "integer", "signature": "attachment",
                            "richtext": "text"}  # fmt: skip
            item["type"] = fhir.get("type") or default_type.get(kind, "string")
            if fhir.get("unit"):
                item.setdefault("extension", []).append(
                    {"url": UNIT, "valueCoding": dict(fhir["unit"])}
                )
            if kind in ("file", "image", "user") and made.get("multiple"):
                item["repeats"] = True
            if kind == "rating" and item["type"] == "integer":
                item.setdefault("extension", []).extend(_rating_extensions(made))
        if made.get("required"):
            item["required"] = True
        if made.get("read_only") or kind == "autonumber":
            item["readOnly"] = True
        if made.get("max_length") is not None and item["type"] in ("string", "text"):
            item["maxLength"] = made["max_length"]
        if made.get("default") is not None:
            initial = self.initial(made, made["default"])
            if initial:
                item["initial"] = initial
        if kind in _PLAIN_TYPES and not fhir.get("type"):
            self.lost(made, "type", _PLAIN_TYPES[kind])
        self.not_exported(made)

    def not_exported(self, made: Mapping[str, Any]) -> None:
        """List what the field sets that no item carries (``_NOT_EXPORTED``)."""
        for attribute, reason in _NOT_EXPORTED.items():
            if made.get("type") == "rating" and attribute == "max":
                continue  # a rating's stars are its item's maxValue
            if made.get(attribute) not in (None, False, "", []):
                self.lost(made, attribute, reason)

    def initial(self, made: Mapping[str, Any], default: Any) -> list[dict[str, Any]]:
        values = default if isinstance(default, list) else [default]
        found = []
        for value in values:
            when = self.when(made["key"], "=", value)
            if when is None:
                self.lost(made, "default", "the default has no FHIR form here")
                continue
            name = next(n for n in when if n.startswith("answer"))
            found.append({"value" + name[6:]: when[name]})
        return found


def _var(rule: Any) -> str | None:
    if isinstance(rule, dict) and list(rule) == ["var"]:
        name = rule["var"]
        return name if isinstance(name, str) else None
    return None


def _add_expression(item: dict[str, Any], url: str, text: str) -> None:
    item.setdefault("extension", []).append(
        {"url": url, "valueExpression": {"language": "text/fhirpath", "expression": text}}
    )


def export_questionnaire(form: Mapping[str, Any]) -> tuple[dict[str, Any], list[Unmapped]]:
    """The Questionnaire for a form definition (JSON), and what it could not express."""
    exporter = _Exporter(form)
    return exporter.questionnaire(), exporter.unmapped
