"""The header's search: one term over every form of an app the caller may read.

Each readable form with search fields (platform/records/search.py) is searched through the
record service's list, so row rules, hidden fields and the audit of sensitive reads apply
exactly as on the form's own list; the answer is grouped by form, best matches first.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from formloom.engines.forms import label_text, title_of
from formloom.platform.records import search
from formloom.platform.records.query import ListQuery
from formloom.platform.records.service import RecordService

#: Matches shown per form, and the most a caller may ask for.
PER_FORM = 5
MAX_PER_FORM = 20


async def search_app(
    records: RecordService,
    app: str,
    q: str,
    *,
    per_form: int = PER_FORM,
    lang: str = "en",
    zone: tzinfo | None = None,
) -> dict[str, Any]:
    """``{"q", "groups": [{"form", "label", "items": [{"id", "title", "href"}], "more"}]}``:
    the forms in the app's order, those without a match left out."""
    records.require_app(app)
    term = search.parse_term(q)
    installed = await records.catalog.get(records.session, app)
    groups: list[dict[str, Any]] = []
    if term is None:
        return {"q": q, "groups": groups}
    for spec in installed.spec.forms:
        access = records.access(installed, spec.key)
        if not access.allows("read"):
            continue
        visible = [key for key, _kind in search.search_fields(spec) if key not in access.hidden]
        if not visible:
            continue
        page = await records.list(app, spec.key, ListQuery(q=q, limit=per_form, sort="id"))
        if not page.items:
            continue
        groups.append(
            {
                "form": spec.key,
                "label": label_text(spec.label, lang),
                "items": [
                    {
                        "id": item["id"],
                        "title": title_of(spec, item["data"], lang, zone) or "#" + item["id"][-6:],
                        "href": f"/apps/{app}/forms/{spec.key}/{item['id']}",
                    }
                    for item in page.items
                ],
                "more": page.next_cursor is not None,
                "list_href": f"/apps/{app}/forms/{spec.key}?q={quote(q, safe='')}",
            }
        )
    return {"q": q, "groups": groups}
