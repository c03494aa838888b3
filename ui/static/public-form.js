// The public form page (/p/<token>): form.js renders the link's form from the definition
// the server put in the page (only the link's fields); this module submits it once through
// POST /api/public/<token> (the token is the credential: no session, no CSRF token), shows
// the server's validation errors at their fields, then the thank-you message. A link that
// was used meanwhile reloads into the "no longer valid" page.

import { renderForm } from "/static/form.js";
import { api } from "/static/api.js";
import { t } from "/static/i18n.js";

const page = JSON.parse(document.getElementById("form-data").textContent);
const formElement = document.querySelector("[data-testid=public-form]");
const body = formElement.querySelector("[data-form-body]");
const general = formElement.querySelector("[data-form-error]");
const submit = formElement.querySelector("[data-testid=submit]");
const done = document.querySelector("[data-testid=thank-you]");

const handle = renderForm(body, page.form, { app: page.app, mode: "create", now: page.now });

function showGeneral(message) {
  general.textContent = message || "";
  general.hidden = !message;
}

async function send() {
  await handle.ready();
  handle.clearErrors();
  showGeneral(null);
  submit.disabled = true;
  try {
    await api(`/api/public/${encodeURIComponent(page.token)}`, { method: "POST", body: { data: handle.values() } });
  } catch (problem) {
    submit.disabled = false;
    if (problem.status === 404 || problem.status === 410) {
      window.location.reload();
      return;
    }
    if (problem.status === 422 || problem.status === 400) {
      const rest = handle.setErrors(problem.errors || []).map((error) => error.message).filter(Boolean);
      showGeneral(rest.length ? rest.join(" ") : problem.errors?.length ? "" : problem.message);
      if (!problem.errors?.length || rest.length) general.focus();
      return;
    }
    showGeneral(problem.message || t("Sending failed. Please try again."));
    general.focus();
    return;
  }
  document.querySelector("[data-public-form]").hidden = true;
  done.hidden = false;
  document.title = t("Thank you");
  done.focus?.();
}

formElement.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
