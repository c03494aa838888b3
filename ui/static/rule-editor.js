// The rule editor (/designer/{app}/rules/{rule}): trigger, condition, actions as cards, "Try
// it on a record", and the save through the rule API's plan (docs/rules.md, "The rule
// editor"). The page's data (#rule-editor-data) holds the rule as written, the app's forms,
// fields and roles, and the revision it was read at.
//
// Invariants:
// - the rule is edited as the JSON it is saved as (rule-editor-model.js); every control has
//   `data-path`, the JSON pointer of what it edits, where a 422 from the server is shown;
// - a change made with the mouse or keyboard is one undo step (text boxes: when they are left);
// - nothing is written but by the Save button (plan first, then apply with If-Match).

import { api, ApiError } from "/static/api.js";
import { el } from "/static/dom.js";
import { t, label as labelOf } from "/static/i18n.js";
import { VISIBILITY, needsValue, buildCondition, parseCondition, literal } from "/static/conditions.js";
import { relationPicker } from "/static/form-relation.js";
import * as m from "/static/rule-editor-model.js";

const data = JSON.parse(document.getElementById("rule-editor-data").textContent);
const root = document.querySelector("[data-testid=rule-editor]");
const formNode = root.querySelector("[data-rule-form]");
const statusNode = root.querySelector("[data-testid=rule-status]");
const dirtyNode = root.querySelector("[data-testid=rule-dirty]");
const problemsNode = root.querySelector("[data-testid=rule-problems]");
const jsonNode = root.querySelector("[data-testid=rule-json]");
const planDialog = root.querySelector("[data-testid=rule-plan]");

const app = data.app;
const locales = app.locales;
const forms = data.forms;
const formsByKey = Object.fromEntries(forms.map((f) => [f.key, f]));
const roles = data.roles;

const state = {
  isNew: data.rule === null,
  revision: data.revision,
  rule: data.rule ? structuredClone(data.rule) : { key: "", on: { form: forms[0]?.key ?? "", event: "created" }, then: [] },
  errors: new Map(), // JSON pointer -> message
  jsonMode: false,
};
let current = JSON.stringify(state.rule);
let savedText = state.isNew ? null : JSON.stringify(m.compact(state.rule));
const past = [];
const future = [];

const TYPE_NAMES = {
  set: "Set values",
  reject: "Reject with a message",
  create_record: "Create a record",
  update_records: "Update records",
  create_task: "Create a task",
  notify: "Notify",
  webhook: "Call a webhook",
  start_flow: "Start a flow",
  create_link: "Make a public link",
};
const KIND_NAMES = { record: "A record is written", schedule: "On a schedule", date: "Relative to a date field" };
const EVENT_NAMES = { created: "is created", updated: "is changed", deleted: "is deleted" };
const CHANNEL_NAMES = { in_app: "In the app", email: "E-mail", sms_gateway: "Text message" };
const RECIPIENT_NAMES = { role: "Everyone with the role", field: "The staff member in the field", user: "A user (expression)", address: "An address (expression)" };

// -- history --------------------------------------------------------------------------------

function checkpoint() {
  const now = JSON.stringify(state.rule);
  if (now === current) return;
  past.push(current);
  future.length = 0;
  current = now;
  refreshChrome();
}

function restore(text) {
  unparsed.clear();
  current = text;
  state.rule = JSON.parse(text);
  render();
}

function undo() {
  checkpoint();
  if (!past.length) return;
  future.push(current);
  restore(past.pop());
}

function redo() {
  if (!future.length) return;
  past.push(current);
  restore(future.pop());
}

function isDirty() {
  return JSON.stringify(m.compact(state.rule)) !== savedText;
}

function refreshChrome() {
  dirtyNode.hidden = !isDirty();
  root.querySelector("[data-testid=rule-undo]").disabled = !past.length && JSON.stringify(state.rule) === current;
  root.querySelector("[data-testid=rule-redo]").disabled = !future.length;
  jsonNode.textContent = JSON.stringify(m.compact(state.rule), null, 2);
  const title = labelOf(state.rule.label) || state.rule.key || t("New rule");
  root.querySelector("[data-rule-title]").textContent = title;
}

/** Change the rule and draw it again (a structural change: one undo step). */
function change(mutate) {
  mutate(state.rule);
  checkpoint();
  render();
}

// -- controls -------------------------------------------------------------------------------

let uid = 0;
const nextId = () => `re-${++uid}`;

function errorAt(path) {
  const message = state.errors.get(path);
  return message ? el("span", { class: "field-error", role: "alert", "data-error-for": path, text: message }) : null;
}

function row(text, control, path, hint) {
  const id = control.id || (control.id = nextId());
  return el(
    "div",
    { class: `re-row${path && state.errors.has(path) ? " invalid" : ""}` },
    el("label", { for: id, text }),
    control,
    hint ? el("span", { class: "muted small", text: hint }) : null,
    path ? errorAt(path) : null,
  );
}

/** A text box bound to `path`; `read`/`write` convert between the box and the rule. */
function textBox(path, testid, { multiline = false, type = "text", read = (v) => m.showValue(v), write = (v) => v, placeholder } = {}) {
  const value = read(m.getAt(state.rule, path));
  const node = el(multiline ? "textarea" : "input", {
    type: multiline ? undefined : type,
    value: multiline ? value : undefined,
    rows: multiline ? 3 : undefined,
    "data-path": path,
    "data-testid": testid,
    placeholder,
    "aria-invalid": state.errors.has(path) ? "true" : undefined,
  });
  if (!multiline) node.value = value;
  node.addEventListener("input", () => {
    m.setAt(state.rule, path, write(node.value));
    refreshChrome();
  });
  node.addEventListener("change", checkpoint);
  return node;
}

