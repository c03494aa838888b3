// The form renderer: a form definition (JSON, as in the app definition) becomes a live,
// accessible HTML form. Used by the generated create/edit pages and by the designer's
// preview. Plain ES module, no build step.
//
//   import { renderForm } from "/static/form.js";
//   const handle = renderForm(container, form, {values, access, app, mode, now});
//   handle.values();          // the data to send (writable, visible fields only)
//   handle.setErrors([{path: "/phone", message: "..."}, {path: "/items/0/qty", ...}]);
//   handle.clearErrors(); handle.destroy();
//
// options: values (record data), access (field key -> "hidden" | "read" | "write"; absent is
// write), app (the app key, or {key, forms: {form: {label, title_field, title_type}}}),
// mode ("create" | "edit" | "preview"), now (ISO instant for `today`/`now`), plus optional
// titles ({record id: title} for relation values already set), recordId (the record being
// edited: its files are downloaded through it) and onChange(values).
//
// Conditions (`visible_if`) and computed fields use the same JsonLogic evaluator as the
// server (/static/logic.js) and follow the server's rules (form-rules.js). The server is
// still the judge: it validates and computes again on save.
//
// No silent loss (docs/forms.md, Visibility, rule 5): on update the server keeps the value a
// hidden field holds. When a change hides fields that hold values, a notice at the end of the
// form names them. Editing a record, it offers "Keep the values" (the default: the stored
// values stay, hidden; a value typed since is sent) or "Clear them" (values() sends null for
// each). Creating one, nothing is stored yet: the notice says those values are not saved
// while their fields are hidden. A field hidden when the form opened keeps the record's
// value without a notice.
//
// This module lays the form out (sections, labels, help, errors) and wires it up; the
// controls are form-controls.js (one per type), form-table.js, form-relation.js and
// form-file.js.

import { evaluate } from "/static/logic.js";
import { label, t } from "/static/i18n.js";
import { el } from "/static/dom.js";
import { makeControl } from "/static/form-controls.js";
import { localProblem } from "/static/form-checks.js";
import { evaluateFields } from "/static/form-rules.js";
import { showCellError, tableControl } from "/static/form-table.js";
import { clone, fieldLabel, isEmpty, nextId } from "/static/form-values.js";
import { makeTabs } from "/static/form-tabs.js";

// the helpers other pages take from here
export { relationPicker } from "/static/form-relation.js";
export { fieldLabel, humanSize, showDateTime } from "/static/form-values.js";

// -- the renderer -------------------------------------------------------------------------------

