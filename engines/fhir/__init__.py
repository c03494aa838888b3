"""HL7 FHIR R4 Questionnaires and QuestionnaireResponses ↔ Formloom forms and records.

Pure mapping (docs/fhir.md): no web framework, no database, no clock; imports nothing from
``platform``. :func:`import_questionnaire` gives a form definition and the list of what could
not be mapped (each with its linkId and why; never silently dropped);
:func:`export_questionnaire` the way back; :func:`record_to_response` and
:func:`response_to_data` carry records. SDC ``calculatedExpression`` and
``enableWhenExpression`` are read in a common FHIRPath subset (:mod:`.fhirpath`).
"""

from formloom.engines.fhir.fhirpath import Answerable, Unsupported, to_fhirpath, to_jsonlogic
from formloom.engines.fhir.questionnaire import (
    Imported,
    QuestionnaireInvalid,
    Unmapped,
    export_questionnaire,
    import_questionnaire,
)
from formloom.engines.fhir.response import (
    ItemProblem,
    ResponseData,
    item_path,
    record_to_response,
    response_to_data,
)

__all__ = [
    "Answerable",
    "Imported",
    "ItemProblem",
    "QuestionnaireInvalid",
    "ResponseData",
    "Unmapped",
    "Unsupported",
    "export_questionnaire",
    "import_questionnaire",
    "item_path",
    "record_to_response",
    "response_to_data",
    "to_fhirpath",
    "to_jsonlogic",
]
