// "Save as template" in the designer (docs/forms.md, Form templates): the form as last saved
// (its fields and settings, never its records) becomes a template anyone designing forms in
// the installation can start from. `POST /api/apps/{app}/forms/{form}/template`; the server
// checks that the caller designs the app.
//
//   wireTemplates(designer, {isDirty})   // once, when the designer starts
//   showTemplateButton()                  // after the first save of a new form

import { api, ApiError } from "/static/api.js";
import { label, t } from "/static/i18n.js";

const button = document.querySelector("[data-testid=designer-save-template]");
const dialog = document.querySelector("dialog[data-testid=template-dialog]");

export function showTemplateButton() {
  if (button) button.hidden = false;
}

export function wireTemplates(designer, { isDirty }) {
  if (!button || !dialog) return;
  const name = dialog.querySelector("[data-testid=template-name]");
  const nameZh = dialog.querySelector("[data-testid=template-name-zh-CN]");
  const error = dialog.querySelector("[data-testid=template-error]");
  const showError = (message) => {
    error.textContent = message || "";
    error.hidden = !message;
  };

  button.addEventListener("click", () => {
    if (isDirty()) {
      designer.status(t("Save your changes first: a template is made from the saved form."), "error");
      return;
    }
    const formLabel = designer.state.form.label;
    name.value = typeof formLabel === "string" ? formLabel : formLabel?.en || label(formLabel, "");
    nameZh.value = typeof formLabel === "object" && formLabel ? formLabel["zh-CN"] || "" : "";
    showError("");
    dialog.showModal();
    name.select();
  });

  dialog.querySelector("[data-testid=template-save]").addEventListener("click", async (event) => {
    event.preventDefault();
    const en = name.value.trim();
    const zh = nameZh.value.trim();
    if (!en && !zh) {
      showError(t("Give the template a name."));
      name.focus();
      return;
    }
    const wanted = zh ? { ...(en ? { en } : {}), "zh-CN": zh } : en;
    const url = `/api/apps/${encodeURIComponent(designer.state.app.key)}/forms/${encodeURIComponent(designer.state.form.key)}/template`;
    try {
      await api(url, { method: "POST", body: { label: wanted } });
      dialog.close();
      designer.status(t("Saved as the template “{name}”.", { name: en || zh }), "ok");
    } catch (problem) {
      showError(problem instanceof ApiError ? problem.errors.map((e) => e.message).join(" ") || problem.message : String(problem));
    }
  });
}
