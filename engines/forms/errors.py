"""Errors of record validation: one :class:`FieldError` per problem, all raised together.

``FieldError.path`` is a JSON pointer into the record (``/data/phone``,
``/data/items/0/qty``); ``field`` is the top-level field key the problem belongs to (the
table's key for a problem in one of its rows; ``""`` when the data as a whole is wrong);
``code`` is a stable machine-readable code (see docs/forms.md) and ``message`` a sentence for
people ("Phone is required").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one value of a record."""

    field: str
    path: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "path": self.path, "code": self.code, "message": self.message}


class RecordInvalid(Exception):
    """The data of a record breaks its form's rules; ``errors`` lists every problem found.

    ``truncated``: validation stopped early (too many problems); there may be more than
    ``errors`` lists.
    """

    def __init__(self, errors: list[FieldError], *, truncated: bool = False) -> None:
        self.errors = errors
        self.truncated = truncated
        summary = "; ".join(error.message for error in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"record is invalid: {summary}{more}")


def pointer(*parts: str | int) -> str:
    """The JSON pointer ``/data/...`` of a value inside a record."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "/data/" + "/".join(escaped) if parts else "/data"
