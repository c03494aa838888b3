"""What the runtime pages share: reading a form's records for a page (the caller's filter,
a report's drill-down, a capped count), naming related records, and showing values.

Every read goes through :class:`RecordService`, so a page shows exactly what the caller's
grants allow (row filters, hidden fields) — the same as the API would answer.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Any

from markupsafe import Markup
from pydantic import ValidationError

from formloom.engines.forms import FormSpec, label_text, title_field, title_of
from formloom.engines.forms.fields import (
    BaseField,
    ComputedField,
    FileField,
    ImageField,
    MultiselectField,
    RatingField,
    RelationField,
    RichTextField,
    SectionField,
    SelectField,
    SignatureField,
    TableField,
    TextareaField,
    UrlField,
    UserField,
)
from formloom.engines.forms.labels import humanize_key
from formloom.engines.forms.localtime import instant_of, local_text, zone_name, zone_of
from formloom.engines.forms.richtext import plain_text, sanitise
from formloom.engines.reports import DrillDown
from formloom.platform.apps.service import InstalledApp
from formloom.platform.errors import BadRequest
from formloom.platform.i18n import Translator
from formloom.platform.people import service as people
from formloom.platform.records.picker import summary_fields, summary_meta
from formloom.platform.records.service import ListQuery, RecordService
from formloom.platform.rules import zones

#: Most ids a drill-down through a relation resolves (the records page says when it stops).
MAX_RELATED_IDS = 5_000
#: A list page counts up to this many records exactly; above it says "10,000+" and the page
#: asks the API for the exact figure after it has been shown.
COUNT_CAP = 1_000
#: Field types a list shows as a column (tables are shown on the record page only).
LISTED = frozenset(
    {
        "text", "textarea", "email", "phone", "url", "select", "multiselect", "relation",
        "date", "datetime", "time", "number", "integer", "boolean", "computed", "file", "image",
        "rating", "signature", "richtext", "autonumber", "user", "department",
    }
)  # fmt: skip
SYSTEM_LABELS = {
    "created_at": "Created",
    "updated_at": "Updated",
    "created_by": "Created by",
    "updated_by": "Updated by",
}


def forms_meta(
    installed: InstalledApp, lang: str, hidden_of: Callable[[str], frozenset[str] | None]
) -> dict[str, Any]:
    """The app's forms as form.js's relation pickers take them: each form's label and the
    field naming its records (:func:`title_field`) with its type, and the fields of the
    options' second line (records/picker.py). ``hidden_of(form)`` gives
    the fields the caller may not see, ``None`` for a form it may not read (left out)."""
    forms: dict[str, Any] = {}
    for key, spec in installed.forms.items():
        hidden = hidden_of(key)
        if hidden is None:
            continue
        field = title_field(spec)
        if field is not None and field.key in hidden:
            field = None
        forms[key] = {
            "label": label_text(spec.label, lang),
            "title_field": field.key if field is not None else None,
            "title_type": field.field_type if field is not None else None,
            "summary": summary_meta(spec, hidden, lang),
        }
    return {"key": installed.key, "label": label_text(installed.spec.label, lang), "forms": forms}


def field_label(field: BaseField, lang: str) -> str:
    return label_text(field.label, lang) or humanize_key(field.key)


def parse_json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest(
            f"`{name}` is not valid JSON.",
            errors=[
                {"in": "query", "parameter": name, "code": "invalid_json", "message": "not JSON"}
            ],
        ) from None


def parse_drill(raw: str | None, form: str) -> DrillDown | None:
    if not raw:
        return None
    try:
        parsed = DrillDown.model_validate(json.loads(raw))
    except (ValueError, ValidationError, RecursionError):
        raise BadRequest(
            "The drill-down is not valid.",
            errors=[
                {"in": "query", "parameter": "drill", "code": "invalid", "message": "not valid"}
            ],
        ) from None
    if parsed.form != form:
        raise BadRequest("The drill-down is for another form.")
    return parsed


async def _related_ids(records: RecordService, app: str, condition: Any) -> tuple[list[str], bool]:
    """Ids of the caller's records of ``condition.form`` matching its filter (capped)."""
    ids: list[str] = []
    cursor = None
    while True:
        page = await records.list(
            app,
            condition.form,
            ListQuery(
                filter=condition.filter, limit=records.max_page_size, cursor=cursor, fields=[]
            ),
        )
        ids += [item["id"] for item in page.items]
        if page.next_cursor is None or len(ids) >= MAX_RELATED_IDS:
            return ids[:MAX_RELATED_IDS], page.next_cursor is not None
        cursor = page.next_cursor


