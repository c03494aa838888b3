"""Spreadsheet import: a CSV or XLSX file becomes bulk writes of one form.

The steps, each usable alone (the API, the CLI and the import page share them):

1. ``read_table``: the file's header row and data rows (CSV in UTF-8, with or without a byte
   order mark, or GB 18030 as Excel in Chinese saves it; XLSX: the first sheet, through
   openpyxl). At most ``MAX_ROWS`` data rows; empty rows are skipped.
2. ``guess_mapping``: each column to the field it names — by the field's key or its label
   in English or Chinese, compared without case, spaces or punctuation. The client may send
   its own mapping instead (column name -> field key or null); only fields the caller may
   write are offered or accepted.
3. ``convert``: each cell to the field's stored form: dates (2026-12-04, 2026/12/4,
   2026年12月4日, Excel dates and serial numbers; 4/12/2026 only when the day is over 12),
   date-times on the clinic's clock, numbers (1,234.5), booleans (yes/no, true/false, 是/否,
   1/0), option labels in English or Chinese (or the stored value), phone numbers (an Excel
   number loses nothing) and relations by the target's title — a title no readable record
   has, or more than one has, is a row error. A cell that cannot be converted makes its row
   bad, with the reason.
4. ``import_rows``: the good rows go through the bulk writer (platform/records/bulk.py) with
   ``atomic=False`` — every check of a single write, rules included — inside a unit of work
   that a dry run always rolls back, as does an all-or-nothing import with a bad row. So a dry
   run's errors and counts are exactly what the import would meet.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FormSpec, label_text, title_field
from formloom.engines.forms.fields import (
    BooleanField,
    DateField,
    DatetimeField,
    IntegerField,
    MultiselectField,
    NumberField,
    PhoneField,
    RatingField,
    RelationField,
    SelectField,
    TimeField,
    UserField,
)
from formloom.platform.db import Database
from formloom.platform.errors import BadRequest, Unprocessable
from formloom.platform.people import repository as people
from formloom.platform.records.bulk import MAX_ITEMS, BulkItem, BulkWriter
from formloom.platform.records.ids import is_id
from formloom.platform.records.service import ListQuery, RecordService

#: The most data rows one file may hold (a bulk call's bound).
MAX_ROWS = MAX_ITEMS
#: The most row errors listed (the count of bad rows is always exact).
MAX_LISTED_ERRORS = 2_000
#: Field types a spreadsheet cell can fill.
IMPORTABLE = {
    "text", "textarea", "number", "integer", "boolean", "date", "datetime", "time",
    "select", "multiselect", "email", "phone", "url", "relation", "rating", "richtext",
    "user", "department",
}  # fmt: skip
_LOCALES = ("en", "zh-CN")
_TRUE = {"yes", "y", "true", "t", "1", "是", "对", "真", "✓", "✔", "√"}
_FALSE = {"no", "n", "false", "f", "0", "否", "不", "错", "假", "✗", "×"}
_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_WITH_TIME = re.compile(r"^(.+?)[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_SPLIT = re.compile(r"\s*[;,，；、|]\s*")
_EXCEL_EPOCH = date(1899, 12, 30)
#: A relation's target with at most this many readable records is read whole.
_READ_WHOLE = 20_000


class CellError(Exception):
    """A cell the field cannot take; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Table:
    """The file's header and data rows (``numbers``: each row's line or row number in the
    file, as a spreadsheet shows it)."""

    columns: list[str]
    rows: list[list[Any]]
    numbers: list[int]


@dataclass
class Prepared:
    """The rows converted: their data and their conversion errors."""

    data: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


# -- 1. reading ------------------------------------------------------------------------------


def _bad_file(message: str) -> BadRequest:
    return BadRequest(
        message, errors=[{"in": "body", "path": "/file", "code": "file", "message": message}]
    )


