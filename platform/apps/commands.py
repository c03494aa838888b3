"""What ``formloom app ...`` prints: a change's plan as a table a person reads in a terminal.

The plan itself is the JSON of :meth:`formloom.engines.forms.plan.Plan.to_dict` (what the
API answers and ``--json`` prints); this module only lays it out.
"""

from __future__ import annotations

from typing import Any

from formloom.engines.forms.plan import ENTRY_LISTS


def render_table(plan: dict[str, Any]) -> str:
    """A plan (``Plan.to_dict()``) as a table a person reads in a terminal."""
    rows = [("FORM", "FIELD", "CHANGE", "CLASS", "RECORDS", "DETAIL")]
    for form in plan.get("forms", []):
        records = "-" if form.get("records") is None else f"{form['records']:,}"
        if form["change"] != "changed" or not form.get("fields"):
            rows.append(
                (form["form"], "", form["change"], form["class"].replace("_", " "), records, "")
            )
            continue
        for change in form["fields"]:
            name = change["field"] or "(form)"
            if change.get("renamed_from"):
                name = f"{change['renamed_from']} -> {change['field']}"
            count = "-" if change.get("records") is None else f"{change['records']:,}"
            if change.get("records_note"):
                count = "<=" + count
            detail = "; ".join(change["reasons"])
            if change.get("covered_by"):
                detail += f" [by {change['covered_by']}]"
            rows.append(
                (
                    form["form"],
                    name,
                    change["change"],
                    change["class"].replace("_", " "),
                    count,
                    detail,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]
    for name in ENTRY_LISTS:
        entries = plan.get(name)
        if entries:
            parts = [f"{verb} {', '.join(keys)}" for verb, keys in entries.items() if keys]
            lines.append(f"{name}: " + "; ".join(parts))
    for flow, count in (plan.get("running_flows") or {}).items():
        lines.append(
            f"flow {flow}: {count} running instance(s) finish on the version they started on"
        )
    summary = plan.get("summary")
    if summary:
        lines.append(
            f"summary: {summary['safe']} safe, {summary['needs_migration']} needing migration, "
            f"{summary['destructive']} destructive"
        )
    for blocked in plan.get("blocked", []):
        lines.append(f"blocked: {blocked['message']}")
    if plan.get("status") == "unchanged":
        lines = ["no changes: the definition is the one installed"]
    return "\n".join(line.rstrip() for line in lines)