function select(path, testid, options, { onPick, value } = {}) {
  const chosen = value !== undefined ? value : m.getAt(state.rule, path);
  const node = el(
    "select",
    { "data-path": path, "data-testid": testid },
    options.map((o) => el("option", { value: o.value, text: o.label, selected: String(o.value) === String(chosen ?? "") })),
  );
  node.value = chosen ?? "";
  node.addEventListener("change", () => {
    if (onPick) change((rule) => onPick(node.value, rule));
    else change((rule) => m.setAt(rule, path, node.value === "" ? undefined : node.value));
  });
  return node;
}

/** A JSON text box (filters, bodies, expressions): kept when it parses, else marked. */
// Text typed into a JSON box that does not parse: kept on screen (with its error) until it
// does, since the rule itself cannot hold it.
const unparsed = new Map();

function jsonBox(path, testid, { optional = true } = {}) {
  const value = m.getAt(state.rule, path);
  const shown = unparsed.has(path) ? unparsed.get(path) : value === undefined ? "" : JSON.stringify(value, null, 1);
  const node = el("textarea", { rows: 3, class: "json", "data-path": path, "data-testid": testid, value: shown, "aria-invalid": unparsed.has(path) ? "true" : undefined });
  node.addEventListener("change", () => {
    const text = node.value.trim();
    if (!text && optional) {
      unparsed.delete(path);
      state.errors.delete(path);
      change((rule) => m.setAt(rule, path, undefined));
      return;
    }
    try {
      const parsed = JSON.parse(text);
      unparsed.delete(path);
      state.errors.delete(path);
      change((rule) => m.setAt(rule, path, parsed));
    } catch {
      unparsed.set(path, node.value);
      state.errors.set(path, t("This is not valid JSON."));
      render();
    }
  });
  return node;
}

/** A text people read: one box per app locale (or one box for a text in every language). */
function localeText(path, testid, { multiline = false, variablesFor = null } = {}) {
  const value = m.getAt(state.rule, path);
  const boxes = [];
  if (value === undefined || typeof value === "string") {
    boxes.push(row(t("Text (every language)"), textBox(path, testid, { multiline }), path));
  } else {
    for (const locale of locales) {
      const inner = `${path}/${m.escapePart(locale)}`;
      boxes.push(row(locale, textBox(inner, `${testid}-${locale}`, { multiline }), inner));
    }
  }
  const wrap = el("div", { class: "locale-text", "data-path": path }, boxes, errorAt(path));
  if (variablesFor) wrap.append(variablePicker(wrap, testid));
  return wrap;
}

let lastText = null;
document.addEventListener("focusin", (event) => {
  if (event.target.matches?.("textarea, input[type=text]")) lastText = event.target;
});

/** "Insert a variable": puts {{ record.x }} at the cursor of the text box last used in `scope`. */
function variablePicker(scope, testid) {
  const names = m.variables(forms, state.rule.on?.form);
  const picker = el(
    "select",
    { "data-testid": `${testid}-variable`, "aria-label": t("Insert a variable") },
    el("option", { value: "", text: t("Insert a variable…") }),
    names.map((v) => el("option", { value: v.name, text: `${v.label} — {{ ${v.name} }}` })),
  );
  picker.addEventListener("change", () => {
    const name = picker.value;
    picker.value = "";
    if (!name) return;
    const target = lastText && scope.contains(lastText) ? lastText : scope.querySelector("textarea, input[type=text]");
    if (!target) return;
    const text = `{{ ${name} }}`;
    const start = target.selectionStart ?? target.value.length;
    const end = target.selectionEnd ?? start;
    target.value = target.value.slice(0, start) + text + target.value.slice(end);
    target.dispatchEvent(new Event("input"));
    target.dispatchEvent(new Event("change"));
    target.focus();
    target.setSelectionRange(start + text.length, start + text.length);
  });
  return el("div", { class: "re-row" }, picker);
}

function fieldOptions(formKey, { filter = () => true, blank = null } = {}) {
  const form = formsByKey[formKey];
  const options = (form?.fields ?? []).filter(filter).map((f) => ({ value: f.key, label: `${f.label} (${f.key})` }));
  return blank === null ? options : [{ value: "", label: blank }, ...options];
}

function section(title, testid, ...children) {
  const id = nextId();
  return el("fieldset", { class: "re-section", "data-testid": testid, "aria-labelledby": id }, el("legend", { id, text: title }), ...children);
}

// -- the rule's head ------------------------------------------------------------------------

function head() {
  const parts = [];
  if (state.isNew) {
    parts.push(row(t("Key"), textBox("/key", "rule-key", { placeholder: "pain_alert" }), "/key", t("Lower-case letters, digits and _; it cannot change later.")));
  }
  const labelValue = state.rule.label;
  if (labelValue === undefined || typeof labelValue === "object") {
    for (const locale of locales) {
      const path = `/label/${m.escapePart(locale)}`;
      parts.push(row(`${t("Name")} (${locale})`, textBox(path, `rule-label-${locale}`), path));
    }
  } else {
    parts.push(row(t("Name"), textBox("/label", "rule-label"), "/label"));
  }
  const enabled = el("input", { type: "checkbox", "data-path": "/enabled", "data-testid": "rule-enabled", checked: state.rule.enabled !== false });
  enabled.addEventListener("change", () => change((rule) => (enabled.checked ? delete rule.enabled : (rule.enabled = false))));
  parts.push(row(t("On"), enabled, "/enabled", t("A rule that is off never runs.")));
  parts.push(
    row(t("Priority"), textBox("/priority", "rule-priority", { type: "number", write: (v) => (v === "" ? undefined : Number(v)) }), "/priority", t("Rules on the same event run highest first.")),
  );
  return section(t("Rule"), "rule-head", ...parts);
}

