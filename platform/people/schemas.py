"""The people directory's answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PersonOut(BaseModel):
    id: str = Field(description="The user id a user field stores.")
    display_name: str = Field(description="The name pages show.")
    username: str = Field(description="The sign-in name (the picker's second line).")


class PeopleOut(BaseModel):
    items: list[PersonOut]


class DepartmentsOut(BaseModel):
    items: list[str] = Field(description="The app's departments, sorted.")
