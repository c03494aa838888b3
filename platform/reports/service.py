"""Running reports for a caller: saved or ad hoc, with the caller's permissions.

A report runs with the caller's row filter on its source form (ANDed into the one SQL
statement, so totals never count rows the caller may not see), and refuses — with the
pointer of the offending part — to group by, aggregate or filter on a field hidden from the
caller, or to hop into a form they may not read: an error, never a silent drop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import label_text
from formloom.engines.forms.fields import UserField
from formloom.engines.logic import variables
from formloom.engines.logic.sql import Dialect, FilterError, compile_filter
from formloom.engines.reports import (
    DrillDown,
    PivotError,
    PivotQuery,
    PivotResult,
    PivotSpec,
    compile_pivot,
)
from formloom.engines.reports.charts import Chart, ChartData, ChartText, Series, render_svg
from formloom.engines.reports.definition import (
    SYSTEM_FIELDS,
    ChartSpec,
    DashboardSpec,
    ReportSpec,
)
from formloom.engines.reports.query import RelatedRows, ReportTarget, records_filter_target
from formloom.engines.reports.render import chart_data
from formloom.platform import jsonsafe
from formloom.platform.apps.service import AppCatalog, InstalledApp
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import Forbidden, NotFound, Unprocessable
from formloom.platform.models import Record
from formloom.platform.people import service as people
from formloom.platform.permissions.expressions import ANY_PATH, caller_forms
from formloom.platform.records import projections
from formloom.platform.records.service import RecordService
from formloom.platform.reports import periods
from formloom.platform.rules import zones

#: The records table, as the report engine reads it.
RECORDS = cast(sa.Table, Record.__table__)


@dataclass(frozen=True)
class Ran:
    """A report's result with what is needed to present it."""

    key: str | None
    label: str
    spec: PivotSpec
    result: PivotResult
    chart: ChartSpec | None
    kpi_previous: float | None = None
    #: A KPI's two windows (this period so far and the same days of the last one).
    kpi_windows: periods.Windows | None = None


def _pydantic_problem(exc: ValidationError, prefix: str = "") -> Unprocessable:
    errors = [
        {
            "path": prefix + "/" + "/".join(str(part) for part in err["loc"]),
            "code": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False)
    ]
    return Unprocessable("The pivot spec is not valid.", errors=errors)


def parse_spec(body: Any) -> PivotSpec:
    if not isinstance(body, dict):
        raise Unprocessable(
            "The body must be a pivot spec (a JSON object).",
            errors=[{"path": "", "code": "type", "message": "must be an object"}],
        )
    found = jsonsafe.problems(body)
    if found:
        raise Unprocessable(
            "The pivot spec holds values that cannot be used.",
            errors=[
                {"path": pointer, "code": "invalid_value", "message": message}
                for pointer, message in found
            ],
        )
    try:
        return PivotSpec.model_validate(body, strict=False)
    except ValidationError as exc:
        raise _pydantic_problem(exc) from None


def _references(spec: PivotSpec, now: datetime) -> Iterator[tuple[str, str]]:
    """(pointer, field path) of every field the spec reads; a name written as an expression
    is worked out (see :mod:`formloom.platform.permissions.expressions`), ``"*"`` for a name
    computed from data."""
    for axis in ("rows", "columns"):
        for index, dimension in enumerate(getattr(spec, axis)):
            yield f"/{axis}/{index}/field", dimension.field
    for index, measure in enumerate(spec.measures):
        if measure.field:
            yield f"/measures/{index}/field", measure.field
        if measure.filter is not None:
            for name in sorted(variables(measure.filter, now=now)):
                yield f"/measures/{index}/filter", name
    if spec.filter is not None:
        for name in sorted(variables(spec.filter, now=now)):
            yield "/filter", name