// -- trigger --------------------------------------------------------------------------------

function trigger() {
  const on = state.rule.on ?? {};
  const kind = m.triggerKind(on);
  const formKey = on.form;
  const parts = [
    row(
      t("When"),
      select("/on", "trigger-kind", m.KINDS.map((k) => ({ value: k, label: t(KIND_NAMES[k]) })), {
        value: kind,
        onPick: (value, rule) => (rule.on = m.newTrigger(value, formKey, formsByKey[formKey]?.fields ?? [])),
      }),
      null,
    ),
    row(
      t("Form"),
      select("/on/form", "trigger-form", forms.map((f) => ({ value: f.key, label: f.label })), {
        onPick: (value, rule) => (rule.on = m.newTrigger(kind, value, formsByKey[value]?.fields ?? [])),
      }),
      "/on/form",
    ),
  ];
  if (kind === "record") {
    parts.push(row(t("Event"), select("/on/event", "trigger-event", m.EVENTS.map((e) => ({ value: e, label: t(EVENT_NAMES[e]) }))), "/on/event"));
    const chosen = new Set(on.fields ?? []);
    const boxes = (formsByKey[formKey]?.fields ?? []).map((field) => {
      const box = el("input", { type: "checkbox", value: field.key, checked: chosen.has(field.key), "data-testid": `trigger-field-${field.key}` });
      box.addEventListener("change", () =>
        change((rule) => {
          const keys = new Set(rule.on.fields ?? []);
          if (box.checked) keys.add(field.key);
          else keys.delete(field.key);
          const ordered = (formsByKey[formKey]?.fields ?? []).map((f) => f.key).filter((k) => keys.has(k));
          if (ordered.length) rule.on.fields = ordered;
          else {
            delete rule.on.fields;
            delete rule.on.to;
          }
        }),
      );
      return el("label", { class: "check" }, box, ` ${field.label}`);
    });
    parts.push(
      el(
        "fieldset",
        { class: "re-checks", "data-path": "/on/fields" },
        el("legend", { text: t("Only when one of these fields changes (on create: has a value)") }),
        boxes,
        errorAt("/on/fields"),
      ),
    );
    if (chosen.size) {
      parts.push(
        row(t("Changed to"), textBox("/on/to", "trigger-to", { read: (v) => (v === undefined ? "" : JSON.stringify(v)), write: (v) => (v.trim() === "" ? undefined : m.parseValue(v)) }), "/on/to", t("Optional: a value, or a JSON list of values.")),
      );
    }
  } else if (kind === "schedule") {
    parts.push(row(t("Every day at"), textBox("/on/at", "trigger-at", { type: "time", write: (v) => v || undefined }), "/on/at"));
    parts.push(row(t("Or cron"), textBox("/on/cron", "trigger-cron", { placeholder: "0 9 * * mon-fri", write: (v) => v || undefined }), "/on/cron"));
    parts.push(row(t("Records (filter, JsonLogic)"), jsonBox("/on/filter", "trigger-filter"), "/on/filter"));
    parts.push(row(t("When late"), textBox("/on/late", "trigger-late", { placeholder: "run", write: (v) => v || undefined }), "/on/late", t("run, skip, or a window such as PT6H")));
  } else {
    parts.push(row(t("Date field"), select("/on/field", "trigger-date-field", fieldOptions(formKey, { filter: (f) => f.type === "date" || f.type === "datetime", blank: "—" })), "/on/field"));
    parts.push(row(t("Offset"), textBox("/on/offset", "trigger-offset", { placeholder: "P3D", write: (v) => v || undefined }), "/on/offset", t("An ISO 8601 duration: P3D is 3 days after, -P1D a day before.")));
    parts.push(row(t("At"), textBox("/on/at", "trigger-at", { type: "time", write: (v) => v || undefined }), "/on/at"));
    const yearly = el("input", { type: "checkbox", "data-testid": "trigger-every-year", "data-path": "/on/every_year", checked: on.every_year === true });
    yearly.addEventListener("change", () => change((rule) => (yearly.checked ? (rule.on.every_year = true) : delete rule.on.every_year)));
    parts.push(row(t("Every year"), yearly, "/on/every_year"));
    parts.push(row(t("When late"), textBox("/on/late", "trigger-late", { placeholder: "run", write: (v) => v || undefined }), "/on/late", t("run, skip, or a window such as PT6H")));
  }
  return section(t("When"), "rule-trigger", ...parts, errorAt("/on"));
}

// -- condition ------------------------------------------------------------------------------

const PREFIX = "record.";

function conditionFields() {
  return (formsByKey[state.rule.on?.form]?.fields ?? []).filter((f) => f.type !== "table");
}

function typeOfVariable(name) {
  if (!name.startsWith(PREFIX)) return undefined;
  return conditionFields().find((f) => f.key === name.slice(PREFIX.length))?.type;
}

