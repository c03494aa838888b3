// The record page: times in the reader's time zone, deleting (with the version read), and
// the timeline's filter (show one kind of entry; buttons, so keyboard and screen readers work).

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

const filter = document.querySelector("[data-testid=timeline-filter]");
if (filter) {
  const entries = document.querySelectorAll("[data-testid=timeline-entry]");
  filter.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-show]");
    if (!button) return;
    const wanted = button.dataset.show;
    for (const other of filter.querySelectorAll("button[data-show]")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    for (const entry of entries) {
      entry.hidden = wanted !== "" && entry.dataset.showAs !== wanted;
    }
  });
}
