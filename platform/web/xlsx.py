"""XLSX export cells: the export's rows as a workbook with types kept.

Dates are Excel dates, datetimes Excel date-times on the row's clock (a spreadsheet has no
zones; the header names the zone as in the CSV), numbers numbers and booleans booleans;
everything else is text passed through ``engines.reports.cells.cell_text`` — the one
formula neutraliser every CSV and XLSX export uses — and always written as a text cell, so
``=HYPERLINK(...)`` in a name is shown, never run. Characters XML cannot hold (control
characters) are dropped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from formloom.engines.forms.fields import BooleanField, DateField, DatetimeField
from formloom.engines.forms.localtime import instant_of
from formloom.engines.reports.cells import cell_text

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Excel's sheet names: at most 31 characters, none of these.
_SHEET_NAME_BAD = str.maketrans({c: " " for c in "[]:*?/\\"})


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name", "")) if "content_type" in value else json.dumps(value)
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return "; ".join(value)
        if all(isinstance(item, dict) and "content_type" in item for item in value):
            return "; ".join(str(item.get("name", "")) for item in value)
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def value(raw: Any, kind: Any, zone: tzinfo) -> Any:
    """The cell value of a stored value; ``kind`` is the field (or ``"datetime"`` for the
    record's own times, None for text)."""
    if raw is None or raw == "":
        return None
    if isinstance(kind, DateField) and isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    elif (isinstance(kind, DatetimeField) or kind == "datetime") and isinstance(raw, str):
        moment = instant_of(raw)
        if moment is not None:
            try:
                return moment.astimezone(zone).replace(tzinfo=None)
            except OverflowError:
                pass
    elif isinstance(raw, bool):
        return raw if isinstance(kind, BooleanField) or kind is None else str(raw).lower()
    elif isinstance(raw, int | float):
        return raw
    return cell_text(ILLEGAL_CHARACTERS_RE.sub("", _text(raw)))


class Sheet:
    """One write-only worksheet (rows go straight to the file's XML as they come)."""

    def __init__(self, title: str, header: Sequence[str]) -> None:
        self.book = Workbook(write_only=True)
        self.sheet: WriteOnlyWorksheet = self.book.create_sheet(
            (title.translate(_SHEET_NAME_BAD).strip() or "Records")[:31]
        )
        self.append([cell_text(ILLEGAL_CHARACTERS_RE.sub("", name)) for name in header])

    def append(self, values: Sequence[Any]) -> None:
        cells = []
        for item in values:
            cell = WriteOnlyCell(self.sheet, value=item)
            if isinstance(item, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(item, date):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(item, str):
                cell.data_type = "s"  # text, even when it starts with "="
            cells.append(cell)
        self.sheet.append(cells)

    def bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.book.save(buffer)
        return buffer.getvalue()
