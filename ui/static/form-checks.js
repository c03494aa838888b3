// What the browser can tell about one field's value on its own, so an error the server put
// at a field goes away as soon as the value is fixed (and a value still wrong says why in
// the reader's language), without waiting for the next save. The server stays the judge:
// it checks everything again on save, including what no browser can (unique values, the
// app's rules, relations). Mirrors engines/forms (fields.py, values.py): required, text
// length and pattern, e-mail / phone / URL formats, number bounds and whole numbers, the
// number of choices, stars of a rating, the text length of rich text; a check it cannot make here (a pattern JavaScript does not read the
// same way, dates against `today`) counts as passed.

import { label, t } from "/static/i18n.js";
import { fieldLabel, isEmpty } from "/static/form-values.js";
import { ratingMax } from "/static/form-rating.js";
import { richPlainText } from "/static/form-richtext.js";

// the server's patterns (engines/forms/values.py)
const EMAIL = /^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$/;
const PHONE = /^\+?[\s()-]*([0-9][\s()-]*){5,20}$/;
const URL_FORMAT = /^[Hh][Tt][Tt][Pp][Ss]?:\/\/[^\s/?#]+[^\s]*$/;
const FORMATS = {
  email: [EMAIL, "{field} is not a valid e-mail address"],
  phone: [PHONE, "{field} is not a valid phone number"],
  url: [URL_FORMAT, "{field} is not a valid web address (http:// or https://)"],
};

function textProblem(field, text, name) {
  const length = [...text].length;
  if (field.min_length != null && length < field.min_length) {
    return t("{field} needs at least {n} characters", { field: name, n: field.min_length });
  }
  if (field.max_length != null && length > field.max_length) {
    return t("{field} takes at most {n} characters", { field: name, n: field.max_length });
  }
  if (field.pattern) {
    let pattern;
    try {
      pattern = new RegExp(field.pattern, "u");
    } catch {
      return null; // a Python pattern JavaScript cannot read: the server decides
    }
    if (!pattern.test(text)) {
      return field.pattern_message ? label(field.pattern_message) : t("{field} is not in the expected format", { field: name });
    }
  }
  return null;
}

function numberProblem(field, value, name) {
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(number)) return t("{field} must be a number", { field: name });
  if (field.type === "integer" && !Number.isInteger(number)) return t("{field} must be a whole number", { field: name });
  if (field.min != null && number < field.min) return t("{field} must be at least {n}", { field: name, n: field.min });
  if (field.max != null && number > field.max) return t("{field} must be at most {n}", { field: name, n: field.max });
  return null;
}

/** The problem the browser sees with `value` for `field` (a message), or null. */
export function localProblem(field, value) {
  const name = fieldLabel(field);
  if (isEmpty(value)) return field.required ? t("{field} is required", { field: name }) : null;
  switch (field.type) {
    case "text":
    case "textarea":
      return textProblem(field, String(value), name);
    case "email":
    case "phone":
    case "url": {
      const [pattern, message] = FORMATS[field.type];
      return pattern.test(String(value)) ? null : t(message, { field: name });
    }
    case "number":
    case "integer":
      return numberProblem(field, value, name);
    case "rating": {
      const max = ratingMax(field);
      if (typeof value !== "number" || !Number.isInteger(value)) return t("{field} must be a whole number", { field: name });
      return value < 1 || value > max ? t("{field} must be from 1 to {n} stars", { field: name, n: max }) : null;
    }
    case "richtext": {
      if (typeof value !== "string") return null;
      const longest = field.max_length ?? 10000; // engines/forms/fields.py RICHTEXT_MAX_LENGTH
      const length = [...richPlainText(value)].length;
      return length > longest ? t("{field} takes at most {n} characters", { field: name, n: longest }) : null;
    }
    case "multiselect": {
      const count = Array.isArray(value) ? value.length : 0;
      if (field.min_items != null && count < field.min_items) return t("Choose at least {n}", { n: field.min_items });
      if (field.max_items != null && count > field.max_items) return t("Choose at most {n}", { n: field.max_items });
      return null;
    }
    default:
      return null;
  }
}
