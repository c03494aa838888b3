// The rule list (/designer/{app}/rules): the on/off switch of each rule saves at once through
// `PATCH /api/apps/{app}/rules/{rule}` with the revision the page was read at (If-Match); a
// save made meanwhile by someone else (412) asks for a reload instead of overwriting it.

import { api, ApiError } from "/static/api.js";
import { t } from "/static/i18n.js";

const table = document.querySelector("[data-testid=rule-list]");
const status = document.querySelector("[data-testid=rules-status]");
let revision = table.dataset.revision;

for (const box of table.querySelectorAll("[data-toggle]")) {
  box.addEventListener("change", async () => {
    const rule = box.dataset.toggle;
    const enabled = box.checked;
    box.disabled = true;
    try {
      const { data } = await api(`/api/apps/${table.dataset.app}/rules/${encodeURIComponent(rule)}`, {
        method: "PATCH",
        body: { enabled },
        headers: { "If-Match": `"${revision}"` },
      });
      revision = String(data.revision);
      table.dataset.revision = revision;
      box.closest("tr").classList.toggle("off", !enabled);
      status.textContent = enabled ? t("Rule {rule} is on.", { rule }) : t("Rule {rule} is off.", { rule });
    } catch (error) {
      box.checked = !enabled;
      status.textContent =
        error instanceof ApiError && error.status === 412
          ? t("Someone changed this app meanwhile; reload the page.")
          : error.message;
    } finally {
      box.disabled = false;
    }
  });
}
