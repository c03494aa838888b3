"""The runtime pages clinicians use: an app's home, record lists, generated forms, record
pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