class ReportService:
    def __init__(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        *,
        principal: Principal,
        now: datetime,
        time_zone: str,
        max_cells: int,
    ) -> None:
        self.session = session
        self.catalog = catalog
        self.principal = principal
        self.now = now
        self.time_zone = time_zone
        self.max_cells = max_cells
        #: Per app: the clock its reports are read on (:meth:`zone_of`).
        self._zones: dict[str, str] = {}
        self.records = RecordService(session, catalog, principal=principal, now=now)

    async def zone_of(self, installed: InstalledApp, branch: str | None = None) -> str:
        """The clock the caller reads the app's reports on: the zone of the record the app's
        records take their zone from (docs/time-zones.md) that ``branch`` names (a
        dashboard narrowed to one branch), else that the caller's attribute of the same
        name names (a branch manager's own branch), else the deployment's. Month, weekday
        and hour buckets and KPI periods are counted on it."""
        if branch is None and installed.key in self._zones:
            return self._zones[installed.key]
        zone = self.time_zone
        source = zones.source_of(installed)
        if source is not None and source.targets:
            chosen = branch or self.principal.attributes.get(source.relation)
            if isinstance(chosen, str) and chosen:
                form = next(iter(sorted(source.targets)))
                zone = await zones.record_zone(
                    self.session, installed, form, {source.relation: chosen}, self.time_zone
                )
        self._zones[installed.key] = zone
        return zone

    async def app(self, app: str) -> InstalledApp:
        self.records.require_app(app)
        return await self.catalog.get(self.session, app)

    def _guard(
        self,
        installed: InstalledApp,
        spec: PivotSpec,
        prefix: str,
        projection: sa.Table | None = None,
    ) -> Any:
        """The caller's row condition on the source form; refuses hidden fields."""
        if spec.form not in installed.forms:
            raise Unprocessable(
                f"App '{installed.key}' has no form '{spec.form}'.",
                errors=[
                    {"path": f"{prefix}/form", "code": "unknown_form", "message": "no such form"}
                ],
            )
        access = self.records.allowed(installed, spec.form, "read")
        refused = []
        for pointer, path in _references(spec, self.now):
            head, _, rest = path.partition(".")
            if head in access.hidden or (head == ANY_PATH and access.hidden):
                refused.append((pointer, path))
                continue
            field = installed.forms[spec.form].field(head)
            target = getattr(field, "target", None) if field is not None else None
            if rest and isinstance(target, str) and target in installed.forms:
                hop = self.records.access(installed, target)
                if not hop.allows("read") or rest.split(".")[0] in hop.hidden:
                    refused.append((pointer, path))
        if refused:
            named = sorted({path for _, path in refused if path != ANY_PATH})
            raise Forbidden(
                "The report uses fields your roles may not see"
                + (": " + ", ".join(named) if named else "")
                + ".",
                errors=[
                    {
                        "path": prefix + pointer,
                        "code": "hidden_field",
                        "message": f"'{path}' is hidden from you"
                        if path != ANY_PATH
                        else "a field name computed from data cannot be used where fields "
                        "are hidden from you",
                    }
                    for pointer, path in refused
                ],
                audit={
                    "action": "auth.denied",
                    "app": installed.key,
                    "form": spec.form,
                    "detail": {
                        "reason": "report_hidden_field",
                        "fields": sorted({path for _, path in refused}),
                    },
                },
            )
        return self.records.row_condition(access, "read", installed.forms[spec.form], projection)

    async def run(
        self,
        installed: InstalledApp,
        spec: PivotSpec,
        *,
        prefix: str = "",
        locale: str = "en",
        drill: bool = False,
    ) -> PivotResult:
        """The pivot for the caller; ``drill``: with every cell's drill-down (a dashboard's
        small tiles, ``?drill=inline``) — else :meth:`drill` gives one cell's."""
        await self.zone_of(installed)
        with _pivot_problems(prefix):
            projection = await self._projection(installed, spec)
            query = self._compile(installed, spec, prefix, projection)
            try:
                rows = (await self.session.execute(query.statement)).all()
                others = await self._group_others(query, rows)
            except DBAPIError as exc:  # e.g. a sum or a bin number out of the database's range
                raise _out_of_range(prefix) from exc
            titles = await self._titles(installed, query, rows)
            result: PivotResult = query.reshape(
                rows, locale, drill=drill, titles=titles, others=others
            )
        return result

    async def _group_others(self, query: PivotQuery, rows: Sequence[Any]) -> list[Any] | None:
        """top_per_group's "Other" rows: a second statement over the rows the pivot lists
        (:meth:`PivotQuery.group_other`); None without them."""
        if query.other_statement is None:
            return None
        statement = query.group_other(query.shown(rows)[0])
        if statement is None:
            return None
        return list((await self.session.execute(statement)).all())

    async def drill(
        self,
        installed: InstalledApp,
        spec: PivotSpec,
        row: list[Any],
        column: list[Any],
        *,
        other: bool = False,
        group_other: bool = False,
        prefix: str = "",
    ) -> DrillDown:
        """One cell's drill-down from its coordinates (its row's and column's header keys),
        under the same guard as :meth:`run`: a spec the caller may not run has no drill-down,
        and its filter names only fields the report may read. With top-N the kept values are
        read again (one small query); nothing else of the pivot runs. ``group_other``: the
        cell is its row's group's "Other" (top_per_group): the pivot's statement runs to
        know what the group lists."""
        await self.zone_of(installed)
        with _pivot_problems(prefix):
            projection = await self._projection(installed, spec)
            query = self._compile(installed, spec, prefix, projection)
            kept: list[Any] = []
            if query.kept is not None and (other or (spec.top is not None and not row)):
                try:
                    kept = list((await self.session.execute(query.kept)).all())
                except DBAPIError as exc:
                    raise _out_of_range(prefix) from exc
            listed: list[Any] | None = None
            present: dict[tuple[Any, ...], list[Any]] = {}
            if group_other and spec.top_per_group is not None and spec.top_per_group.other:
                try:
                    rows = (await self.session.execute(query.statement)).all()
                except DBAPIError as exc:
                    raise _out_of_range(prefix) from exc
                listed = query.shown(rows, present)[1].get(tuple(row[:-1]), [])
            elif group_other:
                listed = []  # refused by drill: this report has no such "Other"
            return query.drill(
                row,
                column,
                other=other,
                kept_rows=kept,
                group_kept=listed,
                group_present=present.get(tuple(row[:-1]), ()),
            )

    def _compile(
        self,
        installed: InstalledApp,
        spec: PivotSpec,
        prefix: str,
        projection: sa.Table | None = None,
    ) -> PivotQuery:
        """``projection``: the source form's typed projection (PostgreSQL), if it has one
        ready (:meth:`_projection`)."""
        condition = self._guard(installed, spec, prefix, projection)
        dialect: Dialect = "postgresql" if self.records.dialect == "postgresql" else "sqlite"
        return compile_pivot(
            spec,
            # the caller's view: a name the guard missed is an unknown field, not a read
            caller_forms(installed.forms, lambda form: self.records.access(installed, form)),
            ReportTarget(
                RECORDS,
                installed.key,
                condition,
                related=self._related_rows(installed, dialect),
                projection=projection,
            ),
            dialect=dialect,
            time_zone=self._zones.get(installed.key, self.time_zone),
            now=self.now,
            max_cells=self.max_cells,
        )

    async def _projection(self, installed: InstalledApp, spec: PivotSpec) -> sa.Table | None:
        """The source form's ready typed projection (PostgreSQL), or None."""
        if spec.form not in installed.forms:
            return None  # refused by the guard
        ready = await projections.ready(self.session, installed.key, spec.form)
        return None if ready is None else ready.table()

    def _related_rows(self, installed: InstalledApp, dialect: Dialect) -> RelatedRows:
        """The caller's read row filter on a related form, over the alias it is read
        through: a hop reads a related record only where a plain read of it would."""

        def condition(alias: Any, form: str) -> Any:
            access = self.records.access(installed, form)
            if not access.allows("read"):
                return sa.false()
            rule = access.row_filter("read")
            if rule is None:
                return None
            target = records_filter_target(alias, installed.forms[form], dialect)
            try:
                return compile_filter(rule, target, now=self.now)
            except FilterError:  # as RecordService.row_condition: admit nothing
                return sa.false()

        return condition

    async def _titles(
        self, installed: InstalledApp, query: PivotQuery, rows: Any
    ) -> dict[int, dict[str, str]]:
        """Per relation dimension, the related records' titles (their form's `title_field`):
        the headers show them instead of ids and `sort: label` sorts by them — the id stays
        in `keys` and in drill-downs. Only titles of records the caller may read, of a
        field they may see."""
        out: dict[int, dict[str, str]] = {}
        for plan in query.dims:
            owner = installed.forms.get(plan.ref.target_form or query.spec.form)
            field = owner.field(plan.ref.key) if owner is not None and not plan.ref.system else None
            if isinstance(field, UserField) and plan.kind in ("value", "tags"):
                # people by display name, never their ids (the ids stay in `keys`)
                ids = {v for v in query.dimension_values(rows, plan.index) if isinstance(v, str)}
                named = await people.display_names(self.session, sorted(ids))
                if named:
                    out[plan.index] = named
                continue
            target = getattr(field, "target", None)
            title_form = installed.forms.get(target) if isinstance(target, str) else None
            if title_form is None or title_form.title_field is None or plan.kind != "value":
                continue
            access = self.records.access(installed, title_form.key)
            if not access.allows("read") or title_form.title_field in access.hidden:
                continue
            where = self.records.row_condition(access, "read", title_form)
            ids = {v for v in query.dimension_values(rows, plan.index) if isinstance(v, str)}
            titles = await titles_of(
                self.session, installed.key, title_form.key, title_form.title_field, ids, where
            )
            if titles:
                out[plan.index] = titles
        return out

    def saved(self, installed: InstalledApp, key: str) -> tuple[int, ReportSpec]:
        for index, report in enumerate(installed.spec.reports):
            if report.key == key:
                return index, report
        raise NotFound(f"App '{installed.key}' has no report '{key[:80]}'.")

    async def run_saved(
        self,
        installed: InstalledApp,
        key: str,
        *,
        extra_filter: Any = None,
        chart: ChartSpec | None = None,
        locale: str = "en",
        drill: bool = False,
    ) -> Ran:
        index, report = self.saved(installed, key)
        await self.zone_of(installed)
        spec = with_filter(report.pivot(), extra_filter)
        chart = chart or report.chart
        prefix = f"/reports/{index}"
        previous = None
        found = None
        if chart is not None and chart.type == "kpi" and chart.period_field:
            # a KPI is this period so far against the same days of the previous one (like
            # with like: 1-3 December against 1-3 November): two flat runs
            found = self.periods(installed, spec, chart)
            current_spec = with_filter(spec, found.current_filter, flat=True)
            result = await self.run(
                installed, current_spec, prefix=prefix, locale=locale, drill=drill
            )
            before = with_filter(spec, found.previous_filter, flat=True)
            earlier = await self.run(installed, before, prefix=prefix)
            previous = total_of(earlier, chart.measure or spec.measures[0].key)
        else:
            result = await self.run(installed, spec, prefix=prefix, locale=locale, drill=drill)
        return Ran(key, label_text(report.label, locale), spec, result, chart, previous, found)

    def periods(
        self, installed: InstalledApp, spec: PivotSpec, chart: ChartSpec
    ) -> periods.Windows:
        """The KPI's windows in the clinic's zone (platform/reports/periods.py)."""
        assert chart.period_field is not None
        field = installed.forms[spec.form].field(chart.period_field)
        return periods.windows(
            chart.period_field,
            is_date=field is not None and field.field_type == "date",
            period=chart.period,
            now=self.now,
            # a report's own zone (a branch's report) before the app's clock
            zone=ZoneInfo(spec.time_zone or self._zones.get(installed.key, self.time_zone)),
        )

    async def dashboard(
        self, installed: InstalledApp, key: str, values: dict[str, str], locale: str = "en"
    ) -> tuple[DashboardSpec, list[Ran | Unprocessable | Forbidden]]:
        board = next((d for d in installed.spec.dashboards if d.key == key), None)
        if board is None:
            raise NotFound(f"App '{installed.key}' has no dashboard '{key[:80]}'.")
        check_filter_values(board, values)
        source = zones.source_of(installed)
        if source is not None and values.get(source.relation):
            # narrowed to one branch: its tiles are read on that branch's clock
            await self.zone_of(installed, values[source.relation])
        out: list[Ran | Unprocessable | Forbidden] = []
        for item in board.items:
            _, report = self.saved(installed, item.report)
            conditions = []
            for shared in board.filters:
                field = shared.field_of(report.form)
                form = installed.forms[report.form]
                if field is None or (form.field(field) is None and field not in SYSTEM_FIELDS):
                    continue
                conditions += _shared_condition(shared.type, shared.key, field, values)
            extra = {"and": conditions} if conditions else None
            try:
                out.append(
                    await self.run_saved(
                        installed,
                        item.report,
                        extra_filter=extra,
                        chart=item.chart,
                        locale=locale,
                        drill=True,  # a tile's cells link to their records
                    )
                )
            except (Unprocessable, Forbidden) as problem:  # one tile fails, not the page
                out.append(problem)
        return board, out