function condition() {
  const rule = state.rule.if;
  const parsed = state.jsonMode ? null : parseCondition(rule === true ? undefined : rule, VISIBILITY, typeOfVariable);
  if (parsed === null) {
    const box = jsonBox("/if", "condition-json");
    const back = el("button", { type: "button", class: "quiet small", "data-testid": "condition-builder", text: t("Use the builder") });
    back.addEventListener("click", () => {
      state.jsonMode = false;
      if (parseCondition(state.rule.if, VISIBILITY, typeOfVariable) === null) change((r) => delete r.if);
      else render();
    });
    return section(t("If"), "rule-condition", el("p", { class: "muted small", text: t("JsonLogic over record, old, changed, user and now.") }), row(t("Condition"), box, "/if"), back);
  }
  const write = (next) => change((r) => {
    const built = buildCondition(next);
    if (built === undefined) delete r.if;
    else r.if = built;
  });
  const fields = conditionFields();
  const rows = parsed.rows.map((item, index) => {
    const type = typeOfVariable(item.field);
    const field = el(
      "select",
      { "data-testid": `condition-field-${index}`, "aria-label": t("Field") },
      fields.map((f) => el("option", { value: PREFIX + f.key, text: f.label, selected: PREFIX + f.key === item.field })),
    );
    field.addEventListener("change", () => {
      const next = structuredClone(parsed);
      const newType = typeOfVariable(field.value);
      next.rows[index] = { field: field.value, op: VISIBILITY.operators(newType)[0], value: null };
      write(next);
    });
    const op = el(
      "select",
      { "data-testid": `condition-op-${index}`, "aria-label": t("Operator") },
      VISIBILITY.operators(type).map((o) => el("option", { value: o, text: t(VISIBILITY.label(o)), selected: o === item.op })),
    );
    op.addEventListener("change", () => {
      const next = structuredClone(parsed);
      next.rows[index] = { ...item, op: op.value, value: needsValue(op.value) ? item.value : null };
      write(next);
    });
    let value = null;
    if (needsValue(item.op)) {
      const meta = fields.find((f) => PREFIX + f.key === item.field);
      if (meta?.options) {
        value = el("select", { "data-testid": `condition-value-${index}`, "aria-label": t("Value") }, el("option", { value: "", text: "—" }), meta.options.map((o) => el("option", { value: o.value, text: o.label, selected: o.value === item.value })));
      } else {
        value = el("input", { type: "text", "data-testid": `condition-value-${index}`, "aria-label": t("Value"), value: m.showValue(item.value) });
      }
      value.addEventListener("change", () => {
        const next = structuredClone(parsed);
        next.rows[index] = { ...item, value: literal(type, value.value) };
        write(next);
      });
    }
    const remove = el("button", { type: "button", class: "icon-button", "data-testid": `condition-remove-${index}`, "aria-label": t("Remove this condition"), text: "×" });
    remove.addEventListener("click", () => {
      const next = structuredClone(parsed);
      next.rows.splice(index, 1);
      write(next);
    });
    return el("div", { class: "condition-row" }, field, op, value, remove);
  });
  const join = el(
    "select",
    { "data-testid": "condition-join", "aria-label": t("Join") },
    el("option", { value: "all", text: t("all of these are true"), selected: parsed.join === "all" }),
    el("option", { value: "any", text: t("any of these is true"), selected: parsed.join === "any" }),
  );
  join.addEventListener("change", () => write({ ...parsed, join: join.value }));
  const add = el("button", { type: "button", class: "quiet", "data-testid": "condition-add", text: `+ ${t("Add a condition")}` });
  add.addEventListener("click", () => {
    const first = fields[0];
    if (!first) return;
    const next = structuredClone(parsed);
    const type = first.type;
    next.rows.push({ field: PREFIX + first.key, op: VISIBILITY.operators(type)[0], value: null });
    // a row without a value is not written yet: keep it on screen through a JsonLogic placeholder
    const op = next.rows.at(-1).op;
    next.rows.at(-1).value = needsValue(op) ? (["number", "integer", "rating"].includes(type) ? 0 : "") : null;
    write(next);
  });
  const asJson = el("button", { type: "button", class: "quiet small", "data-testid": "condition-as-json", text: t("Edit as JSON") });
  asJson.addEventListener("click", () => {
    state.jsonMode = true;
    render();
  });
  const summary = parsed.rows.length ? null : el("p", { class: "muted", text: t("Always (no condition).") });
  return section(t("If"), "rule-condition", parsed.rows.length > 1 ? row(t("Run when"), join, null) : null, summary, rows, el("div", { class: "re-buttons" }, add, asJson), errorAt("/if"));
}

// -- actions --------------------------------------------------------------------------------

function valuesEditor(path, formKey, testid) {
  const values = m.getAt(state.rule, path) ?? {};
  const names = m.variables(forms, state.rule.on?.form);
  const rows = Object.entries(values).map(([key], index) => {
    const field = select(`${path}/${m.escapePart(key)}`, `${testid}-field-${index}`, fieldOptions(formKey), {
      value: key,
      onPick: (picked, rule) => {
        const entries = Object.entries(m.getAt(rule, path));
        entries[index] = [picked, entries[index][1]];
        m.setAt(rule, path, Object.fromEntries(entries));
      },
    });
    field.removeAttribute("data-path");
    const valuePath = `${path}/${m.escapePart(key)}`;
    const box = textBox(valuePath, `${testid}-value-${index}`, { write: (v) => m.parseValue(v), placeholder: t("a value, or JsonLogic") });
    box.setAttribute("aria-label", t("Value"));
    const pick = el("select", { "aria-label": t("Take the value from"), "data-testid": `${testid}-expr-${index}` }, el("option", { value: "", text: t("Take the value from…") }), names.map((v) => el("option", { value: v.name, text: v.label })));
    pick.addEventListener("change", () => change((rule) => m.setAt(rule, valuePath, { var: pick.value })));
    const remove = el("button", { type: "button", class: "icon-button", "aria-label": t("Remove"), text: "×" });
    remove.addEventListener("click", () => change((rule) => m.setAt(rule, valuePath, undefined)));
    return el("div", { class: `values-row${state.errors.has(valuePath) ? " invalid" : ""}` }, field, box, pick, remove, errorAt(valuePath));
  });
  const add = el("button", { type: "button", class: "quiet small", "data-testid": `${testid}-add`, text: `+ ${t("Add a value")}` });
  add.addEventListener("click", () =>
    change((rule) => {
      const present = m.getAt(rule, path) ?? {};
      const free = (formsByKey[formKey]?.fields ?? []).find((f) => !(f.key in present) && f.type !== "computed");
      if (free) m.setAt(rule, `${path}/${m.escapePart(free.key)}`, "");
    }),
  );
  return el("div", { class: "values", "data-path": path }, el("span", { class: "re-caption", text: t("Values") }), rows, add, errorAt(path));
}

