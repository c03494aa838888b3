// The designer's save: plan first, then apply (docs/app-changes.md).
//
// 1. `PUT /api/apps/{app}/forms/{form}?dry_run=true` with `If-Match: "<revision>"` returns
//    the plan. 2. Everything safe: apply at once. Otherwise the plan is shown (each change
//    with its class and the records it touches) and applied only when confirmed — with
//    `allow_destructive=true` when it removes data. A type change of a field that records
//    hold values for needs a migration: the dialog offers it as a plain choice per field
//    ("convert 2 records: 4.5 → 5 — round / clear", with examples from the records), and the
//    choice is sent as the save's `migration` ({form, migration: {set: {field: JsonLogic}}},
//    docs/app-changes.md), checked by a new dry run before it is applied. Other changes that
//    need a migration are refused with what to do. A 422 points at fields by JSON pointer; a
//    412 means someone else saved.

import { api, ApiError } from "/static/api.js";
import { t, label } from "/static/i18n.js";
import * as model from "/static/designer-model.js";
import { formKeyProblem } from "/static/designer-props.js";
import { el } from "/static/dom.js";
import { evaluate } from "/static/logic.js";

const CLASS_NAMES = { safe: "Safe", needs_migration: "Needs migration", destructive: "Destructive" };

function badge(kind) {
  return el("span", { class: `badge ${kind}`, "data-class": kind, text: t(CLASS_NAMES[kind] || kind) });
}

// Problems the browser can see before asking the server: keys.
function localProblems(designer) {
  const entries = [];
  if (designer.state.isNew) {
    const problem = formKeyProblem(designer, designer.state.form.key);
    if (problem) entries.push({ uid: "form", prop: "form-key", message: problem });
  }
  const visit = (list) => {
    const seen = new Set();
    for (const field of list) {
      const siblings = new Set(list.filter((f) => f !== field).map((f) => f.key));
      const problem = model.keyProblem(field.key, seen.has(field.key) ? siblings : new Set());
      if (problem) entries.push({ uid: field._uid, prop: "key", message: problem });
      seen.add(field.key);
      if (field.type === "table") {
        if (!field.fields?.length) entries.push({ uid: field._uid, prop: "field", message: t("A table needs at least one column.") });
        else visit(field.fields);
      }
      if (field.type === "computed" && field.formula === undefined) {
        entries.push({ uid: field._uid, prop: "formula", message: t("Write the formula, e.g. TODAY() or SUM({a}, {b}).") });
      }
      if (model.TYPES[field.type]?.options) {
        const options = field.options || [];
        if (!options.length) entries.push({ uid: field._uid, prop: "options", message: t("Add at least one option to choose from.") });
        options.forEach((option, position) => {
          if (!String(option.value ?? "").trim()) {
            entries.push({ uid: field._uid, prop: "options", message: t("Option {n} is empty: give it a label, or remove it.", { n: position + 1 }) });
          }
        });
      }
    }
  };
  visit(designer.state.form.fields);
  return entries;
}

function unescape(part) {
  return part.replace(/~1/g, "/").replace(/~0/g, "~");
}

// Server problems -> entries at fields of the canvas (by the field order that was sent).
function mapErrors(designer, errors, order) {
  const entries = [];
  const general = [];
  for (const error of errors) {
    const parts = String(error.path || "").split("/").slice(1).map(unescape);
    if (parts[0] === "forms" && parts[1] === String(designer.state.formIndex)) {
      if (parts[2] === "fields" && parts.length > 3 && order[Number(parts[3])]) {
        const top = order[Number(parts[3])];
        let uid = top.uid;
        let rest = parts.slice(4);
        if (rest[0] === "fields" && rest.length > 1 && top.columns?.[Number(rest[1])]) {
          uid = top.columns[Number(rest[1])];
          rest = rest.slice(2);
        }
        entries.push({ uid, prop: rest.length ? rest[0] : "field", message: error.message });
        continue;
      }
      entries.push({ uid: "form", prop: parts.length > 2 ? `form-${parts[2]}` : "form", message: error.message });
      continue;
    }
    general.push(error);
  }
  return { entries, general };
}

function showGeneral(general) {
  const box = document.querySelector("[data-testid=designer-problems]");
  box.replaceChildren();
  box.hidden = !general.length;
  if (!general.length) return;
  box.append(
    el("p", { text: t("Other parts of the app refer to this form and would break:") }),
    el("ul", {}, ...general.map((error) => el("li", {}, el("code", { text: error.path || "" }), ` ${error.message}`))),
    el("p", { class: "small", text: t("Put the field back (Undo), or ask IT to change those parts of the app first.") }),
  );
}

