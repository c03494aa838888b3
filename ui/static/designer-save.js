// The designer's save: plan first, then apply (docs/app-changes.md).
//
// 1. `PUT /api/apps/{app}/forms/{form}?dry_run=true` with `If-Match: "<revision>"` returns
//    the plan. 2. Everything safe: apply at once. Otherwise the plan is shown (each change
//    with its class and the records it touches) and applied only when confirmed — with
//    `allow_destructive=true` when it removes data. A change that needs a migration cannot be
//    applied from here (the API refuses it with 409 until a `migrations` entry covers it); the
//    dialog says so. A 422 points at fields by JSON pointer; a 412 means someone else saved.

import { api, ApiError } from "/static/api.js";
import { t, label } from "/static/i18n.js";
import * as model from "/static/designer-model.js";
import { formKeyProblem } from "/static/designer-props.js";
import { el } from "/static/dom.js";

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

// Fill the plan dialog; resolves true when the user confirms.
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
  if (blocked.length) {
    body.append(el("div", { class: "notice error", "data-testid": "plan-blocked", role: "alert" },
      el("strong", { text: t("The designer cannot save this change.") }),
      el("p", { text: t("It changes values that existing records hold, which needs a migration (how old values become new ones). Undo the change, or ask IT to import the app with a `migrations` entry.") }),
      el("ul", {}, ...blocked.map((message) => el("li", { text: message })))));
  } else if (summary.destructive) {
    body.append(el("p", { class: "notice warn", role: "alert", text: t("Values in existing records will be removed (they stay in each record's history). Save only if that is intended.") }));
  } else if (summary.needs_migration) {
    body.append(el("p", { class: "notice warn", text: t("Existing records will be migrated to the new definition.") }));
  }
  const canApply = !blocked.length;
  confirm.hidden = !canApply;
  confirm.textContent = summary.destructive ? t("Remove the data and save") : t("Save the changes");
  confirm.classList.toggle("danger", Boolean(summary.destructive));
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      confirm.removeEventListener("click", onConfirm);
      resolve(answer);
    };
    const onClose = () => done(dialog.returnValue === "confirm");
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
    if (risky || review) {
      designer.status(t("Review the changes."));
      if (!(await showPlan(designer, plan))) {
        designer.status(t("Not saved."));
        return;
      }
    }
    designer.status(t("Saving…"));
    const query = destructive ? "?allow_destructive=true" : "";
    const answer = await api(url + query, { method: "PUT", body: form, headers });
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
