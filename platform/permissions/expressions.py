"""What a caller's own JsonLogic may read: one decision for every place it reaches SQL.

Callers write JsonLogic in list filters, report filters and measure filters, drill-downs and
dashboards; they name fields in sorts, field lists and report dimensions. A field hidden from
them must not change any answer, however its name is written. The decision, made here once:

1. **Names are worked out before anything is compiled.** A key written as an expression that
   reads no data (``{"var": {"cat": ["id_", "number"]}}``, ``{"var": {"if": [true,
   "id_number", "x"]}}``, ``{"missing": {"cat": [...]}}``) is evaluated exactly as the
   compiler and the evaluator would evaluate it, and checked by the name it gives
   (:func:`formloom.engines.logic.variables` with ``now``). A key computed *from data*
   cannot be known beforehand: it is refused wherever the caller has hidden fields (the SQL
   compiler refuses it anyway).
2. **A probe is audited.** Naming a hidden field is answered as the endpoint answers an
   unknown field (lists: 400, as documented; reports: 403 with the pointer), and an audit
   row records who tried which field.
3. **Compilers only see the caller's view.** :func:`caller_forms` gives each form without the
   caller's hidden fields, and without the forms the caller may not read; record lists
   compile against the same view (``RecordService._target`` with the hidden fields left
   out). So a name the check missed is an unknown field, never a read.

Rules and the app's own expressions (row filters, computed fields, rule conditions) are not
the caller's and are compiled against the whole form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from formloom.engines.apps.permissions import FormAccess
from formloom.engines.forms import FormSpec
from formloom.engines.logic import variables
from formloom.engines.logic.analysis import ANY_PATH

__all__ = ["ANY_PATH", "caller_forms", "form_view", "hidden_reads", "probe_audit"]


def hidden_reads(rule: Any, hidden: frozenset[str], *, now: datetime) -> list[str]:
    """The hidden fields ``rule`` reads (top-level keys, sorted), and ``"*"`` if it reads a
    field whose name is computed from data while something is hidden. Empty: nothing hidden
    is read."""
    if not hidden or rule is None:
        return []
    names = {path.split(".", 1)[0] for path in variables(rule, now=now)}
    found = sorted(names & hidden)
    if ANY_PATH in names:
        found.append(ANY_PATH)
    return found


def probe_audit(app: str, form: str, fields: Iterable[str], where: str) -> dict[str, Any]:
    """The audit row of a request that named fields hidden from its caller."""
    return {
        "action": "auth.denied",
        "app": app,
        "form": form,
        "detail": {"reason": "hidden_field", "fields": sorted(set(fields)), "in": where},
    }


def caller_forms(
    forms: Mapping[str, FormSpec], access_of: Callable[[str], FormAccess]
) -> dict[str, FormSpec]:
    """The forms as the caller may read them: each without its hidden fields; a form the
    caller may not read is left out (a relation into it leads nowhere)."""
    view: dict[str, FormSpec] = {}
    for key, form in forms.items():
        access = access_of(key)
        if access.allows("read"):
            view[key] = form_view(form, access.hidden)
    return view


def form_view(form: FormSpec, hidden: frozenset[str]) -> FormSpec:
    """``form`` without the fields in ``hidden`` (and without a hidden title field)."""
    if not hidden:
        return form
    fields = tuple(f for f in form.fields if f.key not in hidden)
    title = form.title_field if form.title_field not in hidden else None
    # a copy, not a new validation: a visible field may still refer to a hidden one
    return form.model_copy(update={"fields": fields, "title_field": title})
