"""What a reader of a flow instance sees of it when fields of its record are hidden from them.

An instance carries values taken from its record: variables computed from it (the flow's
``vars``, a subflow's starting variables, the results subflows hand back), the values an
action node set, the actions it planned (a webhook's body, a notification's text, with the
record as their template context) and the item a multi-instance task was opened for. A
person who may read the instance but not every field of the record (``hidden`` for their
roles) must not learn a hidden value through any of these, so for them:

* a variable is shown only if the flow defines it with an expression that reads no hidden
  field (directly, through the whole record, through a computed path, or through another
  such variable); variables handed in from outside the definition (the start's ``vars``,
  a parent's) only to the one who started the instance;
* subflow results, planned actions' data and a hidden multi-instance item are left out;
  set values lose their hidden fields;
* the timeline's entries are redacted the same way, entry by entry.

Titles and descriptions of tasks are the flow author's words and stay (as in the inbox).
Admins and readers with nothing hidden see everything. PostgREST's rule was the model:
what a role cannot select it cannot see in any representation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from formloom.engines.flows import FlowSpec
from formloom.engines.logic.analysis import variables

__all__ = ["Redactor"]


def _reads(expression: Any, hidden: set[str], secret_vars: set[str]) -> bool:
    """Whether ``expression`` may read a hidden field of the record or a secret variable."""
    for path in variables(expression):
        if path in ("*", ""):  # a computed path, or the whole context
            return True
        head, _, rest = path.partition(".")
        name = rest.split(".", 1)[0]
        if head == "record" and (not rest or name in hidden):
            return True
        if head == "vars" and (not rest or name in secret_vars):
            return True
        if head == "steps" and (not rest or "results" in path.split(".")):
            return True  # what subflows handed back
    return False


class Redactor:
    """The instance of ``flow`` as a reader with ``hidden`` fields may see it (see the
    module's docstring); ``own_start``: the reader started the instance."""

    def __init__(self, flow: FlowSpec | None, hidden: Iterable[str], *, own_start: bool) -> None:
        self.hidden = set(hidden)
        self.active = bool(self.hidden)
        self.own_start = own_start
        self.flow = flow
        self._secret = self._secret_vars() if self.active else set()

    def _secret_vars(self) -> set[str]:
        defined: Mapping[str, Any] = self.flow.vars if self.flow is not None else {}
        secret: set[str] = set()
        changed = True
        while changed:  # a variable read by a secret variable's expression is secret too
            changed = False
            for name, expression in defined.items():
                if name not in secret and _reads(expression, self.hidden, secret):
                    secret.add(name)
                    changed = True
        return secret

    def _shown_var(self, name: str) -> bool:
        defined = self.flow.vars if self.flow is not None else {}
        if name in defined:
            return name not in self._secret
        return self.own_start

    def vars(self, values: Mapping[str, Any]) -> dict[str, Any]:
        if not self.active:
            return dict(values)
        return {name: value for name, value in values.items() if self._shown_var(name)}

    def steps(self, steps: Mapping[str, Any]) -> dict[str, Any]:
        if not self.active:
            return dict(steps)
        return {
            key: {name: value for name, value in step.items() if name != "results"}
            if isinstance(step, Mapping) else step
            for key, step in steps.items()
        }  # fmt: skip

    def _multi_reads_hidden(self, node_key: Any) -> bool:
        node = self.flow.node(str(node_key)) if self.flow is not None else None
        multi = getattr(node, "multi", None)
        return multi is None or _reads(multi.over, self.hidden, self._secret)

    def effect(self, kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """One timeline entry's data (or a simulated timeline's entry)."""
        out = dict(data)
        if not self.active:
            return out
        if isinstance(out.get("vars"), Mapping):
            if kind == "started":
                out["vars"] = self.vars(out["vars"])
            else:  # a subflow's starting variables: the parent's expressions
                out.pop("vars")
        if isinstance(out.get("values"), Mapping):
            out["values"] = {k: v for k, v in out["values"].items() if k not in self.hidden}
        if isinstance(out.get("actions"), list):
            out["actions"] = [
                {k: v for k, v in action.items() if k not in ("data", "context")}
                if isinstance(action, Mapping) else action
                for action in out["actions"]
            ]  # fmt: skip
        if out.get("item") is not None and self._multi_reads_hidden(out.get("node")):
            out["item"] = None
        return out
