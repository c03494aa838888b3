"""Text written into a spreadsheet cell (CSV, XLSX) so that the spreadsheet shows it and
never runs it.

A cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return,
which some spreadsheets skip before looking) is read as a formula by Excel, LibreOffice and
Google Sheets: ``=HYPERLINK("http://x", "click")`` in a patient's name becomes a link in
whoever opens the export. Such text gets a leading apostrophe, which spreadsheets hide and
treat as "this is text" (the OWASP advice on CSV injection). Text that only looks like a
signed number or a phone number (``-3``, ``+86 10 5555 1000``) is left as it is: no
spreadsheet runs it, and people expect it unchanged.

Every export — records, reports, their headers and labels — goes through :func:`cell_text`;
numbers stay numbers.
"""

from __future__ import annotations

import re

__all__ = ["cell_text"]

#: Text a spreadsheet cannot run even though it starts like a formula (+86 10 5555 1000).
PLAIN_NUMBER = re.compile(r"^[+-]?[0-9 ().-]*$")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell_text(text: str) -> str:
    """``text`` as a spreadsheet cell that shows it and cannot run it."""
    if text[:1] in _FORMULA_STARTS and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text