function fieldName(designer, key) {
  const field = designer.state.form.fields.find((f) => f.key === key);
  return field ? label(field.label, "") || key : key;
}

function changeText(change) {
  if (change.change === "added") return t("added");
  if (change.change === "removed") return t("removed");
  if (change.change === "renamed") return t("renamed from {old}", { old: change.renamed_from });
  return t("changed");
}

// -- migrations offered as choices ------------------------------------------------------------

// value -> new value, per target type: the JsonLogic a `set` runs over each record (`try`:
// a value that cannot be converted is cleared rather than failing the whole save)
function toNumber(x) {
  return { "+": [x] };
}

function rounded(x) {
  const y = toNumber(x);
  const trunc = (z) => ({ "-": [z, { "%": [z, 1] }] });
  // half away from zero: 4.5 -> 5, -4.5 -> -5
  return { if: [{ ">=": [y, 0] }, trunc({ "+": [y, 0.5] }), trunc({ "-": [y, 0.5] })] };
}

const CONVERSIONS = {
  round: { text: "round", set: (x) => ({ try: [rounded(x), null] }) },
  number: { text: "convert to numbers", set: (x) => ({ try: [toNumber(x), null] }) },
  keep_text: { text: "keep as text", set: (x) => ({ cat: [x] }) },
  clear: { text: "clear", set: () => null },
};

function conversionsTo(type) {
  if (type === "integer") return ["round", "clear"];
  if (type === "number") return ["number", "clear"];
  if (["text", "textarea"].includes(type)) return ["keep_text", "clear"];
  return ["clear"];
}

// Field changes the designer can migrate by a choice: type changes, with their types.
function typeChanges(plan, formKey) {
  const found = [];
  for (const form of plan.forms || []) {
    if (form.form !== formKey || form.change !== "changed") continue;
    for (const change of form.fields || []) {
      if (change.class !== "needs_migration" || change.change !== "changed") continue;
      const match = (change.reasons || []).map((r) => /^type (\w+) -> (\w+)$/.exec(r)).find(Boolean);
      // another reason as well (a narrower limit, say) is more than a conversion can answer
      if (match && change.reasons.length === 1) found.push({ field: change.field, from: match[1], to: match[2], records: change.records ?? 0 });
    }
  }
  return found;
}

async function examples(designer, key) {
  try {
    const { data } = await api(`/api/records/${encodeURIComponent(designer.state.app.key)}/${encodeURIComponent(designer.state.form.key)}?limit=50`);
    return (data.items || []).map((record) => record.data?.[key]).filter((value) => value !== undefined && value !== null && value !== "").slice(0, 3);
  } catch {
    return [];
  }
}

function shown(value) {
  return value === null || value === undefined ? t("(empty)") : typeof value === "string" ? value : JSON.stringify(value);
}

// One choice per type change; `chosen` gets field -> conversion name.
function choiceRows(designer, changes, chosen) {
  return changes.map((change) => {
    const options = conversionsTo(change.to);
    chosen.set(change.field, options[0]);
    const sample = el("span", { class: "muted", "data-testid": `migrate-${change.field}-example` });
    const refresh = async () => {
      const values = await examples(designer, change.field);
      const set = CONVERSIONS[chosen.get(change.field)].set({ var: change.field });
      sample.textContent = values.map((value) => {
        let after;
        try {
          after = evaluate(set, { [change.field]: value });
        } catch {
          after = null;
        }
        return `${shown(value)} → ${shown(after)}`;
      }).join(", ");
    };
    const radios = options.map((name, i) => el("label", { class: "inline" },
      el("input", {
        type: "radio",
        name: `migrate-${change.field}`,
        value: name,
        checked: i === 0,
        "data-testid": `migrate-${change.field}-${name}`,
        onchange: () => {
          chosen.set(change.field, name);
          refresh();
        },
      }), ` ${t(CONVERSIONS[name].text)}`));
    refresh();
    return el("fieldset", { class: "migrate-choice", "data-testid": `migrate-${change.field}` },
      el("legend", { text: t("{field}: convert {n} records from {from} to {to}", { field: fieldName(designer, change.field), n: change.records, from: model.typeName(change.from), to: model.typeName(change.to) }) }),
      sample, el("div", { class: "choices" }, ...radios));
  });
}

// What is blocked, in plain words: the field and how many records it touches (the server's
// messages are written for IT: they name the `migrations` entry and JsonLogic).
function blockedWords(designer, plan, messages) {
  const entries = (plan.blocked || []).filter((b) => b.class !== "destructive" && b.field);
  if (!entries.length) return messages;
  return entries.map((entry) => {
    const change = (plan.forms || []).flatMap((form) => form.fields || []).find((c) => c.field === entry.field);
    return t("{field}: {n} records would need a new value ({reason}).", {
      field: fieldName(designer, entry.field),
      n: change?.records ?? "?",
      reason: (change?.reasons || []).join("; "),
    });
  });
}

