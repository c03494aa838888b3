"""What a form keeps for exchange with HL7 FHIR (see docs/fhir.md): codes and item identity.

These attributes do not change how a record is validated; they let a form imported from a
FHIR Questionnaire export back as the same Questionnaire (its linkIds, item codes, prefixes,
answer codes, the FHIRPath it was given) and let records travel as QuestionnaireResponses.
Invariant: every attribute is optional and a form without any of them is an ordinary form
(its keys stand in for linkIds on export).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Coding(BaseModel):
    """A code from a code system (FHIR ``Coding``): system, code and display."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = Field(default=None, description="URI of the code system.")
    code: str | None = Field(default=None, description="The code within the system.")
    display: str | None = Field(default=None, description="How the code system names it.")


class FhirItem(BaseModel):
    """How a field (or section) appears as a FHIR Questionnaire item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link_id: str | None = Field(
        default=None, description="The item's linkId when it differs from the field key."
    )
    parent: str | None = Field(
        default=None,
        description="linkId of the enclosing item (a group, or a question with sub-items); "
        "unset at the top level.",
    )
    type: str | None = Field(
        default=None,
        description="The FHIR item type when the field type does not say it (display, "
        "open-choice, reference, quantity, string).",
    )
    code: tuple[Coding, ...] = Field(default=(), description="Codes of the question (item.code).")
    prefix: str | None = Field(default=None, description="The item's prefix (e.g. '1.1').")
    unit: Coding | None = Field(default=None, description="Unit of a quantity item.")
    continues: bool = Field(
        default=False,
        description="A section that only resumes its enclosing group after a nested group or "
        "a display text; it is no item of its own.",
    )
    calculated_expression: str | None = Field(
        default=None,
        description="The FHIRPath (SDC calculatedExpression) this computed field came from.",
    )
    enable_when_expression: str | None = Field(
        default=None,
        description="The FHIRPath (SDC enableWhenExpression) this visible_if came from.",
    )


class FhirForm(BaseModel):
    """How a form appears as a FHIR Questionnaire."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(default=None, description="The Questionnaire's canonical URL.")
    name: str | None = Field(default=None, description="The Questionnaire's computable name.")
