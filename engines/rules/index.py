"""The trigger index: which rules a record event has to look at.

Built once per app version. A record event looks up its ``(form, event)`` bucket — one dict
lookup, whatever the number of rules in the app — and then keeps the rules with no field
filter plus those whose fields intersect the changed fields. Buckets are kept in run order:
descending ``priority``, then ``key``. Disabled rules are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .spec import CreateTaskAction, DateTrigger, RecordTrigger, RuleSpec, ScheduleTrigger

__all__ = ["RuleIndex", "run_order"]


def run_order(rule: RuleSpec) -> tuple[int, str]:
    """Sort key of rules on the same event: higher priority first, then by key."""
    return (-rule.priority, rule.key)


class RuleIndex:
    """Enabled rules grouped by trigger, each group in run order."""

    def __init__(self, rules: Iterable[RuleSpec]) -> None:
        record: dict[tuple[str, str], list[RuleSpec]] = defaultdict(list)
        schedules: list[RuleSpec] = []
        dates: dict[str, list[RuleSpec]] = defaultdict(list)
        self._by_key: dict[str, RuleSpec] = {}
        closing: set[str] = set()
        for rule in rules:
            self._by_key[rule.key] = rule
            if not rule.enabled:
                continue
            closing |= {
                action.done_when.form
                for action in rule.then
                if isinstance(action, CreateTaskAction) and action.done_when is not None
            }
            trigger = rule.on
            if isinstance(trigger, RecordTrigger):
                record[(trigger.form, trigger.event)].append(rule)
            elif isinstance(trigger, ScheduleTrigger):
                schedules.append(rule)
            elif isinstance(trigger, DateTrigger):
                dates[trigger.form].append(rule)
        self._record = {key: tuple(sorted(group, key=run_order)) for key, group in record.items()}
        self._schedules = tuple(sorted(schedules, key=run_order))
        self._dates = {key: tuple(sorted(group, key=run_order)) for key, group in dates.items()}
        self._closing = frozenset(closing)

    def closes_tasks(self, form: str) -> bool:
        """Whether a write of ``form`` may close rule tasks (some ``create_task`` has
        ``done_when`` on it): the platform looks for such tasks only then."""
        return form in self._closing

    def rule(self, key: str) -> RuleSpec | None:
        """The rule with ``key`` (enabled or not)."""
        return self._by_key.get(key)

    def for_event(
        self, form: str, event: str, changed: Iterable[str] | None = None
    ) -> tuple[RuleSpec, ...]:
        """Rules triggered by ``event`` on ``form``; with ``changed``, only those it concerns."""
        group = self._record.get((form, event), ())
        if changed is None:
            return group
        fields = set(changed)
        return tuple(rule for rule in group if watches(rule, fields))

    @property
    def schedules(self) -> tuple[RuleSpec, ...]:
        """Every enabled schedule rule (the platform's tick computes their next runs)."""
        return self._schedules

    def date_rules(self, form: str) -> tuple[RuleSpec, ...]:
        """Date-relative rules over ``form`` (timers to (re)compute when its records change)."""
        return self._dates.get(form, ())

    def date_rules_watching(self, form: str, changed: Iterable[str]) -> tuple[RuleSpec, ...]:
        """Date-relative rules whose date field is among ``changed`` (their timers move)."""
        fields = set(changed)
        return tuple(
            rule
            for rule in self._dates.get(form, ())
            if isinstance(rule.on, DateTrigger) and rule.on.field in fields
        )


def watches(rule: RuleSpec, changed: set[str] | frozenset[str]) -> bool:
    """Whether a record rule's field filter lets a change of ``changed`` through."""
    trigger = rule.on
    if not isinstance(trigger, RecordTrigger) or trigger.fields is None:
        return True
    return not changed.isdisjoint(trigger.fields)