function recipientsEditor(path, testid) {
  const recipients = m.getAt(state.rule, path) ?? [];
  const formKey = state.rule.on?.form;
  const rows = recipients.map((recipient, index) => {
    const at = `${path}/${index}`;
    const kind = m.RECIPIENT_KINDS.find((k) => k in recipient) ?? "role";
    const kindSelect = select(at, `${testid}-${index}-kind`, m.RECIPIENT_KINDS.map((k) => ({ value: k, label: t(RECIPIENT_NAMES[k]) })), {
      value: kind,
      onPick: (picked, rule) => m.setAt(rule, at, picked === "role" ? { role: roles[0]?.key } : { [picked]: picked === "field" ? "" : { var: "record.id" } }),
    });
    kindSelect.removeAttribute("data-path");
    kindSelect.setAttribute("aria-label", t("Who"));
    let value;
    if (kind === "role") value = select(`${at}/role`, `${testid}-${index}-role`, roles.map((r) => ({ value: r.key, label: r.label })));
    else if (kind === "field") value = select(`${at}/field`, `${testid}-${index}-field`, fieldOptions(formKey, { filter: (f) => f.type === "relation", blank: "—" }));
    else value = textBox(`${at}/${kind}`, `${testid}-${index}-${kind}`, { write: (v) => m.parseValue(v) });
    value.setAttribute("aria-label", t("Which"));
    const remove = el("button", { type: "button", class: "icon-button", "aria-label": t("Remove"), text: "×" });
    remove.addEventListener("click", () => change((rule) => m.getAt(rule, path).splice(index, 1)));
    return el("div", { class: `recipient-row${state.errors.has(at) ? " invalid" : ""}`, "data-path": at }, kindSelect, value, remove, errorAt(at), errorAt(`${at}/${kind}`));
  });
  const add = el("button", { type: "button", class: "quiet small", "data-testid": `${testid}-add`, text: `+ ${t("Add a recipient")}` });
  add.addEventListener("click", () => change((rule) => m.getAt(rule, path).push({ role: roles[0]?.key })));
  return el("div", { class: "recipients", "data-path": path }, el("span", { class: "re-caption", text: t("Recipients") }), rows, add, errorAt(path));
}

function optionalText(path, testid, caption, options = {}) {
  if (m.getAt(state.rule, path) !== undefined) {
    const remove = el("button", { type: "button", class: "quiet small", "data-testid": `${testid}-remove`, text: t("Remove") });
    remove.addEventListener("click", () => change((rule) => m.setAt(rule, path, undefined)));
    return el("div", { class: "re-optional" }, el("span", { class: "re-caption", text: caption }), localeText(path, testid, options), remove);
  }
  const add = el("button", { type: "button", class: "quiet small", "data-testid": `${testid}-add`, text: `+ ${caption}` });
  add.addEventListener("click", () => change((rule) => m.setAt(rule, path, m.localeMap(locales))));
  return add;
}

