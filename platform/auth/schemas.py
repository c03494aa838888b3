"""Request and response bodies of the auth and users API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=200)
    password: str = Field(max_length=1024)


class TokenOut(BaseModel):
    access_token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: str = "bearer"
    expires_at: str
    expires_in: int = Field(description="Seconds until the token expires.")


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    is_admin: bool
    is_service: bool = Field(
        default=False, description="A service account (an integration): it never signs in."
    )
    attributes: dict[str, Any]
    locale: str | None = Field(description="The web UI's language; null: the browser's.")
    roles: dict[str, list[str]]
    disabled: bool
    disabled_at: str | None
    created_at: str
    updated_at: str


class SessionOut(BaseModel):
    csrf_token: str = Field(description="Send as `X-CSRF-Token` on unsafe requests.")
    expires_at: str
    user: UserOut


class MeOut(UserOut):
    via: str = Field(description="How the request was authenticated.")
    app_scope: str | None = Field(description="The one app the credential may be used for.")


class MePatch(BaseModel):
    """What a user may change of their own account (other fields are the admin's)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    locale: Literal["en", "zh-CN"] | None = Field(
        default=None, description="The web UI's language; null: follow the browser."
    )


class PersonalTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    app: str | None = Field(default=None, description="Only this app may be used with it.")
    days: int | None = Field(default=None, ge=1, description="Lifetime in days.")


class TokenInfo(BaseModel):
    id: str
    kind: str
    name: str | None
    app: str | None
    created_at: str
    expires_at: str
    last_used_at: str | None
    current: bool = Field(description="The credential of this very request.")


class PersonalTokenOut(TokenInfo):
    token: str = Field(description="The token itself; shown this once, never again.")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    password: str | None = Field(
        default=None, max_length=1024, description="Omitted: a random one is generated."
    )
    is_admin: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    service: bool = Field(
        default=False,
        description="A service account for an integration: no password (it never signs in), "
        "not an admin; its tokens come from POST /api/users/{username}/tokens.",
    )


class UserCreated(UserOut):
    password: str | None = Field(
        default=None, description="The generated password, when none was given (shown once)."
    )


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200)
    is_admin: bool | None = None
    attributes: dict[str, Any] | None = None
    disabled: bool | None = None


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=1024)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)
