"""Related records in rules: ``record.<relation>.<field>`` (one hop) and
``record.<relation>.<relation>.<field>`` (two hops), and staff records as users.

A relation field stores the target record's id, and ``record.patient`` stays that id
everywhere (conditions compare it with ids). A path that goes *through* a relation field
reads the related record: ``record.patient.name`` is the visit's patient's name,
``record.patient.primary_doctor.name`` the name of that patient's doctor. At most two hops.

The engine reads no database, so the platform loads what the rules read and hands it in:

* :func:`reads` works out, once per rule (the platform caches it per installed rule set),
  the :class:`Hop` s a rule goes through and the fields it reads on each: from every
  JsonLogic expression (:func:`~formloom.engines.logic.variables`), every Jinja template
  (the ``record.a.b`` attribute chains of its syntax tree) and every recipient or task
  assignee given by ``field``.
* The platform loads those records (one query per target form and hop, live records only)
  and passes them as ``Event.related``: **hop path -> entry**. A hop path is the chain of
  relation fields from the triggering record joined with ``/`` (``"record/patient"``,
  ``"record/patient/primary_doctor"``). An entry is ``{"id", "form", "data", "user"?}``:
  ``data`` holds the record's ``id`` and the fields the rules read (``null`` when not
  stored), ``user`` the user name of a staff record (its form's ``user_field``). An entry
  is ``null`` when the relation is empty, names no live record (a dangling id, a deleted
  record) or is not readable: every field read through it is then ``null``.
* The evaluation context gets the entries as ``related`` (beside ``record``, ``old``, ...;
  rules cannot name it, :func:`~.check.check` refuses the root). Before a JsonLogic
  expression is evaluated, each ``var`` whose path runs through a loaded hop is rewritten
  to read under it (:func:`read_related`: ``record.patient.name`` reads
  ``related.record/patient.data.name``); so the shared evaluator is untouched.
* Templates are rendered from the stored JSON context at delivery. :func:`related_view`
  gives Jinja a ``record`` whose loaded relation values are :class:`RelatedValue` s: they
  print and compare as the id, and their attributes are the related record's fields.
* A recipient or task assignee ``{"field": "doctor"}`` is the user of the staff record the
  relation points at (:func:`staff_user`): the entry's ``user``.

Paths are worked out from literal paths only: a template that stores a related record in
a variable first (``{% set p = record.patient %}{{ p.name }}``) reads nothing through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, TemplateSyntaxError, nodes

from formloom.engines.forms import FormSpec, field_types
from formloom.engines.forms.fields import RelationField
from formloom.engines.logic import variables

from .spec import (
    CreateRecordAction,
    CreateTaskAction,
    NotifyAction,
    RejectAction,
    RuleSpec,
    SetAction,
    StartFlowAction,
    UpdateRecordsAction,
    WebhookAction,
)

__all__ = [
    "MAX_HOPS",
    "RELATED",
    "Hop",
    "RelatedValue",
    "merge_hops",
    "path_hops",
    "path_problems",
    "read_related",
    "reads",
    "related_path",
    "related_value_id",
    "related_view",
    "staff_user",
    "template_paths",
]

#: The context key the loaded related records are under.
RELATED = "related"
#: How many relations a path may go through.
MAX_HOPS = 2
_ROOT = "record"
_PARSER = Environment()  # parsing only: templates are rendered in the sandbox


@dataclass(frozen=True)
class Hop:
    """One relation followed from the triggering record: ``path`` (``record/patient``),
    its ``parent`` hop (``record`` for the first), the relation ``field`` of the parent,
    the target ``form`` and the target's ``fields`` the rules read."""

    path: str
    parent: str
    field: str
    form: str
    fields: frozenset[str]

    @property
    def depth(self) -> int:
        return self.path.count("/")


# -- paths ----------------------------------------------------------------------------


def path_problems(
    path: str, form: FormSpec | None, forms: Mapping[str, FormSpec]
) -> list[tuple[str, str]]:
    """``(code, message)`` for a ``record.…`` path that goes through a relation to a field
    the related form lacks, or through more than :data:`MAX_HOPS` relations."""
    problems: list[tuple[str, str]] = []
    _walk(path, form, forms, {}, problems)
    return problems


def path_hops(
    paths: Iterable[str], form: FormSpec | None, forms: Mapping[str, FormSpec]
) -> tuple[Hop, ...]:
    """The hops ``record.…`` ``paths`` go through and the fields they read on each, parents
    first (what :func:`reads` works out for a rule's expressions and templates; a flow's
    own expressions use it too). A path :func:`path_problems` refuses adds what it read
    before the problem."""
    hops: dict[str, Hop] = {}
    problems: list[tuple[str, str]] = []
    for path in sorted(set(paths)):
        _walk(path, form, forms, hops, problems)
    return tuple(sorted(hops.values(), key=lambda hop: (hop.depth, hop.path)))