def total_of(result: PivotResult, measure: str) -> float | None:
    """A measure's grand total (the single cell of a pivot without dimensions)."""
    cell = result.grand_total or (result.cells[0][0] if result.cells else None)
    value = cell.values.get(measure) if cell is not None else None
    return float(value) if isinstance(value, int | float) else None


async def titles_of(
    session: AsyncSession,
    app: str,
    form: str,
    title_field: str,
    ids: set[str],
    where: Any = None,
) -> dict[str, str]:
    """Record id -> its title, for live records among ``ids`` (within ``where``)."""
    if not ids:
        return {}
    query = select(Record.id, Record.data).where(
        Record.app == app, Record.form == form, Record.deleted_at.is_(None), Record.id.in_(ids)
    )
    if where is not None:
        query = query.where(where)
    rows = (await session.execute(query)).all()
    return {row.id: str(row.data.get(title_field)) for row in rows if row.data.get(title_field)}


def check_filter_values(board: DashboardSpec, values: dict[str, str]) -> None:
    """Shared filter values from a query string: dates must be dates, text must be text a
    database can store."""
    errors = []
    for shared in board.filters:
        names = (
            [f"{shared.key}_from", f"{shared.key}_to"]
            if shared.type == "date_range"
            else [shared.key]
        )
        for name in names:
            value = values.get(name)
            if not value:
                continue
            if shared.type == "date_range":
                try:
                    date.fromisoformat(value)
                except ValueError:
                    errors.append(
                        {
                            "in": "query",
                            "parameter": name,
                            "code": "date",
                            "message": "must be a date (YYYY-MM-DD)",
                        }
                    )
            elif jsonsafe.problems(value) or len(value) > 200:
                errors.append(
                    {
                        "in": "query",
                        "parameter": name,
                        "code": "invalid_value",
                        "message": "cannot be used",
                    }
                )
    if errors:
        raise Unprocessable("The dashboard's filters are not valid.", errors=errors)


