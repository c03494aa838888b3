"""The flow engine: task graphs that run on one record, defined as data.

A flow (:class:`FlowSpec`) is part of an app definition: user tasks, actions, timers,
gateways, waits and subflows joined by edges. :func:`~.check.check` checks flows at import
with JSON pointers; :func:`advance` moves an instance one event forward and returns its new
state and the effects the host must carry out (tasks to open, timers to arm, actions to
run); :func:`simulate` runs a flow in memory against a script. What a flow reads through
its record's relations (``record.patient.name``) is worked out in :mod:`.related`; the host
loads it and passes it in the :class:`Context`. Like every engine it is pure: no I/O, no
clock (time is an argument), no ``formloom.platform`` import. The concepts and the
semantics are in docs/flows.md.
"""

from __future__ import annotations

from .calendar import BusinessCalendar, CalendarSpec
from .check import check
from .engine import (
    Advance,
    Cancel,
    Context,
    Directory,
    Event,
    FlowInputError,
    FlowRuntimeError,
    MessageSent,
    Person,
    RecordChanged,
    SignerAdded,
    Start,
    StaticDirectory,
    SubflowEnded,
    TaskDone,
    TaskReturned,
    TimerFired,
    advance,
    new_instance,
)
from .simulate import Script, Simulation, simulate
from .spec import FlowSpec
from .state import InstanceState, StateFormatError, state_from_dict

__all__ = [
    "Advance",
    "BusinessCalendar",
    "CalendarSpec",
    "Cancel",
    "Context",
    "Directory",
    "Event",
    "FlowInputError",
    "FlowRuntimeError",
    "FlowSpec",
    "InstanceState",
    "MessageSent",
    "Person",
    "RecordChanged",
    "Script",
    "SignerAdded",
    "Simulation",
    "Start",
    "StateFormatError",
    "StaticDirectory",
    "SubflowEnded",
    "TaskDone",
    "TaskReturned",
    "TimerFired",
    "advance",
    "check",
    "new_instance",
    "simulate",
    "state_from_dict",
]
