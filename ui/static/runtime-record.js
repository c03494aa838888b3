// The record page: times in the reader's time zone, and deleting (with the version read).

import { api } from "/static/api.js";
import { showDateTime } from "/static/form.js";

for (const node of document.querySelectorAll("time[data-local]")) {
  node.textContent = showDateTime(node.getAttribute("datetime"));
}

const remove = document.querySelector("[data-testid=delete]");
if (remove) {
  remove.addEventListener("click", async () => {
    if (!window.confirm(remove.dataset.confirm)) return;
    try {
      await api(remove.dataset.url, { method: "DELETE", headers: { "If-Match": `"${remove.dataset.version}"` } });
      window.location.assign(remove.dataset.back);
    } catch (problem) {
      window.alert(problem.message);
    }
  });
}
