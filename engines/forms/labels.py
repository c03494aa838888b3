"""Labels: user-facing text that is either one string or a map of locale to string.

A label such as ``{"en": "Patient", "zh-CN": "患者"}`` is resolved for a locale by
:func:`label_text`: the exact locale, then its language (``zh`` for ``zh-TW``), then any
locale of that language (``zh-CN`` for ``zh``), then English, then the first entry. Engine
messages are written in English, so they use the English (or first) text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, TypeAlias

from pydantic import Field

LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"

LocalizedText: TypeAlias = Annotated[
    dict[
        Annotated[str, Field(pattern=LOCALE_PATTERN)],
        Annotated[str, Field(min_length=1)],
    ],
    # The published schema must refuse a key that is not a locale, as validation does.
    Field(min_length=1, json_schema_extra={"additionalProperties": False}),
]
Label: TypeAlias = Annotated[
    str | LocalizedText,
    Field(
        description=(
            "Text shown to people: one string, or a map of locale to string such as "
            '{"en": "Patient", "zh-CN": "患者"}.'
        )
    ),
]

_WORD_BREAK = re.compile(r"_+")


def label_text(label: str | Mapping[str, str] | None, locale: str = "en") -> str:
    """The text of ``label`` for ``locale`` (``""`` when there is no label)."""
    if label is None:
        return ""
    if isinstance(label, str):
        return label
    if not label:
        return ""
    if locale in label:
        return label[locale]
    language = locale.split("-", 1)[0]
    if language in label:
        return label[language]
    for key, text in label.items():
        if key.split("-", 1)[0] == language:
            return text
    if "en" in label:
        return label["en"]
    for key, text in label.items():
        if key.startswith("en-"):
            return text
    return next(iter(label.values()))


def humanize_key(key: str) -> str:
    """A readable label made from a field key: ``date_of_birth`` -> ``Date of birth``."""
    words = _WORD_BREAK.sub(" ", key).strip()
    return words[:1].upper() + words[1:] if words else key