// Fill the plan dialog; resolves true when the user confirms, or {migration} when the user
// chose how to convert the values of the fields whose type changed.
function showPlan(designer, plan, { refusal = null } = {}) {
  const dialog = document.querySelector("[data-testid=designer-plan]");
  const body = dialog.querySelector("[data-plan-body]");
  const confirm = dialog.querySelector("[data-testid=designer-confirm]");
  const summary = plan.summary || { safe: 0, needs_migration: 0, destructive: 0 };
  const items = [];
  for (const form of plan.forms || []) {
    if (form.change !== "changed") {
      items.push(el("li", { "data-testid": "plan-change", "data-class": form.class }, badge(form.class), " ",
        el("strong", { text: form.form }), ` — ${form.change === "added" ? t("a new form") : t("form removed")}`,
        form.records ? el("span", { class: "records", text: ` · ${t("{n} records", { n: form.records })}` }) : null));
      continue;
    }
    for (const change of form.fields || []) {
      const count = change.records ?? 0;
      items.push(el("li", { "data-testid": "plan-change", "data-class": change.class, "data-field": change.field }, badge(change.class), " ",
        el("strong", { text: fieldName(designer, change.field) }), ` ${changeText(change)}`,
        change.reasons?.length ? el("span", { class: "reasons", text: ` — ${change.reasons.join("; ")}` }) : null,
        el("span", { class: "records", "data-testid": "plan-records", text: ` · ${change.records_note ? t("at most {n} records", { n: count }) : t("{n} records", { n: count })}` })));
    }
  }
  body.replaceChildren(
    el("p", { class: "plan-summary" }, badge("safe"), ` ${summary.safe}  `, badge("needs_migration"), ` ${summary.needs_migration}  `, badge("destructive"), ` ${summary.destructive}`),
    el("ul", { class: "plan-list" }, ...items),
  );
  // destructive changes are "blocked" only until allow_destructive confirms them
  const blocked = refusal || (plan.blocked || []).filter((b) => b.class !== "destructive").map((b) => b.message);
  const convertible = typeChanges(plan, designer.state.form.key);
  const needing = (plan.forms || []).flatMap((form) => (form.fields || []).filter((c) => c.class === "needs_migration")).length;
  const chosen = new Map();
  let offered = false;
  if (blocked.length && convertible.length && convertible.length === needing) {
    // every blocked change is a type change: offer the conversions, in plain words
    offered = true;
    body.append(el("div", { class: "notice warn", "data-testid": "plan-migrate" },
      el("p", { text: t("Existing records hold values of the old type. Choose what happens to them:") }),
      ...choiceRows(designer, convertible, chosen)));
  } else if (blocked.length) {
    body.append(el("div", { class: "notice error", "data-testid": "plan-blocked", role: "alert" },
      el("strong", { text: t("The designer cannot save this change.") }),
      el("p", { text: t("It changes values that existing records hold, and the designer cannot say how the old values become new ones. Undo the change, or ask IT to convert the records.") }),
      el("ul", {}, ...blockedWords(designer, plan, blocked).map((text) => el("li", { text })))));
  } else if (summary.destructive) {
    body.append(el("p", { class: "notice warn", role: "alert", text: t("Values in existing records will be removed (they stay in each record's history). Save only if that is intended.") }));
  } else if (summary.needs_migration) {
    body.append(el("p", { class: "notice warn", text: t("Existing records will be migrated to the new definition.") }));
  }
  const canApply = !blocked.length || offered;
  confirm.hidden = !canApply;
  confirm.textContent = offered ? t("Convert the records and save") : summary.destructive ? t("Remove the data and save") : t("Save the changes");
  confirm.classList.toggle("danger", Boolean(summary.destructive));
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      confirm.removeEventListener("click", onConfirm);
      resolve(answer);
    };
    const onClose = () => {
      if (dialog.returnValue !== "confirm" || !offered) return done(dialog.returnValue === "confirm");
      const set = Object.fromEntries([...chosen].map(([key, name]) => [key, CONVERSIONS[name].set({ var: key })]));
      return done({ migration: { set } });
    };
    const onConfirm = () => dialog.close("confirm");
    dialog.addEventListener("close", onClose);
    confirm.addEventListener("click", onConfirm);
    dialog.returnValue = "";
    dialog.showModal();
    (canApply ? confirm : dialog.querySelector("[data-plan-cancel]")).focus();
  });
}