def _shared_condition(kind: str, key: str, field: str, values: dict[str, str]) -> list[Any]:
    var = {"var": field}
    if kind == "select":
        value = values.get(key)
        return [{"==": [var, value]}] if value else []
    conditions: list[Any] = []
    if values.get(f"{key}_from"):
        conditions.append({">=": [var, values[f"{key}_from"]]})
    if values.get(f"{key}_to"):
        conditions.append({"<": [var, values[f"{key}_to"]]})
    return conditions


@contextmanager
def _pivot_problems(prefix: str) -> Iterator[None]:
    """A :class:`PivotError` as a 422 whose errors point into the spec at ``prefix``."""
    try:
        yield
    except PivotError as exc:
        raise Unprocessable(
            f"The report cannot be run: {exc.message}",
            errors=[
                {"path": prefix + pointer, "code": code, "message": message}
                for pointer, code, message in exc.issues
            ],
        ) from None


def _out_of_range(prefix: str) -> Unprocessable:
    return Unprocessable(
        "The report cannot be run over these records: a computed value is out of the "
        "database's range (a sum or average of very large numbers, or a bin number; check "
        "the measures' fields, bin widths and edges).",
        errors=[{"path": prefix, "code": "out_of_range", "message": "out of range"}],
    )


def with_filter(spec: PivotSpec, extra: Any, *, flat: bool = False) -> PivotSpec:
    """``spec`` with ``extra`` ANDed into its filter (``flat``: no dimensions, for a KPI)."""
    update: dict[str, Any] = {}
    if extra is not None:
        update["filter"] = extra if spec.filter is None else {"and": [spec.filter, extra]}
    if flat:
        update.update(rows=[], columns=[], top=None, subtotals=False)
    return spec.model_copy(update=update) if update else spec


