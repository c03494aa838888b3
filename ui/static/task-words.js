// What the inbox API's refusals mean, in the reader's language: a task action the API
// refused (by its problem code or status) and a field error of a completion (by its error
// code, with the field's own limits). The API's English sentence is the fallback.

import { t } from "/static/i18n.js";

const REFUSALS = {
  task_closed: () => t("This task is already finished or withdrawn."),
  claim_first: () => t("Claim the task before completing it."),
  not_claimed: () => t("The task is not claimed."),
};

export function refusalText(problem) {
  const code = problem.problem?.code;
  if (REFUSALS[code]) return REFUSALS[code]();
  if (problem.status === 403) return t("This task is not yours to act on.");
  if (problem.status === 404) return t("This task is no longer there for you.");
  return problem.message || t("That did not work. Please try again.");
}

export function fieldErrorText(error, field) {
  const known = {
    required: () => t("Fill this in to complete the step."),
    min: () => (field?.min !== undefined ? t("Must be at least {min}.", { min: field.min }) : t("The value is too small.")),
    max: () => (field?.max !== undefined ? t("Must be at most {max}.", { max: field.max }) : t("The value is too large.")),
    type: () => t("This is not a valid value here."),
    format: () => t("This is not a valid value here."),
    option: () => t("Choose one of the options."),
    min_length: () => t("Must be at least {n} characters.", { n: field?.min_length ?? "" }),
    max_length: () => t("Must be at most {n} characters.", { n: field?.max_length ?? "" }),
    pattern: () => t("This does not have the expected form."),
    not_editable: () => t("This step may not change this field."),
    unique: () => t("This value is already used."),
    relation: () => t("The linked record does not exist."),
  };
  return known[error.code] ? known[error.code]() : error.message;
}