def _walk(
    path: str,
    form: FormSpec | None,
    forms: Mapping[str, FormSpec],
    hops: dict[str, Hop],
    problems: list[tuple[str, str]],
) -> None:
    """Follow ``path`` (``record.a.b.c``) through relation fields, adding each hop (with the
    field read on it) to ``hops`` and what is wrong to ``problems``."""
    root, _, rest = path.partition(".")
    if root != _ROOT or not rest or form is None:
        return
    segments = rest.split(".")
    hop = _ROOT
    current = form
    for number, name in enumerate(segments):
        if hop != _ROOT:
            if name != "id" and name not in field_types(current):
                problems.append(
                    ("unknown_field", f"{path!r}: form {current.key!r} has no field {name!r}")
                )
                return
            hops[hop] = _with_field(hops[hop], name)
        if number == len(segments) - 1:
            return
        field = current.field(name)
        if not isinstance(field, RelationField):
            return  # a table's rows, a list's items: not a related record
        target = forms.get(field.target)
        if target is None:
            return  # the form check reports a relation to an unknown form
        if hop.count("/") + 1 > MAX_HOPS:
            problems.append(
                (
                    "too_many_hops",
                    f"{path!r}: a rule reads through at most {MAX_HOPS} relations",
                )
            )
            return
        child = f"{hop}/{name}"
        hops.setdefault(child, Hop(child, hop, name, target.key, frozenset()))
        hop, current = child, target


def _with_field(hop: Hop, name: str) -> Hop:
    if name in hop.fields:
        return hop
    return Hop(hop.path, hop.parent, hop.field, hop.form, hop.fields | {name})


def related_path(path: str, related: Mapping[str, Any]) -> str:
    """The path ``path`` reads in a context whose ``related`` holds these hops: a path
    through a loaded hop reads under it, any other path is unchanged."""
    if not path.startswith("record.") or path.count(".") < 2:
        return path
    parts = path.split(".")
    for hops in range(min(MAX_HOPS, len(parts) - 2), 0, -1):
        hop = "/".join(parts[: hops + 1])
        if hop in related:
            return ".".join([RELATED, hop, "data", *parts[hops + 1 :]])
    return path


def read_related(rule: Any, related: Mapping[str, Any]) -> Any:
    """``rule`` with each ``var`` through a loaded hop made to read it (see the module's
    docstring); a rule with no such ``var`` comes back as it is."""
    if isinstance(rule, list):
        items = [read_related(item, related) for item in rule]
        return rule if all(a is b for a, b in zip(items, rule, strict=True)) else items
    if not isinstance(rule, dict):
        return rule
    if len(rule) == 1 and "var" in rule:
        args = rule["var"]
        path = args[0] if isinstance(args, list) and args else args
        if isinstance(path, str):
            moved = related_path(path, related)
            if moved != path:
                return {"var": [moved, *args[1:]] if isinstance(args, list) else moved}
        return rule
    changed = {key: read_related(value, related) for key, value in rule.items()}
    same = all(changed[key] is value for key, value in rule.items())
    return rule if same else changed


def staff_user(related: Mapping[str, Any], field: str) -> str | None:
    """The user name of the staff record the relation ``field`` of the record points at."""
    entry = related.get(f"{_ROOT}/{field}")
    user = entry.get("user") if isinstance(entry, Mapping) else None
    return user if isinstance(user, str) and user else None


# -- what a rule reads ------------------------------------------------------------------


def template_paths(text: str) -> set[str]:
    """The ``record.a.b`` paths a Jinja template reads (attribute or constant-key chains
    from the name ``record``); nothing for a template that does not parse."""
    try:
        tree = _PARSER.parse(text)
    except TemplateSyntaxError:
        return set()
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        chain: list[str] = []
        current: nodes.Node = node
        while True:
            if isinstance(current, nodes.Getattr):
                chain.append(current.attr)
                current = current.node
            elif (
                isinstance(current, nodes.Getitem)
                and isinstance(current.arg, nodes.Const)
                and isinstance(current.arg.value, str)
            ):
                chain.append(current.arg.value)
                current = current.node
            else:
                break
        if isinstance(current, nodes.Name) and current.name == _ROOT and chain:
            found.add(".".join([_ROOT, *reversed(chain)]))
    return found


def _texts(text: str | Mapping[str, str] | None) -> Iterator[str]:
    if isinstance(text, str):
        yield text
    elif text is not None:
        yield from text.values()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _expressions(rule: RuleSpec) -> Iterator[Any]:
    yield rule.condition
    for action in rule.then:
        yield getattr(action, "at", None)
        if isinstance(action, SetAction | CreateRecordAction | UpdateRecordsAction):
            yield from action.values.values()
        if isinstance(action, UpdateRecordsAction):
            yield action.filter
        if isinstance(action, RejectAction) and action.exists is not None:
            yield action.exists.filter
        if isinstance(action, CreateTaskAction):
            yield action.user
            if not (isinstance(action.due, str) and action.due.lstrip("-+").startswith("P")):
                yield action.due
            if action.done_when is not None:
                yield action.done_when.filter
        if isinstance(action, NotifyAction):
            for recipient in action.recipients:
                yield recipient.user
                yield recipient.address
        if isinstance(action, StartFlowAction):
            yield from action.vars.values()