def read_table(filename: str, content: bytes) -> Table:
    """The header and the non-empty data rows of a CSV or XLSX file."""
    name = filename.lower()
    if name.endswith((".xlsx", ".xlsm")) or content[:4] == b"PK\x03\x04":
        grid = _xlsx_rows(content)
    elif name.endswith((".csv", ".txt")) or not name.endswith(".xls"):
        grid = _csv_rows(content)
    else:
        raise _bad_file("Old .xls workbooks cannot be read; save the file as .xlsx or .csv.")
    numbered = [(number, row) for number, row in grid if any(_present(cell) for cell in row)]
    if not numbered:
        raise _bad_file("The file has no rows: the first row must name the columns.")
    (_, header), body = numbered[0], numbered[1:]
    columns = [str(cell).strip() if _present(cell) else "" for cell in header]
    while columns and not columns[-1]:
        columns.pop()
    if not columns:
        raise _bad_file("The first row must name the columns.")
    seen: dict[str, int] = {}
    for position, column in enumerate(columns):
        if not column:
            columns[position] = column = f"column {position + 1}"
        if column in seen:
            raise _bad_file(f"Two columns are named '{column}'; rename one.")
        seen[column] = position
    if len(body) > MAX_ROWS:
        raise Unprocessable(
            f"The file has {len(body):,} rows; one import takes at most {MAX_ROWS:,}. "
            "Split it into several files.",
            errors=[
                {
                    "in": "body",
                    "path": "/file",
                    "code": "too_many_rows",
                    "message": f"at most {MAX_ROWS} rows",
                }
            ],  # fmt: skip
        )
    width = len(columns)
    rows = [(list(row) + [None] * width)[:width] for _, row in body]
    return Table(columns, rows, [number for number, _ in body])


def _present(cell: Any) -> bool:
    return cell is not None and not (isinstance(cell, str) and not cell.strip())


def _csv_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise _bad_file("The file is neither UTF-8 nor GB 18030 text, nor an XLSX workbook.")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise _bad_file(f"The CSV cannot be read at line {reader.line_num}: {exc}.") from None


def _xlsx_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook is the client's file
        raise _bad_file("The file is not a readable XLSX workbook.") from None
    try:
        sheet = book.worksheets[0]
        return [
            (number, list(row))
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        book.close()


# -- 2. mapping --------------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Text compared without case, width, spaces or punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def importable_fields(spec: FormSpec, hidden: frozenset[str] | set[str]) -> list[Any]:
    """The fields a column may fill for this caller."""
    return [
        item
        for item in spec.value_fields()
        if getattr(item, "type", None) in IMPORTABLE and item.key not in hidden
    ]


def guess_mapping(fields: Sequence[Any], columns: Sequence[str]) -> dict[str, str | None]:
    """Each column's field: by key, then by label in either language; None: not imported."""
    names: dict[str, str] = {}
    for item in fields:
        for locale in _LOCALES:
            text = label_text(getattr(item, "label", None), locale)
            if text:
                names.setdefault(_norm(text), item.key)
    for item in fields:
        names[_norm(item.key)] = item.key
    mapping: dict[str, str | None] = {}
    taken: set[str] = set()
    for column in columns:
        key = names.get(_norm(column))
        if key is not None and key not in taken:
            taken.add(key)
            mapping[column] = key
        else:
            mapping[column] = None
    return mapping


def check_mapping(
    fields: Sequence[Any], columns: Sequence[str], mapping: Mapping[str, Any]
) -> dict[str, str | None]:
    """A client's mapping, every column named (absent ones are not imported)."""
    known = {item.key for item in fields}
    errors = []
    used: dict[str, str] = {}
    for column, key in mapping.items():
        if column not in columns:
            errors.append((column, "unknown_column", f"The file has no column '{column}'."))
        elif key is not None and (not isinstance(key, str) or key not in known):
            errors.append((column, "unknown_field", f"'{key}' is not a field you may import."))
        elif isinstance(key, str) and key in used:
            errors.append((column, "duplicate", f"'{key}' is already filled by '{used[key]}'."))
        elif isinstance(key, str):
            used[key] = column
    if errors:
        raise Unprocessable(
            "The mapping cannot be used.",
            errors=[
                {
                    "in": "body",
                    "path": f"/mapping/{column.replace('~', '~0').replace('/', '~1')}",
                    "code": code,
                    "message": message,
                }  # fmt: skip
                for column, code, message in errors
            ],
        )
    return {column: mapping.get(column) for column in columns}


# -- 3. converting ---------------------------------------------------------------------------


def _as_text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.isoformat(" ") if cell.time() != time(0) else cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, time):
        return cell.strftime("%H:%M")
    return str(cell).strip()


