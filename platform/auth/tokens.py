"""Credentials on the wire: ``flt_<id>_<secret>``.

``id`` (32 hex) is the public part, the row's key; ``secret`` is 256 random bits (64 hex) of
which only the SHA-256 is stored. A random secret of that size needs no slow hash: nobody
can guess it, so the hash only keeps a leaked table from being usable. Comparison is in
constant time. The same format serves bearer tokens, personal API tokens and the session
cookie; the CSRF token of a session is an HMAC of the session's secret (so it is bound to
the session, cannot be forged without the HttpOnly cookie, and needs no server-side state).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from formloom.platform.records.ids import new_id

PREFIX = "flt_"
WIRE_PATTERN = re.compile(r"^flt_([0-9a-f]{32})_([0-9a-f]{64})$")


@dataclass(frozen=True)
class Credential:
    id: str
    secret: str

    @property
    def wire(self) -> str:
        return f"{PREFIX}{self.id}_{self.secret}"

    @property
    def secret_hash(self) -> str:
        return digest(self.secret)


def generate() -> Credential:
    return Credential(new_id(), secrets.token_hex(32))


def parse(wire: str) -> Credential | None:
    """The id and secret of a well-formed credential, else None."""
    found = WIRE_PATTERN.fullmatch(wire)
    return Credential(found.group(1), found.group(2)) if found else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def matches(credential: Credential, stored_hash: str) -> bool:
    return hmac.compare_digest(credential.secret_hash, stored_hash)


def csrf_token(credential: Credential) -> str:
    key = bytes.fromhex(credential.secret)
    return hmac.new(key, b"formloom-csrf:" + credential.id.encode(), hashlib.sha256).hexdigest()


def csrf_matches(credential: Credential, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(csrf_token(credential).encode(), given.encode("utf-8", "replace"))