function actionBody(action, base, testid) {
  const formKey = state.rule.on?.form;
  const parts = [];
  switch (action.type) {
    case "set":
      parts.push(valuesEditor(`${base}/values`, formKey, `${testid}-values`));
      break;
    case "reject":
      parts.push(el("span", { class: "re-caption", text: t("Message") }), localeText(`${base}/message`, `${testid}-message`, { multiline: true }));
      parts.push(row(t("At the field"), select(`${base}/field`, `${testid}-field`, fieldOptions(formKey, { blank: "—" })), `${base}/field`));
      parts.push(row(t("Only if such a record exists (JSON)"), jsonBox(`${base}/exists`, `${testid}-exists`), `${base}/exists`));
      break;
    case "create_record":
    case "update_records":
      parts.push(
        row(
          t("Form"),
          select(`${base}/form`, `${testid}-form`, forms.map((f) => ({ value: f.key, label: f.label })), {
            onPick: (value, rule) => {
              m.setAt(rule, `${base}/form`, value);
              m.setAt(rule, `${base}/values`, {});
            },
          }),
          `${base}/form`,
        ),
      );
      if (action.type === "update_records") parts.push(row(t("Which records (JsonLogic)"), jsonBox(`${base}/filter`, `${testid}-filter`, { optional: false }), `${base}/filter`));
      parts.push(valuesEditor(`${base}/values`, action.form, `${testid}-values`));
      break;
    case "create_task": {
      const kind = ["role", "user", "field"].find((k) => action[k] !== undefined) ?? "role";
      parts.push(
        row(
          t("Assign to"),
          select(`${base}/assignee`, `${testid}-assignee`, [
            { value: "role", label: t("A role") },
            { value: "field", label: t("The staff member in the field") },
            { value: "user", label: t("A user (expression)") },
          ], {
            value: kind,
            onPick: (picked, rule) => {
              const target = m.getAt(rule, base);
              for (const k of ["role", "user", "field", "where"]) delete target[k];
              if (picked === "role") target.role = roles[0]?.key;
              else if (picked === "field") target.field = "";
              else target.user = { var: "user.username" };
            },
          }),
          null,
        ),
      );
      if (kind === "role") {
        parts.push(row(t("Role"), select(`${base}/role`, `${testid}-role`, roles.map((r) => ({ value: r.key, label: r.label }))), `${base}/role`));
        parts.push(row(t("Only the role's users where (JsonLogic)"), jsonBox(`${base}/where`, `${testid}-where`), `${base}/where`, t("user.x: the candidate's attributes; record.x: the record's values")));
      } else if (kind === "field") {
        parts.push(row(t("Field"), select(`${base}/field`, `${testid}-field`, fieldOptions(formKey, { filter: (f) => f.type === "relation", blank: "—" })), `${base}/field`));
      } else {
        parts.push(row(t("User (JsonLogic)"), textBox(`${base}/user`, `${testid}-user`, { write: (v) => m.parseValue(v) }), `${base}/user`));
      }
      parts.push(el("span", { class: "re-caption", text: t("Title") }), localeText(`${base}/title`, `${testid}-title`, { variablesFor: true }));
      parts.push(optionalText(`${base}/description`, `${testid}-description`, t("Description"), { multiline: true, variablesFor: true }));
      parts.push(row(t("Due"), textBox(`${base}/due`, `${testid}-due`, { placeholder: "P2D", write: (v) => (v.trim() ? m.parseValue(v) : undefined) }), `${base}/due`, t("An ISO 8601 duration from now (P2D), or JsonLogic giving a date.")));
      break;
    }
    case "notify":
      parts.push(row(t("Channel"), select(`${base}/channel`, `${testid}-channel`, m.CHANNELS.map((c) => ({ value: c, label: t(CHANNEL_NAMES[c]) }))), `${base}/channel`));
      parts.push(recipientsEditor(`${base}/recipients`, `${testid}-recipient`));
      parts.push(optionalText(`${base}/subject`, `${testid}-subject`, t("Subject"), { variablesFor: true }));
      parts.push(el("span", { class: "re-caption", text: t("Message") }), localeText(`${base}/template`, `${testid}-template`, { multiline: true, variablesFor: true }));
      break;
    case "webhook":
      parts.push(row(t("Method"), select(`${base}/method`, `${testid}-method`, ["POST", "PUT", "PATCH", "GET", "DELETE"].map((v) => ({ value: v, label: v })), { value: action.method ?? "POST" }), `${base}/method`));
      parts.push(row(t("URL"), textBox(`${base}/url`, `${testid}-url`, { type: "url" }), `${base}/url`));
      parts.push(row(t("Headers (JSON)"), jsonBox(`${base}/headers`, `${testid}-headers`), `${base}/headers`));
      parts.push(row(t("Body (JSON; strings are templates)"), jsonBox(`${base}/body`, `${testid}-body`), `${base}/body`));
      break;
    default:
      parts.push(row(t("The action as JSON"), jsonBox(base, `${testid}-json`, { optional: false }), base));
  }
  if (action.type !== "reject") {
    parts.push(
      row(t("Delay"), textBox(`${base}/after`, `${testid}-after`, { placeholder: "PT2H", write: (v) => v.trim() || undefined }), `${base}/after`, t("Optional: run it this long after the rule (an ISO 8601 duration).")),
    );
  }
  return parts;
}

function actions() {
  const list = state.rule.then ?? [];
  const cards = list.map((action, index) => {
    const base = `/then/${index}`;
    const testid = `action-${index}`;
    const tools = el("div", { class: "card-tools" });
    const up = el("button", { type: "button", class: "icon-button", "aria-label": t("Move up"), disabled: index === 0, text: "↑", "data-testid": `${testid}-up` });
    up.addEventListener("click", () => change((rule) => rule.then.splice(index - 1, 0, rule.then.splice(index, 1)[0])));
    const down = el("button", { type: "button", class: "icon-button", "aria-label": t("Move down"), disabled: index === list.length - 1, text: "↓", "data-testid": `${testid}-down` });
    down.addEventListener("click", () => change((rule) => rule.then.splice(index + 1, 0, rule.then.splice(index, 1)[0])));
    const remove = el("button", { type: "button", class: "icon-button", "aria-label": t("Remove this action"), text: "×", "data-testid": `${testid}-remove` });
    remove.addEventListener("click", () => change((rule) => rule.then.splice(index, 1)));
    tools.append(up, down, remove);
    const id = nextId();
    return el(
      "article",
      { class: `action-card${[...state.errors.keys()].some((p) => p === base || p.startsWith(base + "/")) ? " has-error" : ""}`, "data-testid": testid, "data-path": base, "aria-labelledby": id },
      el("header", {}, el("h3", { id, text: `${index + 1}. ${t(TYPE_NAMES[action.type] || action.type)}` }), tools),
      errorAt(base),
      actionBody(action, base, testid),
    );
  });
  const type = el("select", { "data-testid": "action-type", "aria-label": t("Kind of action") }, m.ACTION_TYPES.map((k) => el("option", { value: k, text: t(TYPE_NAMES[k]) })));
  const add = el("button", { type: "button", "data-testid": "action-add", text: `+ ${t("Add the action")}` });
  add.addEventListener("click", () => {
    const kind = type.value;
    change((rule) => {
      rule.then = rule.then ?? [];
      rule.then.push(m.newAction(kind, { locales, form: rule.on?.form, roles }));
    });
    root.querySelector(`[data-testid=action-${(state.rule.then.length - 1)}] select, [data-testid=action-${state.rule.then.length - 1}] input, [data-testid=action-${state.rule.then.length - 1}] textarea`)?.focus();
  });
  return section(t("Then"), "rule-actions", cards, errorAt("/then"), el("div", { class: "re-buttons add-action" }, type, add));
}

// -- drawing --------------------------------------------------------------------------------

