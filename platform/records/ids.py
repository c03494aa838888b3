"""Record ids: 32 hex characters, time-ordered (48-bit milliseconds + 80 random bits), so
the primary key order is creation order and the default list order needs no extra index."""

from __future__ import annotations

import re
import secrets
import time

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    return f"{time.time_ns() // 1_000_000:012x}{secrets.randbits(80):020x}"


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.match(value) is not None


class IdSequence:
    """Ids that also sort in the order they were made within one process (the same
    millisecond's ids would otherwise sort at random): a flow's timeline rows."""

    def __init__(self) -> None:
        self._last = ""

    def next(self) -> str:
        made = new_id()
        if made <= self._last:
            made = f"{int(self._last, 16) + 1:032x}"
        self._last = made
        return made
