"""Who hears about record writes besides the rules (the flow engine), and who starts flows.

A write's rules run inside :class:`~formloom.platform.records.service.RecordService`; the
flows that run on a record sit *above* the record service (they write records through it),
so they cannot be called from it by import. They register a :class:`RecordWatcher` here
instead (``platform/flows/service.py`` does at import; the API and the worker import it),
and the record service calls every watcher after an update or a delete of a record of an
app that has flows, in the write's unit of work. A watcher that raises fails the write.
The rules' ``start_flow`` action reaches the flows the same way (:func:`flow_starter`).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

__all__ = ["FlowStarter", "RecordWatcher", "flow_starter", "start_flows_with", "watch", "watchers"]


class RecordWatcher(Protocol):
    async def __call__(
        self, records: Any, app: str, form: str, record_id: str, kind: Literal["updated", "deleted"]
    ) -> None: ...


_WATCHERS: list[RecordWatcher] = []


def watch(watcher: RecordWatcher) -> None:
    """Register ``watcher`` (once: registering the same one again does nothing)."""
    if watcher not in _WATCHERS:
        _WATCHERS.append(watcher)


def watchers() -> tuple[RecordWatcher, ...]:
    return tuple(_WATCHERS)


class FlowStarter(Protocol):
    """Starts a flow for a rule's ``start_flow`` action, in the write's unit of work."""

    async def __call__(
        self, records: Any, app: str, flow: str, record_id: str, vars: dict[str, Any]
    ) -> None: ...


_STARTERS: list[FlowStarter] = []


def start_flows_with(starter: FlowStarter) -> None:
    _STARTERS[:] = [starter]


def flow_starter() -> FlowStarter | None:
    return _STARTERS[0] if _STARTERS else None
