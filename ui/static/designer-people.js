// The designer's properties of the people and numbering fields (docs/forms.md, "People and
// numbers"): an auto-number's format and when it counts again, with the number the next
// record would get; a member field's "several people" and "default: the person filling it
// in"; a department field's "default: their department". The panel's own helpers (prop,
// check, section) come from designer-props.js.

import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";

const TOKEN = /\{(YYYY|YY|MM|DD|0{1,12})\}/g;
const RESETS = [
  ["never", "Never"],
  ["yearly", "Each year"],
  ["monthly", "Each month"],
  ["daily", "Each day"],
];

// Which date parts each reset needs in the format (engines/forms/fields.py _RESET_NEEDS).
const NEEDS = { never: [], yearly: ["year"], monthly: ["year", "MM"], daily: ["year", "MM", "DD"] };

/** What is wrong with an auto-number's format and reset ("" when nothing), as the server
 * would refuse it (autonumber_counter, autonumber_token, autonumber_reset). */
export function numberingProblem(format, reset = "never") {
  const text = String(format || "{0000}");
  const tokens = [...text.matchAll(TOKEN)].map((match) => match[1]);
  if (tokens.filter((token) => token.startsWith("0")).length !== 1) return t("The format needs exactly one counter, such as {0000}.");
  if (/[{}]/.test(text.replace(TOKEN, ""))) return t("Unknown token in the format: use {YYYY} {YY} {MM} {DD} and {0000}.");
  const shown = new Set(tokens.map((token) => (token === "YYYY" || token === "YY" ? "year" : token)));
  if ((NEEDS[reset] || []).some((part) => !shown.has(part))) return t("To count from 1 again then, the format must show that part of the date.");
  return "";
}

/** The number `format` gives the first record created at `at` (what the server renders). */
export function sampleNumber(format, at = new Date()) {
  const parts = {
    YYYY: String(at.getFullYear()).padStart(4, "0"),
    YY: String(at.getFullYear() % 100).padStart(2, "0"),
    MM: String(at.getMonth() + 1).padStart(2, "0"),
    DD: String(at.getDate()).padStart(2, "0"),
  };
  return String(format || "{0000}").replace(TOKEN, (whole, name) => parts[name] ?? "1".padStart(name.length, "0"));
}

export function peopleGroup(designer, field, edit, { prop, check, section }) {
  const uid = field._uid;
  const set = (name, value) => edit(() => (value === undefined ? delete field[name] : (field[name] = value)), name);
  if (field.type === "autonumber") {
    const sample = el("output", { class: "muted", "data-testid": "autonumber-sample", text: sampleNumber(field.format) });
    const problem = el("p", { class: "prop-error", role: "alert", "data-testid": "autonumber-problem" });
    const recheck = () => {
      problem.textContent = numberingProblem(field.format, field.reset);
      problem.hidden = !problem.textContent;
    };
    const format = el("input", {
      type: "text",
      value: field.format ?? "",
      placeholder: "CP-{YYYY}-{0000}",
      spellcheck: "false",
      oninput: (event) => {
        sample.textContent = sampleNumber(event.target.value);
        set("format", event.target.value || undefined);
        recheck();
      },
    });
    const reset = el(
      "select",
      {
        onchange: (event) => {
          set("reset", event.target.value === "never" ? undefined : event.target.value);
          recheck();
        },
      },
      ...RESETS.map(([value, text]) => el("option", { value, text: t(text) })),
    );
    reset.value = field.reset ?? "never";
    recheck();
    return section(
      t("Numbering"),
      prop(designer, uid, "format", t("Format"), format, t("{YYYY} {YY} {MM} {DD}: the date the record is made; {0000}: the counter, with that many digits.")),
      el("p", { class: "prop-hint" }, t("The first record gets: "), sample),
      prop(designer, uid, "reset", t("Count from 1 again"), reset, t("The format must show that part of the date.")),
      problem,
    );
  }
  const group = section(t("People"));
  if (field.type === "user") {
    group.append(
      check(designer, uid, "multiple", t("Several people"), field.multiple, (event) => set("multiple", event.target.checked || undefined)),
      check(designer, uid, "default_current", t("Default: the person filling it in"), field.default_current, (event) => set("default_current", event.target.checked || undefined)),
    );
  } else {
    group.append(
      check(designer, uid, "default_current", t("Default: their department"), field.default_current, (event) => set("default_current", event.target.checked || undefined), t("The departments are those of the app's members (their department attribute).")),
    );
  }
  return group;
}
