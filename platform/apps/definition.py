"""The platform's gate for app definitions: what the database could not store, then the app
engine's checks.

The format and its checks are the app engine's (:mod:`formloom.engines.apps`). What only
the platform knows is what it can store: a NUL character, an unpaired surrogate,
``NaN``/``Infinity`` or nesting deeper than :data:`formloom.platform.jsonsafe.MAX_DEPTH` is
``invalid_value`` and stops everything else (the engine's checks recurse into expressions,
so they never see such a document). Every caller — import, dry run, ``formloom check``,
``formloom app diff``, the catalog reading a stored version — goes through :func:`load`.
"""

from __future__ import annotations

from typing import Any

from formloom.engines import apps
from formloom.engines.apps import AppSpec, DefinitionInvalid, DefinitionProblem
from formloom.platform import jsonsafe

__all__ = ["load"]


def load(document: Any) -> AppSpec:
    """Validate a definition document; raise ``DefinitionInvalid`` with every problem."""
    if isinstance(document, dict):
        unstorable = jsonsafe.problems(document)
        if unstorable:
            raise DefinitionInvalid(
                [DefinitionProblem(path=p, code="invalid_value", message=m) for p, m in unstorable]
            )
    return apps.load(document)