def _date(cell: Any) -> str:
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, int | float) and not isinstance(cell, bool) and 0 < cell < 2_958_466:
        return (_EXCEL_EPOCH + timedelta(days=int(cell))).isoformat()  # an Excel serial date
    text = _as_text(cell)
    timed = _WITH_TIME.match(text)
    if timed and int(timed.group(2)) == 0 and int(timed.group(3)) == 0:
        text = timed.group(1).strip()
    found = _YMD.match(text)
    if found:
        year, month, day = (int(part) for part in found.groups())
    else:
        found = _DMY.match(text)
        if not found:
            if text.isdigit() and 20_000 < int(text) < 80_000:
                return (_EXCEL_EPOCH + timedelta(days=int(text))).isoformat()
            raise CellError("date", f"'{text}' is not a date (write it as 2026-12-04).")
        first, second, year = (int(part) for part in found.groups())
        if first > 12 >= second:
            day, month = first, second
        elif second > 12 >= first:
            month, day = first, second
        else:
            raise CellError(
                "ambiguous_date",
                f"'{text}' could be day/month or month/day; write it as {year}-MM-DD.",
            )
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise CellError("date", f"'{text}' is not a real date.") from None


def _datetime(cell: Any, zone: tzinfo) -> str:
    if isinstance(cell, datetime):
        moment = cell
    elif isinstance(cell, int | float) and not isinstance(cell, bool) and 0 < cell < 2_958_466:
        moment = datetime(1899, 12, 30) + timedelta(days=float(cell))
    else:
        text = _as_text(cell)
        try:
            moment = datetime.fromisoformat(text.replace("/", "-"))
        except ValueError:
            timed = _WITH_TIME.match(text)
            if not timed:
                raise CellError(
                    "datetime", f"'{text}' is not a date and time (write 2026-12-04 10:00)."
                ) from None
            day = date.fromisoformat(_date(timed.group(1)))
            hour, minute, second = (int(timed.group(i) or 0) for i in (2, 3, 4))
            try:
                moment = datetime.combine(day, time(hour, minute, second))
            except ValueError:
                raise CellError("datetime", f"'{text}' is not a real time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)  # on the clinic's clock
    return moment.isoformat(timespec="seconds")


def _number(cell: Any, integer: bool) -> int | float:
    if isinstance(cell, bool):
        raise CellError("number", f"'{cell}' is not a number.")
    if isinstance(cell, int | float):
        number: float = cell
    else:
        text = _as_text(cell)
        cleaned = re.sub(r"[\s,¥￥$€£]", "", text)
        try:
            number = float(cleaned)
        except ValueError:
            raise CellError("number", f"'{text}' is not a number.") from None
    if integer:
        if not float(number).is_integer():
            raise CellError("integer", f"'{_as_text(cell)}' is not a whole number.")
        return int(number)
    return int(number) if isinstance(number, int) else number


def _boolean(cell: Any) -> bool:
    if isinstance(cell, bool):
        return cell
    text = _norm(_as_text(cell)) or _as_text(cell)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CellError("boolean", f"'{_as_text(cell)}' is not yes or no (yes/no, 是/否, 1/0).")


def _choices(item: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for option in item.options:
        for locale in _LOCALES:
            text = label_text(option.label, locale) if option.label is not None else ""
            if text:
                found.setdefault(_norm(text), option.value)
    for option in item.options:
        found[_norm(option.value)] = option.value
    return found


def _choice(item: Any, text: str, choices: dict[str, str]) -> str:
    value = choices.get(_norm(text))
    if value is None:
        shown = ", ".join(
            label_text(option.label, "en") if option.label is not None else option.value
            for option in item.options[:12]
        )
        raise CellError("option", f"'{text}' is not one of the options ({shown}).")
    return value


class Converter:
    """Converts the cells of a table for one form, for one caller (relations by title are
    looked up among the records the caller may read)."""

    def __init__(self, service: RecordService, app: str, spec: FormSpec, zone: tzinfo) -> None:
        self.service = service
        self.app = app
        self.spec = spec
        self.zone = zone
        self._choices: dict[str, dict[str, str]] = {}
        #: relation field -> title (normalised) -> ids of readable records with that title
        self._titles: dict[str, dict[str, list[str]]] = {}
        #: a member's username, or display name (normalised) -> their ids
        self._people: dict[str, list[str]] = {}

    async def prepare(self, table: Table, mapping: Mapping[str, str | None]) -> Prepared:
        pairs = [
            (position, self.spec.field(key))
            for position, column in enumerate(table.columns)
            if (key := mapping.get(column)) is not None
        ]
        for _, item in pairs:
            if isinstance(item, RelationField):
                wanted = {
                    _as_text(row[position])
                    for position, other in pairs
                    if other is item
                    for row in table.rows
                    if _present(row[position])
                }
                await self._load_titles(item, wanted)
        if any(isinstance(item, UserField) for _, item in pairs):
            await self._load_people()
        out = Prepared()
        for index, row in enumerate(table.rows):
            data: dict[str, Any] = {}
            for position, item in pairs:
                assert item is not None
                cell = row[position]
                try:
                    data[item.key] = self.cell(item, cell)
                except CellError as error:
                    out.errors.setdefault(index, []).append(
                        {
                            "column": table.columns[position],
                            "field": item.key,
                            "code": error.code,
                            "message": error.message,
                        }  # fmt: skip
                    )
            out.data.append(data)
        return out

    def cell(self, item: Any, cell: Any) -> Any:
        """The stored form of one cell (None: empty)."""
        if not _present(cell):
            return None
        if isinstance(item, DateField):
            return _date(cell)
        if isinstance(item, DatetimeField):
            return _datetime(cell, self.zone)
        if isinstance(item, TimeField):
            return cell.strftime("%H:%M") if isinstance(cell, time | datetime) else _as_text(cell)
        if isinstance(item, IntegerField | RatingField):
            return _number(cell, integer=True)
        if isinstance(item, NumberField):
            return _number(cell, integer=False)
        if isinstance(item, BooleanField):
            return _boolean(cell)
        if isinstance(item, SelectField | MultiselectField):
            choices = self._choices.get(item.key)
            if choices is None:
                choices = self._choices[item.key] = _choices(item)
            if isinstance(item, SelectField):
                return _choice(item, _as_text(cell), choices)
            parts = [part for part in _SPLIT.split(_as_text(cell)) if part]
            return [_choice(item, part, choices) for part in parts]
        if isinstance(item, RelationField):
            return self._relation(item, _as_text(cell))
        if isinstance(item, UserField):
            text = _as_text(cell)
            if not item.multiple:
                return self._person(text)
            return [self._person(part) for part in _SPLIT.split(text) if part]
        if isinstance(item, PhoneField):
            return _as_text(cell)
        return _as_text(cell)

    async def _load_titles(self, item: RelationField, wanted: set[str]) -> None:
        titles: dict[str, list[str]] = {}
        self._titles[item.key] = titles
        installed = await self.service.catalog.get(self.service.session, self.app)
        target = installed.form(item.target)
        named_by = title_field(target)
        names = sorted(text for text in wanted if not is_id(text))
        if named_by is None or not names:
            return
        access = self.service.access(installed, item.target)
        if not access.allows("read") or named_by.key in access.hidden:
            return
        # a small target is read whole, so titles match without case or spacing; a large
        # one (patients) by the exact titles in the file
        small = await self.service.count(self.app, item.target) <= _READ_WHOLE
        chunks = [None] if small else [names[i : i + 500] for i in range(0, len(names), 500)]
        for chunk in chunks:
            condition = None if chunk is None else {"in": [{"var": named_by.key}, chunk]}
            cursor = None
            while True:
                page = await self.service.list(
                    self.app,
                    item.target,
                    ListQuery(
                        filter=condition,
                        limit=self.service.max_page_size,
                        cursor=cursor,
                        fields=[named_by.key],
                    ),
                )
                for record in page.items:
                    title = record["data"].get(named_by.key)
                    if isinstance(title, str):
                        titles.setdefault(_norm(title), []).append(record["id"])
                cursor = page.next_cursor
                if cursor is None:
                    break

    async def _load_people(self) -> None:
        """The app's members by username and by display name (a cell names a person by
        either, or by their user id)."""
        members = await people.members(self.service.session, self.app, "", 100_000)
        for user in members:
            for name in {user.username.casefold(), _norm(user.display_name or "")} - {""}:
                self._people.setdefault(name, []).append(user.id)
        for user in members:
            self._people[user.id] = [user.id]

    def _person(self, text: str) -> str:
        found = self._people.get(text.strip().casefold()) or self._people.get(_norm(text), [])
        found = list(dict.fromkeys(found))
        if len(found) == 1:
            return found[0]
        if found:
            raise CellError(
                "ambiguous_user", f"{len(found)} members are named '{text}'; use their username."
            )
        raise CellError("user", f"No member of this app is named '{text}'.")

    def _relation(self, item: RelationField, text: str) -> str:
        if is_id(text):
            return text  # an id: checked like any relation value by the write itself
        found = self._titles.get(item.key, {}).get(_norm(text), [])
        if len(found) == 1:
            return found[0]
        if found:
            raise CellError(
                "ambiguous_relation",
                f"{len(found)} {item.target} records are named '{text}'; use the record's id.",
            )
        raise CellError("relation", f"No {item.target} record you may read is named '{text}'.")


# -- 4. importing ----------------------------------------------------------------------------


class _Rollback(Exception):
    """Raised inside the unit of work to undo it (a dry run)."""


@dataclass
class Outcome:
    report: dict[str, Any]
    refusals: list[dict[str, Any]]


async def import_rows(
    db: Database,
    make_service: Callable[[AsyncSession], RecordService],
    app: str,
    form: str,
    table: Table,
    *,
    filename: str,
    mapping: Mapping[str, Any] | None,
    upsert: str | None,
    dry_run: bool,
    skip_bad_rows: bool,
    zone: tzinfo,
    locale: str = "en",
) -> Outcome:
    """Map, convert, check and (unless ``dry_run``) write ``table``'s rows; the report."""
    async with db.transaction(write=False) as session:
        service = make_service(session)
        installed, spec = await service.load_form(app, form)
        access = service.access(installed, form)
        fields = importable_fields(spec, access.hidden)
        if mapping is None:
            chosen = guess_mapping(fields, table.columns)
        else:
            chosen = check_mapping(fields, table.columns, mapping)
        if upsert is not None and upsert not in chosen.values():
            raise Unprocessable(
                f"Upsert by '{upsert}' needs a column mapped to it.",
                errors=[
                    {
                        "in": "query",
                        "parameter": "upsert",
                        "code": "unmapped",
                        "message": f"no column is mapped to '{upsert}'",
                    }
                ],  # fmt: skip
            )
        prepared = await Converter(service, app, spec, zone).prepare(table, chosen)
    good = [index for index in range(len(table.rows)) if index not in prepared.errors]
    items = [
        BulkItem(op="upsert", match=upsert, data=_filled(prepared.data[index]))
        if upsert is not None
        else BulkItem(op="create", data=_filled(prepared.data[index]))
        for index in good
    ]
    errors = dict(prepared.errors)
    creates = updates = 0
    refusals: list[dict[str, Any]] = []
    written = False
    columns_of = {key: column for column, key in chosen.items() if key is not None}
    try:
        async with db.transaction() as session:
            service = make_service(session)
            writer = BulkWriter(service, app, form, atomic=False)
            outcomes = await writer.run(items) if items else []
            refusals = writer.refusals
            for outcome in outcomes:
                index = good[outcome.index]
                if outcome.status >= 400:
                    errors[index] = [_row_error(e, columns_of) for e in outcome.errors]
                elif outcome.status == 201:
                    creates += 1
                elif outcome.status == 200:
                    updates += 1
            if dry_run or (errors and not skip_bad_rows):
                raise _Rollback
            written = True
    except _Rollback:
        pass
    listed = [
        {"row": table.numbers[index], **error}
        for index in sorted(errors)
        for error in errors[index]
    ]
    report: dict[str, Any] = {
        "file": filename,
        "rows": len(table.rows),
        "columns": [{"name": column, "field": chosen.get(column)} for column in table.columns],
        "fields": [
            {
                "key": item.key,
                "type": item.type,
                "label": label_text(getattr(item, "label", None), locale) or item.key,
                "required": bool(getattr(item, "required", False)),
            }  # fmt: skip
            for item in fields
        ],
        "upsert": upsert,
        "dry_run": dry_run,
        "skip_bad_rows": skip_bad_rows,
        "bad_rows": len(errors),
        "to_create": creates,
        "to_update": updates,
        "created": creates if written else 0,
        "updated": updates if written else 0,
        "errors": listed[:MAX_LISTED_ERRORS],
        "errors_truncated": len(listed) > MAX_LISTED_ERRORS,
    }
    if not dry_run and errors and not skip_bad_rows:
        raise Unprocessable(
            f"{len(errors)} row(s) are not valid; nothing was imported. Fix them, or import "
            "with skip_bad_rows to import the others.",
            errors=[
                {
                    "path": f"/rows/{e['row']}",
                    "code": e["code"],
                    "message": e["message"],
                    "column": e.get("column"),
                    "field": e.get("field"),
                }  # fmt: skip
                for e in listed[:MAX_LISTED_ERRORS]
            ],
            report=report,
        )
    return Outcome(report, refusals)


def _filled(data: dict[str, Any]) -> dict[str, Any]:
    """The row's values without its empty cells (an empty cell sets nothing)."""
    return {key: value for key, value in data.items() if value is not None}


def _row_error(error: Mapping[str, Any], columns_of: Mapping[str, str]) -> dict[str, Any]:
    key = error.get("field")
    if key is None:
        parts = str(error.get("path", "")).split("/")
        key = parts[4] if len(parts) > 4 and parts[3] == "data" else None
    return {
        "column": columns_of.get(key) if key else None,
        "field": key,
        "code": error.get("code", "invalid"),
        "message": error.get("message", ""),
    }