export function renderForm(container, form, options = {}) {
  const { access = {}, app = null, mode = "create", now = undefined, titles = {}, recordId = null, onChange = null } = options;
  const appKey = typeof app === "string" ? app : app?.key ?? "";
  const prefix = `fl${nextId()}`;
  const initial = clone(options.values || {});
  const fields = (form.fields || []).filter((field) => access[field.key] !== "hidden");
  const entries = new Map(); // field key -> {field, wrapper, control, error, section}
  const tables = new Map(); // table key -> table handle
  let pendingUploads = 0;
  let waiters = [];
  const root = el("div", { class: "fl-form", "data-form": form.key });

  const evalOpts = now ? { now } : {};

  // defaults for a new record: literals, and expressions over what is filled in
  const data = clone(initial);
  if (mode !== "edit") {
    for (const field of fields) {
      if (field.type === "section" || field.type === "computed" || field.key in data) continue;
      if (field.default !== undefined && field.default !== null) data[field.key] = clone(field.default);
      else if (field.default_expr) {
        try {
          data[field.key] = evaluate(field.default_expr, data, evalOpts);
        } catch {
          /* the server reports a failing default */
        }
      }
    }
  }

  function pending(delta) {
    pendingUploads += delta;
    if (pendingUploads === 0) {
      waiters.forEach((resolve) => resolve());
      waiters = [];
    }
  }

  // what every control shares: the app, the record, and how to report a change or an upload
  const base = { app, appKey, formKey: form.key, titles, recordId, changed: () => update(), pending };

  function readOnly(field) {
    // an auto-number is the server's to give, whatever its definition says
    return mode === "view" || access[field.key] === "read" || Boolean(field.read_only) || field.type === "autonumber";
  }

  function makeWrapper(field, control, { required }) {
    const errorId = `${prefix}-${field.key}-error`;
    const helpId = `${prefix}-${field.key}-help`;
    const help = field.help ? el("p", { class: "fl-help", id: helpId, text: label(field.help) }) : null;
    const error = el("p", { class: "fl-error", id: errorId, hidden: true, role: "alert" });
    const groupLike = control.element.matches?.(".fl-tags, .fl-radios, .fl-rating-input, .fl-signature-input, .fl-richtext-editor");
    const heading = groupLike
      ? el("span", { class: "fl-label", id: `${prefix}-${field.key}-label` }, fieldLabel(field), required ? el("span", { class: "fl-required", "aria-hidden": "true", text: " *" }) : null)
      : el("label", { class: "fl-label", for: `${prefix}-${field.key}` }, fieldLabel(field), required ? el("span", { class: "fl-required", "aria-hidden": "true", text: " *" }) : null);
    if (groupLike) {
      control.element.removeAttribute("aria-label");
      control.element.setAttribute("aria-labelledby", heading.id);
    }
    const target = control.focusTarget;
    if (target && target.setAttribute) {
      target.setAttribute("aria-describedby", [help ? helpId : null, errorId].filter(Boolean).join(" "));
      if (required) target.setAttribute("aria-required", "true");
    }
    const wide = ["textarea", "table", "multiselect", "file", "image", "signature", "richtext"].includes(field.type);
    return {
      // `width` (1-4 quarters of a row, docs/forms.md) is laid out by runtime.css
      wrapper: el("div", { class: `fl-field fl-${field.type}${wide ? " wide" : ""}`, "data-field": field.key, "data-width": field.width }, heading, control.element, help, error),
      error,
    };
  }

  // -- build the fields, grouped under their sections ---------------------------------------
  let tabs = null; // form-tabs.js, for `"layout": "tabs"` (set once the sections exist)
  let holder = el("div", { class: "fl-section fl-section-lead" });
  root.append(holder);
  let currentSection = null;
  for (const field of fields) {
    if (field.type === "section") {
      const heading = el("h2", { class: "fl-section-title", text: fieldLabel(field) });
      holder = el("section", { class: "fl-section", "data-section": field.key }, heading, field.help ? el("p", { class: "fl-help", text: label(field.help) }) : null);
      root.append(holder);
      currentSection = field.key;
      entries.set(field.key, { field, wrapper: holder, control: null, section: null });
      continue;
    }
    const locked = readOnly(field);
    const id = `${prefix}-${field.key}`;
    const control =
      field.type === "table"
        ? tableControl(field, data[field.key], { id, locked, access, base, evalOpts })
        : makeControl(field, {
            ...base,
            id,
            name: field.key,
            value: data[field.key],
            filePath: field.key,
            setError: (message) => showError(field.key, message),
          });
    if (field.type === "table") tables.set(field.key, control);
    if (locked && field.type !== "table") control.setDisabled(true);
    const required = Boolean(field.required) && !locked && field.type !== "computed";
    const { wrapper, error } = makeWrapper(field, control, { required });
    if (locked) wrapper.classList.add("fl-locked");
    entries.set(field.key, { field, wrapper, control, error, section: currentSection, locked });
    holder.append(wrapper);
  }
  root.querySelectorAll(".fl-section").forEach((section) => {
    if (!section.querySelector(".fl-field") && section.classList.contains("fl-section-lead")) section.remove();
  });
  // `"layout": "tabs"`: each section a tab (form-tabs.js); the fields before them stay above
  const sectionEntries = [...entries.values()].filter((entry) => entry.field.type === "section");
  tabs = form.layout === "tabs" && sectionEntries.length
    ? makeTabs(root, sectionEntries.map((entry) => ({ key: entry.field.key, label: fieldLabel(entry.field), element: entry.wrapper })), { prefix, name: label(form.label) || form.key })
    : null;
  container.replaceChildren(root);

  // -- live evaluation: read, hide, compute -------------------------------------------------------
  function read() {
    const out = {};
    for (const [key, entry] of entries) {
      if (!entry.control || entry.field.type === "computed") continue;
      if (entry.locked) {
        if (!isEmpty(initial[key])) out[key] = clone(initial[key]);
        continue;
      }
      const value = entry.control.get();
      if (!isEmpty(value)) out[key] = value;
    }
    return out;
  }

  let hiddenKeys = new Set();
  let firstUpdate = true;
  // fields a change hid while they held a value (the notice names them) and what to do
  const affected = new Set();
  let clearHidden = false;
  const noticeId = `${prefix}-hidden-values`;
  const noticeText = el("p", { class: "fl-hidden-text", id: `${noticeId}-text` });
  const choice = (value, text, checked) =>
    el(
      "div",
      {},
      el(
        "label",
        { class: "fl-hidden-choice" },
        el("input", { type: "radio", name: noticeId, value, checked, "data-testid": `hidden-values-${value}` }),
        ` ${text}`,
      ),
    );
  const editing = mode === "edit";
  const notice = el(
    "div",
    { class: "notice warn fl-hidden-values", role: "group", "aria-labelledby": `${noticeId}-text`, "data-testid": "hidden-values", hidden: true },
    noticeText,
    editing ? choice("keep", t("Keep the values (saved, not shown until the condition holds again)"), true) : null,
    editing ? choice("clear", t("Clear them when saving"), false) : null,
  );
  notice.addEventListener("change", (event) => {
    clearHidden = event.target.value === "clear";
    if (onChange) onChange(values());
  });
  if (mode === "create" || mode === "edit") root.append(notice);

  function holdsValue(key) {
    const entry = entries.get(key);
    return Boolean(entry?.control) && !entry.locked && entry.field.type !== "computed" && !isEmpty(entry.control.get());
  }

  function showNotice(hidden) {
    for (const [key] of entries) {
      if (!hidden.has(key) || !holdsValue(key)) affected.delete(key);
      else if (!firstUpdate && !hiddenKeys.has(key)) affected.add(key);
    }
    const names = [...affected].map((key) => fieldLabel(entries.get(key).field));
    notice.hidden = !names.length;
    if (names.length) {
      const words = { fields: names.join(t(", ")) };
      noticeText.textContent = editing
        ? t("Your change hides fields that hold values: {fields}.", words)
        : t("Your change hides fields that hold values: {fields}. They are not saved while hidden.", words);
    }
  }

  function evaluateForm() {
    const ruleFields = [...entries.values()].map((entry) => entry.field);
    return evaluateFields(ruleFields, read(), evalOpts);
  }

  function update() {
    const { hidden, data: current } = evaluateForm();
    showNotice(hidden);
    hiddenKeys = hidden;
    firstUpdate = false;
    for (const [key, entry] of entries) {
      entry.wrapper.hidden = hidden.has(key);
      if (entry.field.type === "computed") entry.control.set(current[key] ?? null);
    }
    for (const [key, table] of tables) if (!hidden.has(key)) table.refresh(current);
    recheckErrors();
    tabs?.refresh();
    if (onChange) onChange(values());
  }

  // -- errors that clear as the value becomes valid -------------------------------------------
  // field key -> the value (as JSON) the error was given for. While the value is that one the
  // error stands; once it changes, the browser's own checks (form-checks.js) say whether it
  // is still wrong (their message replaces the server's) or may be right (the error goes).
  const refused = new Map();

  function recheckErrors() {
    for (const [key, was] of refused) {
      const entry = entries.get(key);
      if (entry.wrapper.hidden) {
        showError(key, null); // a hidden field is neither checked nor sent
        refused.delete(key);
        continue;
      }
      const value = entry.control.get();
      if (JSON.stringify(value ?? null) === was) continue;
      const problem = localProblem(entry.field, value);
      showError(key, problem);
      if (!problem) refused.delete(key);
    }
  }

  function values() {
    const out = {};
    const current = read();
    for (const [key, entry] of entries) {
      if (!entry.control || entry.locked || entry.field.type === "computed") continue;
      if (hiddenKeys.has(key) || (entry.section && hiddenKeys.has(entry.section))) {
        // a new record stores no hidden value (the server drops them); an edited one keeps
        // them unless the person chose to clear those the change hid
        if (!editing || isEmpty(current[key])) continue;
        if (affected.has(key)) out[key] = clearHidden ? null : current[key];
        else if (!isEmpty(initial[key])) out[key] = current[key]; // hidden from the start: kept
        continue;
      }
      out[key] = current[key] ?? null;
    }
    return out;
  }

  // -- errors at their fields ----------------------------------------------------------------------
  function showError(key, message) {
    const entry = entries.get(key);
    if (!entry || !entry.error) return false;
    entry.error.textContent = message || "";
    entry.error.hidden = !message;
    entry.wrapper.classList.toggle("fl-invalid", Boolean(message));
    const target = entry.control.focusTarget;
    const targets = entry.control.element.matches?.(".fl-tags, .fl-radios")
      ? [entry.control.element]
      : [target];
    for (const node of targets) {
      if (!node?.setAttribute) continue;
      if (message) node.setAttribute("aria-invalid", "true");
      else node.removeAttribute("aria-invalid");
    }
    return true;
  }

  function clearErrors() {
    refused.clear();
    for (const [key, entry] of entries) {
      if (entry.error) showError(key, null);
    }
    tabs?.refresh();
    for (const table of tables.values()) {
      table.rows.forEach((row) => {
        for (const [key, error] of row.errors) showCellError(error, row.controls.get(key), null);
      });
    }
  }

  function setErrors(errors = []) {
    clearErrors();
    const unplaced = [];
    let first = null;
    const byField = new Map();
    for (const error of errors) {
      const path = String(error.path || "").replace(/^\/data(?=\/|$)/, "");
      const parts = path.split("/").filter(Boolean);
      const key = parts[0] || error.field;
      const entry = entries.get(key);
      if (!entry || !entry.control || entry.wrapper.hidden) {
        unplaced.push(error);
        continue;
      }
      if (parts.length >= 3 && tables.has(key)) {
        const at = tables.get(key).errorAt(Number(parts[1]), parts[2]);
        if (at?.error) {
          showCellError(at.error, at.control, error.message);
          first = first || at.control.focusTarget;
          continue;
        }
      }
      byField.set(key, [...(byField.get(key) || []), error.message]);
      first = first || entry.control.focusTarget;
    }
    for (const [key, messages] of byField) {
      showError(key, messages.join(" "));
      refused.set(key, JSON.stringify(entries.get(key).control.get() ?? null));
    }
    tabs?.refresh();
    if (first) tabs?.reveal(first); // the first tab with an error opens
    if (first?.focus) first.focus();
    return unplaced;
  }

  update();

  return {
    values,
    setErrors,
    clearErrors,
    /** Resolves when no upload is in flight. */
    ready: () => (pendingUploads === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
    /** Every readable value as shown (computed ones included), for previews. */
    data: () => evaluateForm().data,
    destroy() {
      for (const entry of entries.values()) entry.control?.destroy?.();
      for (const table of tables.values()) table.rows.forEach((row) => row.controls.forEach((c) => c.destroy?.()));
      root.remove();
    },
  };
}