async def combined_filter(
    records: RecordService, app: str, drill: DrillDown | None, rule: Any
) -> tuple[Any, bool]:
    """One JsonLogic filter from a report's drill-down (its conditions on related records
    resolved to ids) and the caller's own filter; and whether the ids were cut."""
    parts: list[Any] = []
    capped = False
    if drill is not None:
        if drill.filter is not None:
            parts.append(drill.filter)
        for related in drill.related:
            ids, cut = await _related_ids(records, app, related)
            capped = capped or cut
            inside = {"in": [{"var": related.via}, ids]}
            parts.append(inside if related.exists else {"!": inside})
    if rule is not None:
        parts.append(rule)
    if not parts:
        return None, capped
    return ({"and": parts} if len(parts) > 1 else parts[0]), capped


async def capped_count(
    records: RecordService, app: str, form: str, rule: Any, cap: int = COUNT_CAP
) -> tuple[int, bool]:
    """How many records the caller may read match ``rule``, counting at most ``cap + 1``
    (cheap on any table size): (count, whether there are more than ``cap``). Call after a
    ``list`` with the same filter, which has already refused a bad one."""
    return await records.count_matching(app, form, rule, cap)


# -- naming related records ----------------------------------------------------------------


def relation_targets(fields: Iterable[BaseField]) -> dict[str, str]:
    """Relation field key -> target form, top level and table columns (``table.col``)."""
    found: dict[str, str] = {}
    for field in fields:
        if isinstance(field, RelationField):
            found[field.key] = field.target
        elif isinstance(field, TableField):
            for column in field.fields:
                if isinstance(column, RelationField):
                    found[f"{field.key}.{column.key}"] = column.target
    return found