#: The words charts write themselves, per locale.
CHART_TEXTS = {
    "en": ChartText(),
    "zh-CN": ChartText(no_data="暂无数据", previous="上期", total="合计"),
}


def chart_text(locale: str) -> ChartText:
    return CHART_TEXTS.get(locale, CHART_TEXTS["en"])


def svg_of(
    ran: Ran,
    text: ChartText | None = None,
    locale: str | None = None,
    link: Callable[[DrillDown], str] | None = None,
) -> str:
    """The report's chart (a bar chart of its first measure when it names none); with
    ``link``, every bar, point or slice opens the records behind it."""
    chart = ran.chart or ChartSpec(type="bar")
    measure = chart.measure or ran.spec.measures[0].key
    data = chart_data(ran.result, measure)
    links: dict[tuple[int, int], str] = {}
    if link is not None and chart.type != "kpi":
        rows = [r for r, row in enumerate(ran.result.rows) if not row.subtotal]
        columns = [c for c, column in enumerate(ran.result.columns) if not column.subtotal]
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                drill = ran.result.cells[r][c].drill_down
                if drill is not None:  # a result built without drill-downs links nothing
                    links[(i, j)] = link(drill)
    if chart.type == "kpi":
        data = ChartData([ran.label], [Series(measure, [total_of(ran.result, measure)])])
        if ran.kpi_windows is not None:
            # "previous period: 8" says which days: "1 Nov – 3 Nov: 8"
            _now, then = periods.describe(ran.kpi_windows, locale or "en")
            text = replace(text or chart_text(locale or "en"), previous=then)
    return render_svg(
        Chart(
            type=chart.type,
            title=ran.label,
            data=data,
            x_label=label_text(chart.x_label, locale or "en") if chart.x_label else "",
            y_label=label_text(chart.y_label, locale or "en") if chart.y_label else "",
            text=text or chart_text(locale or "en"),
            previous=ran.kpi_previous,
            links=links,
        )
    )
