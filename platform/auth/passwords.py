"""Usernames and passwords: the username rule, argon2id hashing, generated passwords.

Passwords are hashed with argon2id (argon2-cffi). The ``argon2id`` profile is argon2-cffi's
default cost (RFC 9106 "low memory" recommendation); ``fast-test-only`` is a deliberately
cheap argon2id profile so that test suites creating hundreds of users stay fast — never use
it in production. A hash made under other parameters is upgraded at the next sign-in.
"""

from __future__ import annotations

import re
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: Lower-case ASCII letters, digits and ``. _ @ -``, starting with a letter or digit, at most
#: 64 characters: safe in URLs, headers, logs and the audit log (no spaces, no control
#: characters, no CR/LF for header injection).
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
#: Longest password accepted (hashing cost is bounded; nobody types more).
MAX_PASSWORD_LENGTH = 1024


def normalise_username(raw: object) -> str | None:
    """The stored form of a username (lower case), or None if it cannot be one."""
    if not isinstance(raw, str) or not raw.isascii():
        return None
    name = raw.lower()
    return name if USERNAME_PATTERN.fullmatch(name) else None


@cache
def hasher(profile: str) -> PasswordHasher:
    if profile == "fast-test-only":
        return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, hash_len=16, salt_len=8)
    return PasswordHasher()


@cache
def _dummy_hash(profile: str) -> str:
    return hasher(profile).hash(secrets.token_hex(16))


def hash_password(profile: str, password: str) -> str:
    return hasher(profile).hash(password)


def verify_password(profile: str, stored: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs rehash). Without a stored hash (unknown user, no password set) a dummy
    hash is verified instead, so the answer takes as long as for a real user."""
    ph = hasher(profile)
    try:
        ph.verify(stored or _dummy_hash(profile), password)
    except (VerificationError, InvalidHashError):
        return False, False
    if stored is None:
        return False, False
    return True, ph.check_needs_rehash(stored)


def generate_password() -> str:
    """A strong random password (about 143 bits), easy to copy: URL-safe base64."""
    return secrets.token_urlsafe(18)


def password_problem(password: object, min_length: int) -> str | None:
    """Why ``password`` is refused, or None."""
    if not isinstance(password, str):
        return "The password must be a string."
    if len(password) < min_length:
        return f"The password must be at least {min_length} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    return None