def _relation_ids(spec: FormSpec, rows: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    by_target: dict[str, set[str]] = {}
    targets = relation_targets(spec.fields)
    for data in rows:
        for path, target in targets.items():
            top, _, column = path.partition(".")
            value = data.get(top)
            if column and isinstance(value, list):
                values = [row.get(column) for row in value if isinstance(row, dict)]
            else:
                values = [value]
            by_target.setdefault(target, set()).update(v for v in values if isinstance(v, str))
    return by_target


async def titles_for(
    records: RecordService,
    installed: InstalledApp,
    spec: FormSpec,
    rows: Iterable[Mapping[str, Any]],
    lang: str,
    zone: tzinfo | None = None,
) -> dict[str, str]:
    """Record id -> title of every record the rows' relation fields point at, as far as
    the caller may read them (one query per target form); times in ``zone``, or in the
    target record's own zone, named, when the app gives it another (its branch's; one
    query per target form, platform/rules/zones.py)."""
    home = zone_name(zone or UTC)
    titles: dict[str, str] = {}
    for target, ids in _relation_ids(spec, rows).items():
        target_spec = installed.forms.get(target)
        if not ids or target_spec is None:
            continue
        access = records.access(installed, target)
        if not access.allows("read"):
            continue
        ordered = sorted(ids)
        for start in range(0, len(ordered), records.max_page_size):
            chunk = ordered[start : start + records.max_page_size]
            page = await records.list(
                installed.key,
                target,
                ListQuery(filter={"in": [{"var": "id"}, chunk]}, limit=len(chunk)),
            )
            own = await zones.record_zones(
                records.session, installed, target, [item["data"] for item in page.items], home
            )
            for item, name in zip(page.items, own, strict=True):
                named = name != home
                titles[item["id"]] = record_title(
                    target_spec, item["data"], lang, item["id"],
                    zone_of(name) if named else zone, named=named,
                )  # fmt: skip
    # the people the rows' user fields name (user id -> display name): never shown as ids
    titles.update(await people.names(records.session, spec, rows))
    return titles


#: ``created_by`` / ``updated_by`` / a history entry's actor when no person acted: a rule
#: (or a flow's action step, whose actions run as a rule of the step's key), the flow
#: engine, a public link, the command line, the platform itself.
RULE_ACTOR, LINK_ACTOR, CLI_ACTOR = "rule:", "public-link:", "cli:"


def actor_namer(installed: InstalledApp, lang: str) -> Callable[[str | None], str]:
    """The function naming who made a change, as the reader would say it: a person by
    their user name; ``rule:last_visit`` by the rule's label in ``lang`` ("Rule: Last
    visit"), a flow's action step by its label, a rule since removed by its key in words;
    the flow engine, a public form, the command line and the system in words."""
    t = Translator(lang)
    rules = {rule.key: label_text(rule.label, lang) for rule in installed.spec.rules}
    steps = {
        node.key: label_text(node.label, lang) or label_text(flow.label, lang)
        for flow in installed.spec.flows
        for node in flow.nodes
        if node.key not in rules
    }

    def name(actor: str | None) -> str:
        if not actor or actor == "system":
            return t("System")
        if actor == "flows":
            return t("Flows")
        if actor.startswith(RULE_ACTOR):
            key = actor[len(RULE_ACTOR) :]
            if key in steps and key not in rules:
                return t("Flow step: {name}", name=steps[key] or humanize_key(key))
            return t("Rule: {name}", name=rules.get(key) or humanize_key(key))
        if actor.startswith(LINK_ACTOR):
            return t("Public form")
        if actor.startswith(CLI_ACTOR):
            return t("{name} (command line)", name=actor[len(CLI_ACTOR) :])
        return actor

    return name


def short_id(record_id: str) -> str:
    return "#" + record_id[-6:]


# -- showing values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """How values are shown on a page: the language, the clinic's zone (times are shown on
    its clock), titles of related records, and where links go."""

    lang: str
    app: str
    titles: Mapping[str, str]
    forms: Mapping[str, FormSpec]
    record_id: str | None = None  # the record whose files are linked (download permission)
    yes: str = "Yes"
    no: str = "No"
    signature: str = "Signature"  # an image's alt text
    signed: str = "Signed"  # a list cell's link to the signature
    someone: str = "Someone else"  # a user field's person the page cannot name
    zone: tzinfo = UTC
    #: the record's zone is not the deployment's: times name it (``10:00 (Asia/Urumqi)``)
    named: bool = False


def option_label(field: SelectField | MultiselectField, value: Any, lang: str) -> str:
    for option in field.options:
        if option.value == value:
            return label_text(option.label, lang) or option.value
    return str(value)


def show(field: BaseField, value: Any, ctx: Shown, *, record_id: str | None = None) -> Markup:
    """The value as HTML (escaped), for a list cell or the record page."""
    return Markup(renderer(field, ctx)(value, record_id))


EMPTY = '<span class="empty">—</span>'
Render = Callable[[Any, "str | None"], str]


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def renderer(field: BaseField, ctx: Shown) -> Render:
    """The function that shows values of ``field`` as HTML text (escaped). Chosen once per
    column: a list page shows a thousand cells, and deciding per cell was most of its cost."""
    kind = field.result_type if isinstance(field, ComputedField) else field.field_type

    def wrap(inner: Callable[[Any, str | None], str]) -> Render:
        def render(value: Any, record_id: str | None) -> str:
            return EMPTY if _is_empty(value) else inner(value, record_id)

        return render

    if isinstance(field, SelectField | MultiselectField):
        tags = {
            o.value: f'<span class="tag">{_e(option_label(field, o.value, ctx.lang))}</span>'
            for o in field.options
        }

        def tag(item: Any) -> str:
            found = tags.get(item) if isinstance(item, str) else None
            return found or f'<span class="tag">{_e(item)}</span>'

        if isinstance(field, SelectField):

            def one(value: Any, _id: str | None) -> str:
                if value is None or value == "":
                    return EMPTY
                return tag(value)

            return one
        return wrap(
            lambda value, _id: (
                " ".join(tag(i) for i in value) if isinstance(value, list) else tag(value)
            )
        )
    if isinstance(field, RelationField):
        base = f"/apps/{_e(ctx.app)}/forms/{_e(field.target)}/"

        def relation(value: Any, _id: str | None) -> str:
            title = ctx.titles.get(value) if isinstance(value, str) else None
            if title is None:
                return f'<span class="muted">{_e(short_id(str(value)))}</span>'
            return f'<a href="{base}{_e(value)}">{_e(title)}</a>'

        return wrap(relation)
    if kind == "boolean":
        yes = f'<span class="bool" data-value="true">{_e(ctx.yes)}</span>'
        no = f'<span class="bool" data-value="false">{_e(ctx.no)}</span>'
        return lambda value, _id: EMPTY if value is None else (yes if value else no)
    if kind == "datetime":
        zone, named = ctx.zone, ctx.named
        return wrap(lambda value, _id: time_html(str(value), zone, named))
    if isinstance(field, RatingField):
        return wrap(rating_renderer(field, ctx))
    if isinstance(field, UserField):

        def person(value: Any, _id: str | None) -> str:
            ids = value if isinstance(value, list) else [value]
            return ", ".join(
                f'<span class="person">{_e(ctx.titles.get(str(i)) or ctx.someone)}</span>'
                for i in ids
            )

        return wrap(person)
    if isinstance(field, RichTextField):
        if ctx.record_id is None:  # a list cell: the words, on one line
            return wrap(lambda value, _id: _e(" ".join(plain_text(str(value)).split())))
        # Stored values were sanitised on write; sanitising again on the way out costs
        # little and keeps a value written before the allow-list changed in bounds.
        return wrap(lambda value, _id: f'<div class="fl-richtext">{sanitise(str(value))}</div>')
    if isinstance(field, SignatureField):

        def signature(value: Any, record_id: str | None) -> str:
            owner = record_id or ctx.record_id
            if not isinstance(value, dict) or "id" not in value:
                return EMPTY
            href = _e(f"/api/files/{value['id']}" + (f"?record={owner}" if owner else ""))
            if ctx.record_id is None:
                return f'<a class="file" href="{href}">{_e(ctx.signed)}</a>'
            return (
                f'<img class="fl-signature-image" src="{href}" alt="{_e(ctx.signature)}" '
                'data-testid="signature-image">'
            )

        return wrap(signature)
    if isinstance(field, FileField | ImageField):

        def files(value: Any, record_id: str | None) -> str:
            owner = record_id or ctx.record_id
            parts = []
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, dict) or "id" not in item:
                    continue
                href = _e(f"/api/files/{item['id']}" + (f"?record={owner}" if owner else ""))
                name = _e(item.get("name", ""))
                if str(item.get("content_type", "")).startswith("image/") and ctx.record_id:
                    parts.append(
                        f'<a class="file image" href="{href}"><img src="{href}" alt="{name}" '
                        f'loading="lazy"><span>{name}</span></a>'
                    )
                else:
                    parts.append(f'<a class="file" href="{href}">{name}</a>')
            return " ".join(parts)

        return wrap(files)
    if isinstance(field, TableField):
        return wrap(
            lambda value, _id: str(table_html(field, value, ctx)) if isinstance(value, list) else ""
        )
    if isinstance(field, UrlField):
        return wrap(
            lambda value, _id: (
                f'<a href="{_e(value)}" rel="noopener noreferrer nofollow">{_e(value)}</a>'
            )
        )
    if isinstance(field, TextareaField):
        return wrap(lambda value, _id: f'<span class="multiline">{_e(value)}</span>')

    escape = html.escape

    def plain(value: Any, _id: str | None) -> str:
        # the commonest cell, so written out: one call per cell
        kind = type(value)
        if kind is str:
            return escape(value) if value else EMPTY
        if value is None or value == []:
            return EMPTY
        if kind is int:
            return str(value)
        if kind is float:
            return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else str(value)
        return escape(str(value))

    return plain


def rating_renderer(field: RatingField, ctx: Shown) -> Callable[[Any, str | None], str]:
    """A rating as stars on a record page (the number said to screen readers: "3 of 5
    stars"), as the number in a list ("3/5")."""
    t = Translator(ctx.lang)
    top = field.max

    def stars(value: Any, _id: str | None) -> str:
        if not isinstance(value, int) or isinstance(value, bool):
            return _e(value)
        said = _e(t("{n} of {max} stars", n=value, max=top))
        if ctx.record_id is None:
            return (
                f'<span class="fl-rating-number" title="{said}" data-value="{value}">'
                f"{value}/{top}</span>"
            )
        shown = "★" * max(0, min(value, top)) + "☆" * max(0, top - value)
        return (
            f'<span class="fl-stars" data-value="{value}"><span aria-hidden="true">{shown}</span>'
            f'<span class="visually-hidden">{said}</span></span>'
        )

    return stars


def time_html(value: str, zone: tzinfo | None = None, named: bool = False) -> str:
    """A stored UTC instant on the clinic's clock (``zone``; without one, UTC and said so),
    its zone named in the tooltip: ``2026-12-04 10:00`` titled ``2026-12-04 10:00
    (Asia/Shanghai)``. The page's script formats it again in the same zone. ``named`` (a
    record in another zone than the deployment's, e.g. its branch's): the text names the
    zone, ``2026-12-05 10:00 (Asia/Urumqi)``, and the script leaves it alone (it formats
    in the page's zone)."""
    clock = zone or UTC
    local = local_text(value, clock)
    if local is None:
        return f"<time>{_e(value)}</time>"
    # nothing to escape: an instant in the stored form is digits and -T:.Z, the local text
    # digits (a list page writes hundreds of these; escaping was most of their cost)
    if named:
        text = f"{local} ({_zone_label(clock)})"
        return f'<time datetime="{value}" title="{text}">{text}</time>'
    shown = local if zone is not None else f"{local} UTC"
    return (
        f'<time datetime="{value}" title="{local} ({_zone_label(clock)})" data-local>{shown}</time>'
    )


@lru_cache(maxsize=64)
def _zone_label(zone: tzinfo) -> str:
    return _e(zone_name(zone))


def table_html(field: TableField, rows: Sequence[Any], ctx: Shown) -> Markup:
    head = "".join(f'<th scope="col">{_e(field_label(c, ctx.lang))}</th>' for c in field.fields)
    renders = [(c.key, renderer(c, ctx)) for c in field.fields]
    body = "".join(
        "<tr>"
        + "".join(f"<td>{render(row.get(key), None)}</td>" for key, render in renders)
        + "</tr>"
        for row in rows
        if isinstance(row, dict)
    )
    return Markup(
        f'<div class="table-wrap"><table class="subtable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


#: Field types whose values are short and read as one piece (a phone number broken over
#: four lines is hard to dial): their cells do not wrap.
UNBROKEN = frozenset({"phone", "date", "datetime", "time", "integer", "number", "email"})
#: The key of the select field a list card shows as the record's status, beside its title.
STATUS_KEY = "status"
#: How many fields a card shows under the title.
CARD_SIZE = 2


@dataclass(frozen=True)
class Card:
    """What a list shows of each record on a narrow screen (a phone), where the rows become
    cards: the title, the first :data:`CARD_SIZE` fields of the form's ``summary`` (the
    relation picker's second line, records/picker.py: unset, its phone fields, then dates,
    then selects), and the status, the form's select field ``status``, beside the title.
    A field hidden from the reader is never on a card (``summary_fields`` leaves it out)."""

    fields: tuple[str, ...]
    status: str | None

    def roles(self) -> dict[str, str]:
        """Column key -> the ``data-card`` of its cells: ``1``, ``2`` (the fields, in the
        summary's order, whatever the columns' order), ``status``."""
        roles = {key: str(place) for place, key in enumerate(self.fields, 1)}
        if self.status is not None:
            roles[self.status] = "status"
        return roles


def card_of(spec: FormSpec, hidden: frozenset[str]) -> Card:
    """The card of ``spec``'s records for a reader who may not see ``hidden``."""
    status = spec.field(STATUS_KEY)
    shown = isinstance(status, SelectField) and status.key not in hidden
    title = title_field(spec)
    apart = {STATUS_KEY, title.key if title is not None else None}
    fields = [key for key in summary_fields(spec, hidden) if key not in apart]
    return Card(tuple(fields[:CARD_SIZE]), STATUS_KEY if shown else None)


def row_writer(
    app: str,
    form: str,
    columns: Sequence[tuple[str, Render]],
    extra: Sequence[str],
    zone: tzinfo | None = None,
    named: bool = False,
    *,
    card: Mapping[str, str] | None = None,
    unbroken: frozenset[str] = frozenset(),
    actor_name: Callable[[str | None], str] = str,
) -> Callable[[Mapping[str, Any], str], str]:
    """The function writing one list row for this page: the title cell linking to the
    record, then a cell per column (the column picker hides cells by their ``data-col``);
    ``columns`` are (key, renderer). What is the same on every row is prepared once.
    ``named``: the rows' zone is not the deployment's (its times name it). ``card``:
    column key -> its role on a phone's card (``Card.roles``, the ``data-card`` that
    runtime.css shows whatever the column picker hides); ``unbroken``: columns whose
    cells do not wrap; ``actor_name``: who a ``created_by`` / ``updated_by`` names, in
    words (:func:`actor_namer`)."""
    link = f"/apps/{_e(app)}/forms/{_e(form)}/"
    roles = card or {}

    def opening(key: str) -> str:
        attributes = f' data-col="{key}"'
        if key in roles:
            attributes += f' data-card="{roles[key]}"'
        if key in unbroken:
            attributes += ' class="unbroken"'
        return f"<td{attributes}>"

    cells = [(key, opening(key), render) for key, render in columns]
    times = [
        (key, f'<td data-col="{key}" class="unbroken">') for key in extra if key.endswith("_at")
    ]
    texts = [(key, f'<td data-col="{key}">') for key in extra if not key.endswith("_at")]
    escape = html.escape

    def write(item: Mapping[str, Any], title: str) -> str:
        record_id = item["id"]
        shown_id = escape(record_id)
        data = item["data"]
        parts = [
            f'<tr data-id="{shown_id}" data-testid="record-row"><th scope="row" '
            f'class="title-cell"><a href="{link}{shown_id}">{escape(title)}</a></th>'
        ]
        for key, opening, render in cells:
            parts.append(f"{opening}{render(data.get(key), record_id)}</td>")
        for key, opening in times:
            parts.append(f"{opening}{time_html(item[key], zone, named)}</td>")
        for key, opening in texts:
            parts.append(f"{opening}{escape(actor_name(item[key]))}</td>")
        parts.append("</tr>")
        return "".join(parts)

    return write


def listed_fields(spec: FormSpec, hidden: frozenset[str]) -> list[BaseField]:
    return [
        field
        for field in spec.value_fields()
        if field.key not in hidden and field.field_type in LISTED
    ]


def sections(spec: FormSpec, hidden: frozenset[str]) -> list[tuple[BaseField | None, list[Any]]]:
    """The form's fields grouped under their sections (the first group may have none)."""
    groups: list[tuple[BaseField | None, list[Any]]] = [(None, [])]
    for field in spec.fields:
        if isinstance(field, SectionField):
            groups.append((field, []))
        elif field.key not in hidden:
            groups[-1][1].append(field)
    return [(section, fields) for section, fields in groups if fields]


def record_title(
    spec: FormSpec,
    data: Mapping[str, Any],
    lang: str,
    record_id: str,
    zone: tzinfo | None = None,
    *,
    named: bool = False,
) -> str:
    """The text naming a record (its title field; a datetime on the clinic's clock,
    ``zone``: ``2026-12-04 10:00``, without a zone ``2026-12-04 02:00 UTC``; ``named``, a
    record in another zone than the deployment's: ``2026-12-05 10:00 (Asia/Urumqi)``), or
    a short form of its id."""
    title = title_of(spec, data, lang, zone)
    if title is None:
        return short_id(record_id)
    field = title_field(spec) if named and zone is not None else None
    if field is not None and zone is not None and instant_of(data.get(field.key)) is not None:
        return f"{title} ({zone_name(zone)})"
    return title
