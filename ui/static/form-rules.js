// The rules of a generated form, as the server applies them (docs/forms.md, "Visibility"):
// fields are walked in order, a hidden field's value is dropped before later rules look at
// it, passes repeat until nothing changes, a rule that cannot be evaluated counts as visible,
// and computed results are stored as engines/forms/fields.py ComputedField.coerce stores them.
// Expressions run through the server's evaluator, ported (/static/logic.js). No DOM.

import { evaluate, truthy } from "/static/logic.js";
import { isEmpty } from "/static/form-values.js";

function roundHalfEven(number) {
  const floor = Math.floor(number);
  const diff = number - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// The stored form of a computed result (engines/forms/fields.py ComputedField.coerce).
export function coerce(field, result) {
  if (result === null || result === undefined || result === "") return null;
  const kind = field.result_type || "text";
  if (kind === "boolean") return truthy(result);
  if (kind === "text") {
    if (typeof result === "string") return result;
    if (typeof result === "boolean") return result ? "true" : "false";
    return typeof result === "number" ? String(result) : JSON.stringify(result);
  }
  if (kind === "date") return typeof result === "string" ? result.slice(0, 10) : null;
  const number = typeof result === "number" ? result : Number(String(result).trim());
  if (typeof result === "boolean" || !Number.isFinite(number)) return null;
  return kind === "integer" ? roundHalfEven(number) : number;
}

/** Whether a `visible_if` rule shows its field over `scope` (no rule, or an error: shown). */
export function isShown(rule, scope, evalOpts) {
  if (rule === undefined || rule === null) return true;
  try {
    return truthy(evaluate(rule, scope, evalOpts));
  } catch {
    return true;
  }
}

/** A computed field's stored result over `scope` (null when its formula fails). */
export function computeField(field, scope, evalOpts) {
  try {
    return coerce(field, evaluate(field.formula, scope, evalOpts));
  } catch {
    return null;
  }
}

/**
 * The hidden fields (sections included) and the visible data with computed results, for
 * `fields` in form order over the values `raw` read from the controls (updated in place
 * with the computed results).
 */
export function evaluateFields(fields, raw, evalOpts) {
  const computed = fields.filter((field) => field.type === "computed");
  let hidden = new Set();
  let visibleData = raw;
  const passes = Math.max(1, fields.length);
  for (let pass = 0; pass < passes; pass++) {
    const scope = { ...raw };
    const nowHidden = new Set();
    let sectionHidden = false;
    for (const field of fields) {
      if (field.type === "section") sectionHidden = false;
      const shown = !sectionHidden && isShown(field.visible_if, scope, evalOpts);
      if (field.type === "section") {
        sectionHidden = !shown;
        if (!shown) nowHidden.add(field.key);
        continue;
      }
      if (!shown) {
        nowHidden.add(field.key);
        delete scope[field.key];
      }
      if (field.type === "computed") {
        const result = shown ? computeField(field, scope, evalOpts) : null;
        if (isEmpty(result)) delete scope[field.key];
        else scope[field.key] = result;
      }
    }
    // computed fields may be read by earlier rules: fill them in for the next pass
    for (const field of computed) {
      if (nowHidden.has(field.key)) continue;
      const result = computeField(field, scope, evalOpts);
      if (isEmpty(result)) delete scope[field.key];
      else scope[field.key] = result;
    }
    const same = nowHidden.size === hidden.size && [...nowHidden].every((key) => hidden.has(key));
    hidden = nowHidden;
    visibleData = scope;
    Object.assign(raw, Object.fromEntries(computed.map((field) => [field.key, scope[field.key]]).filter(([, v]) => v !== undefined)));
    if (same && pass > 0) break;
  }
  return { hidden, data: visibleData };
}
