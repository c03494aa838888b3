"""Record history as reverse deltas: what a write stores, and how every version comes back.

The newest version of a record is ``records.data``; each history row keeps, for the keys its
version changed, the values they had before it (``before``) and the keys it added
(``added``) — see :class:`~formloom.platform.models.RecordHistory`. Invariants:

* :func:`delta` is exact and strict: every key whose stored JSON differs between the old and
  the new data is in it (``1``, ``1.0`` and ``true`` differ; so do ``[1]`` and ``[1.0]``).
  Recording a key that did not change would be harmless; missing one would rebuild older
  versions wrongly, so when in doubt a key is recorded.
* :func:`versions` undoes the deltas newest first, from the current data, in one pass; it
  gives every version exactly as a full snapshot would have held it (as a mapping: the
  order of keys is not kept, it is not kept by PostgreSQL's JSONB either).
* A version that changed no data (a delete) has no delta and shares its predecessor's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Delta(Protocol):
    """What a history row holds of its version's change (the row itself, or a dict's view)."""

    @property
    def before(self) -> Mapping[str, Any] | None: ...

    @property
    def added(self) -> Sequence[str] | None: ...


def same(a: Any, b: Any) -> bool:
    """Whether two JSON values are stored alike: equal and of the same JSON kinds throughout
    (Python's ``==`` takes ``True == 1 == 1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(value, b[key]) for key, value in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def delta(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, list[str] | None]:
    """``(before, added)`` of a write from ``old`` to ``new``: the old values of the keys it
    changed or removed, and the keys it added; None for either when empty."""
    before = {k: v for k, v in old.items() if k not in new or not same(v, new[k])}
    added = sorted(key for key in new if key not in old)
    return before or None, added or None


def undo(data: Mapping[str, Any], before: Mapping[str, Any] | None, added: Sequence[str] | None
) -> dict[str, Any]:  # fmt: skip
    """The data before a version, from the data of that version and its delta."""
    previous = dict(data)
    for key in added or ():
        previous.pop(key, None)
    if before:
        previous.update(before)
    return previous


def versions(current: Mapping[str, Any], rows: Sequence[Delta]) -> list[dict[str, Any]]:
    """The data of every version whose history row is in ``rows`` (oldest first, ending with
    the version ``current`` is), in the same order."""
    out: list[dict[str, Any]] = [{} for _ in rows]
    data = dict(current)
    for index in range(len(rows) - 1, -1, -1):
        out[index] = data
        row = rows[index]
        if index and (row.before or row.added):
            data = undo(data, row.before, row.added)
    return out


def changed_keys(changed: Sequence[str] | None, data: Mapping[str, Any]) -> list[str]:
    """A row's changed keys as the API shows them: a create row stores none (NULL), which
    means every key of its version, sorted."""
    return sorted(data) if changed is None else list(changed)
