"""Semantic checks of an app definition: what a JSON Schema cannot say.

The JSON Schema of ``formloom.app/v1`` (generated from the pydantic models in
:mod:`.spec`) says what shape each part of a document has. The checks here look at how
the parts fit together: keys that must be unique, names that must refer to something that
exists, labels that must cover every locale the app declares.

They run on the **raw document** — a dict fresh from JSON that may be wrong in any way —
rather than on a parsed ``AppSpec``. Pydantic runs a model's validators only when every part
nested in it is valid, so a check made there would be hidden by, say, a field with an
unknown type elsewhere in the form. Each check here reads only the parts it can (a ``key``
that is a string, a ``fields`` that is a list of objects) and leaves everything else to the
schema, so one import lists every problem at once.

Every problem has a JSON pointer into the document (``path``), an error ``code`` and a
message a person understands. The codes:

=======================  ======================================================================
``duplicate_key``        two forms, fields of a form, columns of a table, roles, or entries of
                         ``rules``/``flows``/``reports``/``dashboards`` share a ``key``
``reserved_key``         a field key is the name of a record column (``id``, ``version``, ...)
``duplicate_option``     two options of a select/multiselect share a value
``duplicate_locale``     ``locales`` lists a locale twice
``unknown_form``         a relation's ``target`` or a migration's ``form`` names no form
``unknown_variable``     a ``var`` in a JsonLogic expression names no field (or a section)
``invalid_expression``   a JsonLogic expression fails the logic engine's static check
``self_reference``       a ``visible_if`` reads its own field
``computed_cycle``       a computed field depends on itself, directly or through others
``unknown_title_field``  ``title_field`` names no field of the form
``invalid_title_field``  ``title_field`` names a field without a single value
``missing_locale``       a ``{locale: text}`` label lacks one of the app's ``locales``
``unknown_field``        a migration renames to, or sets, a key that is not a field of its form;
                         a permission hides or protects a key that is not a field of its form
``unknown_role``         a permission grants to (or ``design`` names) a role the app lacks
``unknown_variable``     (also) a row filter reads a ``$`` name other than ``$user.<attribute>``
=======================  ======================================================================

``duplicate_fhir_resource``: a second form declares the same FHIR resource (``fhir.resource``);
an app's ``/fhir/Patient`` must be the records of one form.

The form engine makes some of the same checks when a ``FormSpec`` is built, with the same
codes and pointers; :func:`merge` keeps one problem per pointer and code. The document must
be plain JSON data with bounded nesting (the platform refuses anything else before it gets
here): the expression analysis of the logic engine recurses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from formloom.engines.apps.permissions import RECORD_COLUMNS
from formloom.engines.forms import FIELD_TYPES, RESERVED_KEYS
from formloom.engines.forms.spec import dependency_cycles
from formloom.engines.logic import check_expression, variables
from formloom.engines.logic.analysis import literal_key

__all__ = ["DefinitionProblem", "document_problems", "escape", "in_document_order", "merge"]

#: Field types whose value is one scalar, so that it can name a record (``title_field``).
SINGLE_VALUE_TYPES = frozenset(
    {"text", "textarea", "number", "integer", "boolean", "date", "datetime", "time",
     "select", "email", "phone", "url", "relation", "computed", "autonumber", "department",
     "rating"}
)  # fmt: skip
#: The lists of keyed entries that the platform keeps as given until their engines land.
ENTRY_LISTS = (
    ("rules", "rule"),
    ("flows", "flow"),
    ("reports", "report"),
    ("dashboards", "dashboard"),
)
#: JsonLogic operators whose body runs once per element: ``var`` there reads the element.
_ITERATORS = frozenset({"map", "filter", "reduce", "all", "some", "none"})
_READERS = frozenset({"val", "exists", "missing", "missing_some"})
_ANY_PATH = "*"
#: Record columns a row filter may read besides fields (``created_by`` = "own records").
_RECORD_COLUMNS = {name: "column" for name in RECORD_COLUMNS}

#: Label properties of each kind of object.
_APP_LABELS = ("label", "description")
_FIELD_LABELS = ("label", "help", "pattern_message")
_OPTION_LABELS = ("label",)

Entries = list[tuple[int, dict[str, Any]]]
#: Names an expression may read -> the type of the field ("section" holds no value).
Scope = dict[str, str]


class DefinitionProblem(BaseModel):
    """One thing wrong with an app definition."""

    path: str
    code: str
    message: str


def document_problems(document: dict[str, Any]) -> list[DefinitionProblem]:
    """Every semantic problem of a raw definition document, in the order found."""
    return _Checks(document).run()


def merge(*groups: Iterable[DefinitionProblem]) -> list[DefinitionProblem]:
    """The problems of all groups, keeping the first of those with the same path and code."""
    seen: set[tuple[str, str]] = set()
    merged: list[DefinitionProblem] = []
    for group in groups:
        for problem in group:
            if (problem.path, problem.code) not in seen:
                seen.add((problem.path, problem.code))
                merged.append(problem)
    return merged


def in_document_order(
    document: Any, problems: Sequence[DefinitionProblem]
) -> list[DefinitionProblem]:
    """``problems`` sorted by where their pointer leads in ``document`` (stable)."""

    def position(problem: DefinitionProblem) -> list[int]:
        node = document
        place: list[int] = []
        for raw in problem.path.split("/")[1:] if problem.path else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                place.append(list(node).index(part))
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                place.append(int(part))
                node = node[int(part)]
            else:
                place.append(1 << 30)  # a missing property: after what is there
                node = None
        return place

    return sorted(problems, key=position)


def escape(part: object) -> str:
    """One reference token of a JSON pointer."""
    return str(part).replace("~", "~0").replace("/", "~1")


def _shown(text: str) -> str:
    """A key quoted for a message, cut short if someone sent an absurdly long one."""
    return repr(text if len(text) <= 60 else text[:60] + "…")


def _entries(node: dict[str, Any], name: str) -> Entries:
    """The objects of list property ``name`` with their indexes; anything else is skipped."""
    items = node.get(name)
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, dict)]


def _string(node: dict[str, Any], name: str) -> str | None:
    value = node.get(name)
    return value if isinstance(value, str) else None


def _heads(rule: Any) -> set[str]:
    """First segments of the record paths a rule reads (``items.0.qty`` -> ``items``)."""
    return {path.split(".", 1)[0] for path in variables(rule) if path and path != _ANY_PATH}


def _variable_sites(rule: Any) -> list[tuple[str, str]]:
    """(JSON pointer within ``rule``, record path) of each operator that reads the record.

    Scoping follows :func:`formloom.engines.logic.variables`: inside an iterator body or a
    ``try`` fallback a ``var`` reads the element or the error, not the record.
    """
    sites: list[tuple[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(rule, "", 0)]
    while stack:
        node, pointer, depth = stack.pop()
        if type(node) is list:
            stack.extend((item, f"{pointer}/{i}", depth) for i, item in enumerate(node))
            continue
        if type(node) is not dict or len(node) != 1:
            continue
        [(op, args)] = node.items()
        if op == "preserve":
            continue
        if type(args) is list:
            arguments = [(arg, f"{pointer}/{escape(op)}/{i}") for i, arg in enumerate(args)]
        else:
            arguments = [(args, f"{pointer}/{escape(op)}")]
        if op == "var":
            key = literal_key(arguments[0][0]) if arguments else None
            if depth == 0 and key:
                sites.append((pointer, key))
            stack.extend((arg, where, depth) for arg, where in arguments)
        elif op in _READERS:
            if depth == 0:
                sites.extend((pointer, name) for name in variables(node))
        elif op in _ITERATORS or op == "try":
            for i, (arg, where) in enumerate(arguments):
                same_scope = i == 0 or (op == "reduce" and i == 2)
                stack.append((arg, where, depth if same_scope else depth + 1))
        else:
            stack.extend((arg, where, depth) for arg, where in arguments)
    return sorted(sites)


def _scope(fields: Entries) -> Scope:
    """Field key -> type for the keyed fields (the first of a duplicated key wins)."""
    scope: Scope = {}
    for _, field in fields:
        key = _string(field, "key")
        if key is not None and key not in scope:
            scope[key] = _string(field, "type") or ""
    return scope


class _Checks:
    """One pass over a document; problems accumulate in ``self.problems``."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.problems: list[DefinitionProblem] = []
        self.forms = _entries(document, "forms")
        self.form_by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        for index, form in self.forms:
            key = _string(form, "key")
            if key is not None:
                self.form_by_key.setdefault(key, (index, form))
        self.locales = self._declared_locales()

    def add(self, path: str, code: str, message: str) -> None:
        self.problems.append(DefinitionProblem(path=path, code=code, message=message))

    def run(self) -> list[DefinitionProblem]:
        self._labels(self.document, "", _APP_LABELS)
        roles = _entries(self.document, "roles")
        self._unique_keys(roles, "/roles", "role")
        for index, role in roles:
            self._labels(role, f"/roles/{index}", _APP_LABELS)
        self._unique_keys(self.forms, "/forms", "form")
        for index, form in self.forms:
            self._form(index, form)
        for name, noun in ENTRY_LISTS:
            self._unique_keys(_entries(self.document, name), f"/{name}", noun)
        self._migrations()
        self._permissions()
        self._design()
        self._fhir_resources()
        return self.problems

    def _fhir_resources(self) -> None:
        """Each FHIR resource (``fhir.resource``, e.g. Patient) is declared by one form."""
        declared: dict[str, str] = {}
        for index, form in self.forms:
            fhir = form.get("fhir")
            resource = fhir.get("resource") if isinstance(fhir, dict) else None
            if not isinstance(resource, str):
                continue
            if resource in declared:
                self.add(
                    f"/forms/{index}/fhir/resource",
                    "duplicate_fhir_resource",
                    f"form {_shown(declared[resource])} already declares the FHIR {resource}",
                )
            else:
                declared[resource] = str(form.get("key"))

    # -- app level -------------------------------------------------------------------------

    def _declared_locales(self) -> list[str]:
        raw = self.document.get("locales", ["en"])
        if not isinstance(raw, list):
            return []
        locales: list[str] = []
        for index, locale in enumerate(raw):
            if not isinstance(locale, str):
                continue
            if locale in locales:
                self.add(
                    f"/locales/{index}",
                    "duplicate_locale",
                    f"locale {_shown(locale)} is listed twice",
                )
            else:
                locales.append(locale)
        return locales

    def _labels(self, node: dict[str, Any], path: str, names: Sequence[str]) -> None:
        """A ``{locale: text}`` label must have a text for every locale of the app."""
        for name in names:
            label = node.get(name)
            if not isinstance(label, dict) or not label:
                continue  # a plain string is locale-neutral; other shapes are schema errors
            missing = [locale for locale in self.locales if locale not in label]
            if missing:
                self.add(
                    f"{path}/{escape(name)}",
                    "missing_locale",
                    f"has no text for {', '.join(missing)} (the app's locales are "
                    f"{', '.join(self.locales)}); give every locale, or one plain string",
                )

    def _unique_keys(self, entries: Entries, prefix: str, noun: str) -> None:
        first: dict[str, int] = {}
        for index, entry in entries:
            key = _string(entry, "key")
            if key is None:
                continue
            if key in first:
                self.add(
                    f"{prefix}/{index}/key",
                    "duplicate_key",
                    f"{noun} key {_shown(key)} is already used by {prefix}/{first[key]}",
                )
            else:
                first[key] = index

    def _known_forms(self) -> str:
        keys = sorted(self.form_by_key)
        return f"forms: {', '.join(keys)}" if keys else "it defines no forms"

    # -- forms -----------------------------------------------------------------------------

    def _form(self, index: int, form: dict[str, Any]) -> None:
        base = f"/forms/{index}"
        form_key = _string(form, "key") or f"#{index}"
        self._labels(form, base, _APP_LABELS)
        fields = _entries(form, "fields")
        self._field_keys(fields, base)
        scope = _scope(fields)
        where = f"a field of form {_shown(form_key)}"
        for position, field in fields:
            path = f"{base}/fields/{position}"
            self._field(field, path, scope, where)
            if field.get("type") == "table":
                self._table(field, path, scope, form_key)
        self._cycles(fields, f"{base}/fields")
        self._title_field(form, fields, base, form_key)

    def _field_keys(self, fields: Entries, base: str) -> None:
        first: dict[str, int] = {}
        for position, field in fields:
            key = _string(field, "key")
            if key is None:
                continue
            path = f"{base}/fields/{position}/key"
            if key in first:
                self.add(
                    path,
                    "duplicate_key",
                    f"field key {_shown(key)} is already used by {base}/fields/{first[key]}",
                )
                continue
            first[key] = position
            if key in RESERVED_KEYS:
                self.add(
                    path,
                    "reserved_key",
                    f"{_shown(key)} is the name of a record column; choose another key",
                )

    def _table(self, table: dict[str, Any], path: str, scope: Scope, form_key: str) -> None:
        columns = _entries(table, "fields")
        table_key = _string(table, "key") or "?"
        first: dict[str, int] = {}
        for position, column in columns:
            key = _string(column, "key")
            if key is None:
                continue
            if key in first:
                self.add(
                    f"{path}/fields/{position}/key",
                    "duplicate_key",
                    f"column key {_shown(key)} is already used by {path}/fields/{first[key]}",
                )
            else:
                first[key] = position
        # A column sees the row's columns over the record's fields (a column shadows a field).
        row_scope = {**scope, **_scope(columns)}
        where = f"a column of table {_shown(table_key)} or a field of form {_shown(form_key)}"
        for position, column in columns:
            self._field(column, f"{path}/fields/{position}", row_scope, where)
        self._cycles(columns, f"{path}/fields")

    def _field(self, field: dict[str, Any], path: str, scope: Scope, where: str) -> None:
        """Checks of one field or table column that need more than the field itself."""
        field_type = field.get("type")
        key = _string(field, "key")
        self._labels(field, path, _FIELD_LABELS)
        target = _string(field, "target")
        if field_type == "relation" and target is not None and target not in self.form_by_key:
            self.add(
                f"{path}/target",
                "unknown_form",
                f"relation points at form {_shown(target)}, which this app does not define "
                f"({self._known_forms()})",
            )
        options = _entries(field, "options")
        seen: dict[str, int] = {}
        for position, option in options:
            self._labels(option, f"{path}/options/{position}", _OPTION_LABELS)
            value = _string(option, "value")
            if value is None:
                continue
            if value in seen:
                self.add(
                    f"{path}/options/{position}/value",
                    "duplicate_option",
                    f"option value {_shown(value)} is already used by {path}/options/{seen[value]}",
                )
            else:
                seen[value] = position
        attributes = ["visible_if"]
        if field_type == "computed":
            attributes.append("formula")
        elif field_type != "section":
            attributes.append("default_expr")
        for attribute in attributes:
            rule = field.get(attribute)
            if not isinstance(rule, dict):
                continue  # a constant (true/false) or a shape the schema refuses
            self.expression(rule, f"{path}/{attribute}", scope, where)
            if attribute == "visible_if" and key is not None and key in _heads(rule):
                self.add(
                    f"{path}/visible_if",
                    "self_reference",
                    f"visible_if of {_shown(key)} reads the field itself; a field cannot "
                    "decide its own visibility",
                )

    def expression(self, rule: Any, path: str, scope: Scope | None, where: str) -> None:
        """Static problems of a JsonLogic rule, and (given a scope) the names it reads.

        Names starting with ``$`` are platform context (``$user``, ``$now``) and always
        allowed; a path computed at run time cannot be checked and is allowed too.
        """
        for inner, message in check_expression(rule):
            self.add(path + inner, "invalid_expression", message)
        if scope is None:
            return
        unknown = set()
        for name in variables(rule):
            head = name.split(".", 1)[0]
            if (
                name != _ANY_PATH
                and not head.startswith("$")
                and scope.get(head) in (None, "section")
            ):
                unknown.add(name)
        if not unknown:
            return
        sites = [site for site in _variable_sites(rule) if site[1] in unknown]
        located = {name for _, name in sites}
        sites.extend(("", name) for name in sorted(unknown - located))
        for inner, name in sites:
            head = name.split(".", 1)[0]
            if scope.get(head) == "section":
                reason = f"{_shown(head)} is a section, which holds no value"
            else:
                reason = f"{_shown(head)} is not {where}"
            self.add(path + inner, "unknown_variable", f"reads {_shown(name)}, but {reason}")

    def _cycles(self, fields: Entries, prefix: str) -> None:
        computed: dict[str, tuple[int, dict[str, Any]]] = {}
        for position, field in fields:
            key = _string(field, "key")
            formula = field.get("formula")
            if field.get("type") != "computed" or not isinstance(formula, dict):
                continue
            if key is not None and key not in computed:
                computed[key] = (position, formula)
        needs = {
            key: [name for name in _heads(formula) if name in computed]
            for key, (_, formula) in computed.items()
        }
        cycles = dependency_cycles(needs)
        for key, (position, _) in computed.items():
            if key in cycles:
                self.add(
                    f"{prefix}/{position}/formula",
                    "computed_cycle",
                    f"computed field {_shown(key)} depends on itself ({' -> '.join(cycles[key])})",
                )

    def _title_field(self, form: dict[str, Any], fields: Entries, base: str, form_key: str) -> None:
        title = _string(form, "title_field")
        if title is None:
            return
        target = next((field for _, field in fields if field.get("key") == title), None)
        if target is None:
            self.add(
                f"{base}/title_field",
                "unknown_title_field",
                f"{_shown(title)} is not a field of form {_shown(form_key)}",
            )
            return
        field_type = target.get("type")
        if field_type in FIELD_TYPES and field_type not in SINGLE_VALUE_TYPES:
            self.add(
                f"{base}/title_field",
                "invalid_title_field",
                f"{_shown(title)} is a {field_type} field; the title field must hold a single "
                "value (text, number, date, select, ...)",
            )

    # -- migrations ------------------------------------------------------------------------

    def _migrations(self) -> None:
        """A migration's form must exist; its renames and sets must name fields of it.

        ``set`` expressions read the record as it was *before* the change, whose fields the
        new definition alone does not know, so only their static check runs here.
        """
        for index, entry in _entries(self.document, "migrations"):
            path = f"/migrations/{index}"
            form_key = _string(entry, "form")
            found = self.form_by_key.get(form_key) if form_key is not None else None
            if form_key is not None and found is None:
                self.add(
                    f"{path}/form",
                    "unknown_form",
                    f"form {_shown(form_key)} is not defined by this app ({self._known_forms()})",
                )
            fields: set[str] | None = None
            if found is not None:
                scope = _scope(_entries(found[1], "fields"))
                fields = {key for key, kind in scope.items() if kind != "section"}
            rename = entry.get("rename")
            if isinstance(rename, dict) and fields is not None:
                for old, new in rename.items():
                    if isinstance(new, str) and new not in fields:
                        self.add(
                            f"{path}/rename/{escape(old)}",
                            "unknown_field",
                            f"renames {_shown(str(old))} to {_shown(new)}, which is not a "
                            f"field of form {_shown(str(form_key))}",
                        )
            values = entry.get("set")
            if not isinstance(values, dict):
                continue
            for key, rule in values.items():
                where = f"{path}/set/{escape(key)}"
                if fields is not None and key not in fields:
                    self.add(
                        where,
                        "unknown_field",
                        f"sets {_shown(str(key))}, which is not a field of form "
                        f"{_shown(str(form_key))}",
                    )
                self.expression(rule, where, None, "")

    # -- design grant ----------------------------------------------------------------------

    def _design(self) -> None:
        """``design`` names declared roles, each once."""
        roles = {
            key for _, role in _entries(self.document, "roles") if (key := _string(role, "key"))
        }
        granted = self.document.get("design")
        seen: set[str] = set()
        for position, role in enumerate(granted if isinstance(granted, list) else []):
            if not isinstance(role, str):
                continue
            if role not in roles:
                known = ", ".join(sorted(roles)) or "none"
                self.add(
                    f"/design/{position}",
                    "unknown_role",
                    f"role {_shown(role)} is not declared in the app's roles ({known})",
                )
            elif role in seen:
                self.add(f"/design/{position}", "duplicate_key", f"role {_shown(role)} is repeated")
            seen.add(role)

    # -- permissions -----------------------------------------------------------------------

    def _permissions(self) -> None:
        """Grants name declared roles and existing forms and fields; row filters read only
        the form's fields, record columns (``created_by``...) and ``$user.<attribute>``.

        That a row filter compiles to SQL is checked once the definition has parsed
        (:func:`formloom.engines.apps.load`), against the built forms.
        """
        roles = {
            key for _, role in _entries(self.document, "roles") if (key := _string(role, "key"))
        }
        for index, entry in _entries(self.document, "permissions"):
            path = f"/permissions/{index}"
            form_key = _string(entry, "form")
            scopes: list[Scope] = []
            if form_key == "*":
                scopes = [_scope(_entries(form, "fields")) for _, form in self.forms]
            elif form_key is not None:
                found = self.form_by_key.get(form_key)
                if found is None:
                    self.add(
                        f"{path}/form",
                        "unknown_form",
                        f"form {_shown(form_key)} is not defined by this app "
                        f"({self._known_forms()})",
                    )
                else:
                    scopes = [_scope(_entries(found[1], "fields"))]
            granted = entry.get("roles")
            for position, role in enumerate(granted if isinstance(granted, list) else []):
                if isinstance(role, str) and role not in roles:
                    known = ", ".join(sorted(roles)) or "none"
                    self.add(
                        f"{path}/roles/{position}",
                        "unknown_role",
                        f"role {_shown(role)} is not declared in the app's roles ({known})",
                    )
            where = (
                "a field of every form"
                if form_key == "*"
                else f"a field of form {_shown(str(form_key))}"
            )
            for name in ("hidden_fields", "read_only_fields"):
                keys = entry.get(name)
                for position, key in enumerate(keys if isinstance(keys, list) else []):
                    if not isinstance(key, str) or not scopes:
                        continue
                    if any(scope.get(key) in (None, "section") for scope in scopes):
                        self.add(
                            f"{path}/{name}/{position}",
                            "unknown_field",
                            f"{_shown(key)} is not {where}",
                        )
            rule = entry.get("row_filter")
            if rule is None or not scopes:
                continue
            common: Scope = {
                key: kind
                for key, kind in scopes[0].items()
                if all(scope.get(key) == kind for scope in scopes[1:])
            }
            self.expression(rule, f"{path}/row_filter", {**_RECORD_COLUMNS, **common}, where)
            for inner, name in _variable_sites(rule):
                if name.startswith("$") and not name.startswith("$user."):
                    self.add(
                        f"{path}/row_filter{inner}",
                        "unknown_variable",
                        f"reads {_shown(name)}; a row filter can read the record and "
                        "$user.<attribute> (e.g. $user.department, $user.username)",
                    )
