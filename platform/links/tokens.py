"""Public link tokens and URLs, below the link and record services (the rules' automation
makes links too, and lies below those services).

A token is ``<link id>.<secret>``; only the SHA-256 of the secret is stored. A link's URL is
``/p/<token>``, absolute when ``FORMLOOM_PUBLIC_BASE_URL`` is set (messages sent to
patients need an absolute URL; the API answers the relative one, as it always has).
"""

from __future__ import annotations

import hashlib
import secrets

_base_url: str | None = None


def configure(base_url: str | None) -> None:
    """Set at start-up from ``FORMLOOM_PUBLIC_BASE_URL``."""
    global _base_url
    _base_url = base_url.rstrip("/") if base_url else None


def base_url() -> str | None:
    return _base_url


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """256 random bits (a fast hash is right for them; argon2 is for passwords)."""
    return secrets.token_urlsafe(32)


def path_of(token: str) -> str:
    return f"/p/{token}"


def public_url(token: str) -> str:
    """The link's full URL, or its path when no public base URL is configured."""
    return f"{_base_url}{path_of(token)}" if _base_url else path_of(token)