// Someone saved the app meanwhile: reload (losing these changes) or review and overwrite.
function showConflict(designer, problem) {
  const dialog = document.querySelector("[data-testid=designer-conflict]");
  dialog.querySelector("[data-conflict-text]").textContent = t(
    "Someone else saved a change to this app (it is now at revision {now}; you opened revision {mine}). Reload to see their version — your changes here are lost — or review what saving yours would change and overwrite.",
    { now: problem.current_revision ?? "?", mine: designer.state.revision },
  );
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener("close", onClose);
      resolve(dialog.returnValue);
    };
    dialog.addEventListener("close", onClose);
    dialog.returnValue = "";
    dialog.showModal();
  });
}

function busy(on) {
  const button = document.querySelector("[data-testid=designer-save]");
  button.disabled = on;
  button.setAttribute("aria-busy", String(on));
}

export async function save(designer, { review = false } = {}) {
  if (designer.state.saving) return;
  const local = localProblems(designer);
  if (local.length) {
    designer.showErrors(local);
    showGeneral([]);
    designer.status(t("Fix the marked fields first."), "error");
    return;
  }
  const form = model.serializeForm(designer.state.form);
  const order = designer.state.form.fields.map((f) => ({ uid: f._uid, columns: Array.isArray(f.fields) ? f.fields.map((c) => c._uid) : null }));
  const url = `/api/apps/${encodeURIComponent(designer.state.app.key)}/forms/${encodeURIComponent(form.key)}`;
  const headers = { "If-Match": `"${designer.state.revision}"` };
  designer.state.saving = true;
  busy(true);
  designer.status(t("Checking the change…"));
  try {
    const plan = (await api(`${url}?dry_run=true`, { method: "PUT", body: form, headers })).data;
    designer.showErrors([]);
    showGeneral([]);
    if (plan.status === "unchanged") {
      designer.markSaved();
      designer.status(t("Nothing to save: the form is as stored."), "ok");
      return;
    }
    const summary = plan.summary || {};
    const risky = !plan.can_apply || summary.needs_migration > 0 || summary.destructive > 0;
    const destructive = summary.destructive > 0 || (plan.blocked || []).some((b) => b.class === "destructive");
    let body = form;
    if (risky || review) {
      designer.status(t("Review the changes."));
      const answer = await showPlan(designer, plan);
      if (!answer) {
        designer.status(t("Not saved."));
        return;
      }
      if (answer.migration) {
        // the conversion chosen: checked by the server before anything is written
        body = { form, migration: answer.migration };
        const checked = (await api(`${url}?dry_run=true`, { method: "PUT", body, headers })).data;
        if (!checked.can_apply && (checked.blocked || []).some((b) => b.class !== "destructive")) {
          designer.status(t("Not saved: the change needs a decision the designer cannot make."), "error");
          await showPlan(designer, checked, { refusal: checked.blocked.map((b) => b.message) });
          return;
        }
      }
    }
    designer.status(t("Saving…"));
    const query = destructive ? "?allow_destructive=true" : "";
    const answer = await api(url + query, { method: "PUT", body, headers });
    const tag = answer.headers.get("etag");
    const revision = tag ? Number(tag.replace(/[^0-9]/g, "")) : answer.data.revision;
    designer.afterSave({ revision, formKey: form.key });
    designer.status(t("Saved — revision {n}.", { n: revision }), "ok");
  } catch (error) {
    if (!(error instanceof ApiError)) {
      designer.status(t("Could not reach the server: {reason}", { reason: error.message }), "error");
      return;
    }
    if (error.status === 422) {
      const { entries, general } = mapErrors(designer, error.errors, order);
      designer.showErrors(entries);
      showGeneral(general);
      designer.status(t("The form has {n} problem(s); nothing was saved.", { n: error.errors.length || 1 }), "error");
    } else if (error.status === 409) {
      designer.status(t("Not saved: the change needs a decision the designer cannot make."), "error");
      const plan = error.problem.plan || { summary: {}, forms: [], can_apply: false };
      await showPlan(designer, plan, { refusal: error.errors.map((e) => e.message).concat(error.errors.length ? [] : [error.message]) });
    } else if (error.status === 412) {
      designer.status(t("Someone else saved this app meanwhile."), "error");
      const choice = await showConflict(designer, error.problem);
      if (choice === "reload") {
        designer.markSaved();
        window.location.reload();
      } else if (choice === "overwrite") {
        designer.state.revision = error.problem.current_revision ?? designer.state.revision;
        designer.state.saving = false;
        busy(false);
        return save(designer, { review: true });
      }
    } else {
      designer.status(error.message, "error");
    }
  } finally {
    designer.state.saving = false;
    busy(false);
  }
}
