// The generated create and edit pages: form.js renders the form from the definition the
// server put in the page (with the caller's field access); this module saves it through
// the record API, shows the server's validation errors at their fields, and explains an
// edit conflict (someone saved the record since it was opened) with both ways out.

import { renderForm } from "/static/form.js";
import { api } from "/static/api.js";
import { t } from "/static/i18n.js";
import { localText, showDateTimeNamed } from "/static/form-values.js";

const page = JSON.parse(document.getElementById("form-data").textContent);
const formElement = document.querySelector("[data-testid=record-form]");
const body = formElement.querySelector("[data-form-body]");
const general = formElement.querySelector("[data-form-error]");
const submit = formElement.querySelector("[data-testid=submit]");
const dialog = document.querySelector("dialog[data-testid=conflict]");
const appKey = page.app.key;
const formKey = page.form.key;
const record = page.record;
let version = record?.version ?? null;

const handle = renderForm(body, page.form, {
  values: page.values,
  access: page.access,
  app: page.app,
  mode: page.mode,
  now: page.now,
  titles: page.titles,
  recordId: record?.id ?? null,
});
const start = handle.values();

function changedValues() {
  const now = handle.values();
  if (!record) return now;
  const changed = {};
  for (const [key, value] of Object.entries(now)) {
    if (JSON.stringify(value ?? null) !== JSON.stringify(start[key] ?? null)) changed[key] = value;
  }
  return changed;
}

function showGeneral(message) {
  general.textContent = message || "";
  general.hidden = !message;
}

function recordUrl(id) {
  return `/apps/${appKey}/forms/${formKey}/${id}`;
}

async function save() {
  await handle.ready();
  handle.clearErrors();
  showGeneral(null);
  submit.disabled = true;
  try {
    if (!record) {
      const { data } = await api(`/api/records/${appKey}/${formKey}`, { method: "POST", body: { data: handle.values() } });
      window.location.assign(recordUrl(data.id));
      return;
    }
    const data = changedValues();
    if (!Object.keys(data).length) {
      window.location.assign(recordUrl(record.id));
      return;
    }
    const headers = { "If-Match": `"${version}"` };
    await api(`/api/records/${appKey}/${formKey}/${record.id}`, { method: "PATCH", body: { data }, headers });
    window.location.assign(recordUrl(record.id));
  } catch (problem) {
    submit.disabled = false;
    if (problem.status === 412 || (problem.status === 409 && record && !problem.errors.length)) {
      await explainConflict();
      return;
    }
    if (problem.status === 422 || problem.status === 400 || problem.status === 409) {
      const unplaced = handle.setErrors(problem.errors || []);
      const rest = unplaced.map((error) => error.message).filter(Boolean);
      showGeneral(rest.length ? rest.join(" ") : problem.errors?.length ? "" : problem.message);
      if (!problem.errors?.length || rest.length) general.focus?.();
      return;
    }
    showGeneral(problem.message || t("Saving failed."));
  }
}

async function explainConflict() {
  let text = t("Someone else saved this record after you opened it.");
  try {
    const { data } = await api(`/api/records/${appKey}/${formKey}/${record.id}`);
    const time = localText(data.updated_at).slice(11); // HH:MM on the clinic's clock
    text = t("Changed by {who} at {time} — reload or overwrite?", { who: data.updated_by, time });
    dialog.dataset.version = String(data.version);
    dialog.title = showDateTimeNamed(data.updated_at);
  } catch {
    /* the record may be gone; the text above stands */
  }
  dialog.querySelector("[data-conflict-text]").textContent = text;
  dialog.showModal();
  dialog.querySelector("[data-testid=conflict-reload]").focus();
}

dialog.querySelector("[data-testid=conflict-reload]").addEventListener("click", () => {
  dialog.close();
  window.location.reload();
});
dialog.querySelector("[data-testid=conflict-overwrite]").addEventListener("click", async () => {
  dialog.close();
  if (dialog.dataset.version) version = Number(dialog.dataset.version);
  await save();
});

formElement.addEventListener("submit", (event) => {
  event.preventDefault();
  save();
});