function render() {
  const focused = document.activeElement;
  const focusKey = focused?.dataset?.testid;
  formNode.replaceChildren(head(), trigger(), condition(), actions());
  renderTry();
  refreshChrome();
  if (focusKey && root.contains(focused) === false) root.querySelector(`[data-testid="${CSS.escape(focusKey)}"]`)?.focus();
}

// -- try it on a record ---------------------------------------------------------------------

let tryForm = null;
let tryRecord = null;
const tryControls = root.querySelector("[data-try-controls]");
const tryResult = root.querySelector("[data-testid=rule-try-result]");

function renderTry() {
  const formKey = state.rule.on?.form;
  if (formKey === tryForm) return;
  tryForm = formKey;
  tryRecord = null;
  tryControls.replaceChildren();
  tryResult.replaceChildren();
  if (!data.picker_app.forms[formKey]) {
    tryControls.append(el("p", { class: "muted small", text: t("You may not read this form's records.") }));
    return;
  }
  const picker = relationPicker({ app: data.picker_app, target: formKey, name: "try_record", id: "try-record", onChange: (id) => (tryRecord = id || null) });
  const button = el("button", { type: "button", "data-testid": "rule-try-run", text: t("Try it") });
  button.addEventListener("click", tryIt);
  const event = el(
    "select",
    { id: "try-event", "data-testid": "rule-try-event" },
    el("option", { value: "", text: t("as the trigger says") }),
    el("option", { value: "created", text: t("as if it had just been created") }),
    el("option", { value: "updated", text: t("as if the watched fields had just changed") }),
    el("option", { value: "deleted", text: t("as if it had just been deleted") }),
  );
  tryControls.append(
    el("label", { for: "try-record", text: t("Record") }),
    picker.element,
    el("label", { for: "try-event", text: t("Event") }),
    event,
    button,
  );
}

function words(action) {
  const type = t(TYPE_NAMES[action.type] || action.type);
  const bits = [];
  if (action.values) bits.push(Object.entries(action.values).map(([k, v]) => `${k} = ${m.showValue(v)}`).join(", "));
  if (action.recipients) bits.push(t("to {who}", { who: action.recipients.map((r) => r.user ?? r.role ?? r.field ?? r.address ?? JSON.stringify(r)).join(", ") }));
  if (action.form) bits.push(action.form);
  if (action.message) bits.push(labelOf(action.message));
  if (action.subject) bits.push(labelOf(action.subject));
  if (action.template) bits.push(labelOf(action.template));
  if (action.title) bits.push(labelOf(action.title));
  if (action.url) bits.push(action.url);
  if (action.due) bits.push(t("due {when}", { when: action.due }));
  return `${type}${action.mode === "delayed" ? ` (${t("later")})` : ""}: ${bits.filter(Boolean).join(" · ")}`;
}

async function tryIt() {
  if (!tryRecord) {
    tryResult.replaceChildren(el("p", { class: "field-error", text: t("Pick a record first.") }));
    return;
  }
  tryResult.replaceChildren(el("p", { class: "muted", text: t("Trying…") }));
  const draft = m.compact(state.rule);
  const key = state.rule.key || "draft";
  try {
    const { data: answer } = await api(`/api/apps/${app.key}/rules/${encodeURIComponent(key)}/try`, {
      method: "POST",
      body: { rule: { ...draft, key }, record_id: tryRecord, event: root.querySelector("#try-event")?.value || undefined },
    });
    const run = answer.runs?.[0] ?? {};
    const out = [];
    if (run.error) out.push(el("p", { class: "field-error", "data-testid": "try-error", text: t("Error: {error}", { error: run.error }) }));
    else if (run.matched) {
      out.push(el("p", { class: "try-matched", "data-testid": "try-matched", text: t("It matches: the rule would do this.") }));
      out.push(el("ol", {}, (run.actions ?? []).map((a) => el("li", { text: words(a) }))));
    } else {
      out.push(el("p", { class: "try-unmatched", "data-testid": "try-unmatched", text: t("It does not match ({reason}): nothing would happen.", { reason: run.reason || t("condition is false") }) }));
    }
    out.push(el("p", { class: "muted small", text: t("Nothing was written, sent or scheduled.") }));
    tryResult.replaceChildren(...out);
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      showErrors(error.errors);
      tryResult.replaceChildren(el("p", { class: "field-error", text: t("Fix the marked problems first.") }));
    } else tryResult.replaceChildren(el("p", { class: "field-error", text: error.message }));
  }
}

// -- saving ---------------------------------------------------------------------------------

function setStatus(text, kind = "") {
  statusNode.textContent = text;
  statusNode.dataset.kind = kind;
}

function showErrors(errors) {
  state.errors = new Map();
  const general = [];
  for (const error of errors) {
    if (error.in === "app") general.push(error);
    else state.errors.set(error.path || "", error.message);
  }
  render();
  // problems whose pointer has no control of its own go to the nearest one above it
  const unplaced = [];
  for (const [path, message] of state.errors) {
    if (root.querySelector(`[data-error-for="${CSS.escape(path)}"]`)) continue;
    const parts = m.splitPointer(path);
    let placed = false;
    while (parts.length) {
      parts.pop();
      const target = root.querySelector(`[data-path="${CSS.escape(m.pointer(...parts))}"]`);
      if (target) {
        target.after(el("span", { class: "field-error", role: "alert", "data-error-for": path, text: message }));
        target.closest(".action-card")?.classList.add("has-error");
        placed = true;
        break;
      }
    }
    if (!placed) unplaced.push({ path, message });
  }
  const listed = [...general, ...unplaced];
  problemsNode.replaceChildren(
    el("p", { text: t("The rule was not saved: {n} problem(s).", { n: errors.length }) }),
    listed.length ? el("ul", {}, listed.map((e) => el("li", { text: `${e.path || "/"}: ${e.message}` }))) : null,
  );
  problemsNode.hidden = false;
  root.querySelector(".field-error")?.scrollIntoView({ block: "center" });
}