def _templates(rule: RuleSpec) -> Iterator[str]:
    for action in rule.then:
        if isinstance(action, CreateTaskAction):
            yield from _texts(action.title)
            yield from _texts(action.description)
        elif isinstance(action, NotifyAction):
            yield from _texts(action.subject)
            yield from _texts(action.template)
        elif isinstance(action, WebhookAction):
            yield from action.headers.values()
            yield from _strings(action.body)


def _staff_fields(rule: RuleSpec) -> Iterator[str]:
    for action in rule.then:
        if isinstance(action, CreateTaskAction) and action.field is not None:
            yield action.field
        elif isinstance(action, NotifyAction):
            yield from (r.field for r in action.recipients if r.field is not None)


def reads(rule: RuleSpec, forms: Mapping[str, FormSpec]) -> tuple[Hop, ...]:
    """The hops ``rule`` goes through and the fields it reads on each, parents first."""
    form = forms.get(rule.on.form)
    hops: dict[str, Hop] = {}
    problems: list[tuple[str, str]] = []
    paths: set[str] = set()
    for expression in _expressions(rule):
        if expression is not None:
            paths |= variables(expression)
    for text in _templates(rule):
        paths |= template_paths(text)
    for path in sorted(paths):
        _walk(path, form, forms, hops, problems)
    for name in _staff_fields(rule):
        field = form.field(name) if form is not None else None
        target = forms.get(field.target) if isinstance(field, RelationField) else None
        if target is not None and target.user_field is not None:
            path = f"{_ROOT}/{name}"
            hop = hops.setdefault(path, Hop(path, _ROOT, name, target.key, frozenset()))
            hops[path] = _with_field(hop, target.user_field)
    return tuple(sorted(hops.values(), key=lambda hop: (hop.depth, hop.path)))


def merge_hops(groups: Iterable[Iterable[Hop]]) -> tuple[Hop, ...]:
    """The hops of several rules as one: each hop once, with the fields any of them reads."""
    merged: dict[str, Hop] = {}
    for group in groups:
        for hop in group:
            known = merged.get(hop.path)
            merged[hop.path] = (
                hop
                if known is None
                else Hop(hop.path, hop.parent, hop.field, hop.form, known.fields | hop.fields)
            )
    return tuple(sorted(merged.values(), key=lambda hop: (hop.depth, hop.path)))


# -- templates --------------------------------------------------------------------------


class RelatedValue:
    """A relation's value in a template: prints and compares as the id it holds; its
    attributes (``record.patient.name``) are the related record's fields (``None`` for
    every field when the relation is empty or dangling); a relation among them whose hop
    was loaded is again a :class:`RelatedValue`. Internals start with ``_``, which the
    sandbox refuses, so a template sees only the fields."""

    __slots__ = ("_data", "_hop", "_id", "_related")

    def __init__(self, value: Any, hop: str, related: Mapping[str, Any]) -> None:
        entry = related.get(hop)
        data = entry.get("data") if isinstance(entry, Mapping) else None
        self._id = value
        self._hop = hop
        self._related = related
        self._data: Mapping[str, Any] | None = data if isinstance(data, Mapping) else None

    def _field(self, name: str) -> Any:
        if self._data is None:
            return None
        if name not in self._data:
            raise KeyError(name)
        value = self._data[name]
        hop = f"{self._hop}/{name}"
        return RelatedValue(value, hop, self._related) if hop in self._related else value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._field(name)
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: Any) -> Any:
        if not isinstance(name, str) or name.startswith("_"):
            raise KeyError(name)
        return self._field(name)

    def __str__(self) -> str:
        return str(self._id)

    def __repr__(self) -> str:
        return repr(self._id)

    def __bool__(self) -> bool:
        return bool(self._id)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RelatedValue):
            return bool(self._id == other._id)
        return bool(self._id == other)

    def __hash__(self) -> int:
        return hash(self._id)


def related_value_id(value: RelatedValue) -> Any:
    """The id a :class:`RelatedValue` stands for (its JSON value in a typed webhook body)."""
    return value._id


def related_view(context: Mapping[str, Any]) -> Mapping[str, Any]:
    """``context`` as a template sees it: ``record``'s relation values whose hop was loaded
    made :class:`RelatedValue` s; a context without related records as it is."""
    related = context.get(RELATED)
    record = context.get(_ROOT)
    if not isinstance(related, Mapping) or not related or not isinstance(record, Mapping):
        return context
    view = dict(record)
    for hop in related:
        root, _, key = hop.partition("/")
        if root == _ROOT and key and "/" not in key:
            view[key] = RelatedValue(record.get(key), hop, related)
    return {**context, _ROOT: view}
