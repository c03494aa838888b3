// The designer's home page (/designer/{app}): deleting a saved form template. Starting from
// one is a plain link to /designer/{app}/new?template={id}; the server renders the list and
// shows Delete only where the caller may delete (the API checks again).

import { api } from "/static/api.js";
import { t } from "/static/i18n.js";

document.querySelector("[data-testid=form-templates]")?.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-delete-template]");
  if (!button) return;
  const card = button.closest("[data-template]");
  const name = card.querySelector("a").textContent;
  if (!window.confirm(t("Delete the template “{name}”? Forms made from it stay as they are.", { name }))) return;
  button.disabled = true;
  try {
    await api(`/api/form-templates/${encodeURIComponent(button.dataset.deleteTemplate)}`, { method: "DELETE" });
    card.remove();
  } catch (error) {
    button.disabled = false;
    window.alert(error.message);
  }
});
