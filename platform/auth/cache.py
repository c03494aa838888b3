"""A short-lived, per-process memory of resolved credentials.

Resolving a credential is a database round trip on every request; with this cache a
process looks a token up at most once per ``credential_cache_seconds`` (default 5). What it
gives up: a change made by *another* process (revoking a token, disabling a user, changing
roles — e.g. with the CLI, or on another worker) takes effect here within that many seconds.
Changes made through this process's endpoints clear the cache at once. Expiry is still
checked on every request against the platform's clock, and the secret is still compared
(a forged token never matches a cached one).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from formloom.platform.auth.principal import Principal


@dataclass(frozen=True)
class Resolved:
    secret_hash: str
    kind: str
    expires_at: datetime
    principal: Principal  # without the address, which is per request
    until: float  # time.monotonic() after which the entry is stale


@dataclass
class CredentialCache:
    max_entries: int = 10_000
    _entries: OrderedDict[str, Resolved] = field(default_factory=OrderedDict)

    def get(self, token_id: str) -> Resolved | None:
        entry = self._entries.get(token_id)
        if entry is None:
            return None
        if entry.until <= time.monotonic():
            self._entries.pop(token_id, None)
            return None
        return entry

    def put(self, token_id: str, entry: Resolved) -> None:
        self._entries[token_id] = entry
        self._entries.move_to_end(token_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (after any change to users, roles or tokens)."""
        self._entries.clear()

    @staticmethod
    def deadline(seconds: float) -> float:
        return time.monotonic() + seconds