function clearErrors() {
  state.errors = new Map();
  problemsNode.hidden = true;
  problemsNode.replaceChildren();
}

function localProblems() {
  const errors = [];
  if (state.isNew && m.keyProblem(state.rule.key)) {
    errors.push({ path: "/key", message: state.rule.key ? t("Use lower-case letters, digits and _, starting with a letter.") : t("Give the rule a key.") });
  }
  if (!state.rule.then?.length) errors.push({ path: "/then", message: t("Add at least one action.") });
  return errors;
}

function planBody(plan) {
  const rules = plan.rules ?? {};
  const lines = [];
  for (const [kind, text] of [["added", "Added"], ["changed", "Changed"], ["removed", "Removed"]]) {
    if (rules[kind]?.length) lines.push(el("li", { text: `${t(text)}: ${rules[kind].join(", ")}` }));
  }
  if (!lines.length) lines.push(el("li", { text: t("Nothing changes.") }));
  return [
    el("ul", { "data-testid": "rule-plan-lines" }, lines),
    el("p", { class: "muted small", text: t("Saving makes a new revision of the app ({revision} now); an admin can roll it back.", { revision: state.revision }) }),
  ];
}

async function save() {
  checkpoint();
  clearErrors();
  const local = localProblems();
  if (local.length) {
    showErrors(local);
    return;
  }
  const rule = m.compact(state.rule);
  const key = rule.key;
  const body = { ...rule };
  const url = `/api/apps/${app.key}/rules/${encodeURIComponent(key)}`;
  const headers = { "If-Match": `"${state.revision}"` };
  setStatus(t("Checking…"));
  let plan;
  try {
    ({ data: plan } = await api(`${url}?dry_run=true`, { method: "PUT", body, headers }));
  } catch (error) {
    return failed(error);
  }
  setStatus("");
  root.querySelector("[data-plan-body]").replaceChildren(...planBody(plan));
  planDialog.showModal();
  root.querySelector("[data-testid=rule-confirm]").focus();
  const confirmed = await new Promise((resolve) => {
    const confirm = root.querySelector("[data-testid=rule-confirm]");
    const done = (value) => {
      confirm.removeEventListener("click", onConfirm);
      planDialog.removeEventListener("close", onClose);
      resolve(value);
    };
    const onConfirm = () => {
      planDialog.close("confirm");
      done(true);
    };
    const onClose = () => done(planDialog.returnValue === "confirm");
    confirm.addEventListener("click", onConfirm);
    planDialog.addEventListener("close", onClose);
  });
  if (!confirmed) {
    setStatus(t("Not saved."));
    return;
  }
  setStatus(t("Saving…"));
  try {
    const { data: result } = await api(url, { method: "PUT", body, headers });
    state.revision = result.revision;
    savedText = JSON.stringify(rule);
    if (state.isNew) {
      state.isNew = false;
      root.querySelector("[data-testid=rule-delete]").hidden = false;
      history.replaceState(null, "", `/designer/${app.key}/rules/${encodeURIComponent(key)}${key === "new" ? "?existing=1" : ""}`);
    }
    render();
    setStatus(t("Saved (revision {revision}).", { revision: result.revision }), "ok");
  } catch (error) {
    failed(error);
  }
}

function failed(error) {
  if (error instanceof ApiError && error.status === 422) {
    showErrors(error.errors.length ? error.errors : [{ path: "", message: error.message }]);
    setStatus(t("Not saved."), "error");
  } else if (error instanceof ApiError && error.status === 412) {
    setStatus(t("Someone saved this app meanwhile; reload the page to see their changes (yours are lost on reload)."), "error");
  } else {
    setStatus(error.message, "error");
  }
}

async function deleteRule() {
  if (state.isNew) return;
  const key = state.rule.key;
  if (!window.confirm(t("Delete the rule {rule}? An admin can bring it back by rolling the app back.", { rule: key }))) return;
  setStatus(t("Deleting…"));
  try {
    await api(`/api/apps/${app.key}/rules/${encodeURIComponent(key)}`, { method: "DELETE", headers: { "If-Match": `"${state.revision}"` } });
    savedText = JSON.stringify(m.compact(state.rule)); // nothing left unsaved to guard
    state.rule = JSON.parse(savedText);
    window.location.assign(`/designer/${app.key}/rules`);
  } catch (error) {
    failed(error);
  }
}

// -- keyboard and the unsaved-changes guard --------------------------------------------------

root.querySelector("[data-testid=rule-undo]").addEventListener("click", undo);
root.querySelector("[data-testid=rule-redo]").addEventListener("click", redo);
root.querySelector("[data-testid=rule-save]").addEventListener("click", save);
root.querySelector("[data-testid=rule-delete]").addEventListener("click", deleteRule);
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey)) return;
  const key = event.key.toLowerCase();
  if (key === "s") {
    event.preventDefault();
    save();
  } else if (key === "z" && !event.shiftKey && !event.target.matches?.("input, textarea")) {
    event.preventDefault();
    undo();
  } else if ((key === "z" && event.shiftKey) || key === "y") {
    if (event.target.matches?.("input, textarea")) return;
    event.preventDefault();
    redo();
  }
});
window.addEventListener("beforeunload", (event) => {
  if (isDirty()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

render();
// listeners attached and the rule shown: tests (and anything else) may use the editor now
root.dataset.ready = "true";
