"""HL7 FHIR R4 Questionnaires and QuestionnaireResponses ↔ Formloom forms and records.

Pure mapping (docs/fhir.md): no web framework, no database, no clock; imports nothing from
``platform``. :func:`import_questionnaire` gives a form definition and the list of what could
not be mapped (each with its linkId and why; never silently dropped);
:func:`export_questionnaire` the way back; :func:`record_to_response` and
:func:`response_to_data` carry records. SDC ``calculatedExpression`` and
``enableWhenExpression`` are read in a common FHIRPath subset (:mod:`.fhirpath`). A form that
declares a ``Patient`` map has its records written and read as FHIR ``Patient`` resources
(:mod:`.patient`: :func:`record_to_patient`, :func:`patient_to_data`, :func:`search_criteria`).
"""

from formloom.engines.fhir.fhirpath import Answerable, Unsupported, to_fhirpath, to_jsonlogic
from formloom.engines.fhir.patient import (
    PatientData,
    PatientInvalid,
    PatientMap,
    patient_to_data,
    record_to_patient,
    search_criteria,
)
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
    "PatientData",
    "PatientInvalid",
    "PatientMap",
    "QuestionnaireInvalid",
    "ResponseData",
    "Unmapped",
    "Unsupported",
    "export_questionnaire",
    "import_questionnaire",
    "item_path",
    "patient_to_data",
    "record_to_patient",
    "record_to_response",
    "response_to_data",
    "search_criteria",
    "to_fhirpath",
    "to_jsonlogic",
]
