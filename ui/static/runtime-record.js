// The record page: times in the reader's time zone, deleting (with the version read), the
// timeline's filter (show one kind of entry; buttons, so keyboard and screen readers work),
// and a form laid out as tabs shown as tabs (form-tabs.js, as on the form itself).

import { api } from "/static/api.js";
import { showDateTime } from "/static/form.js";
import { makeTabs } from "/static/form-tabs.js";

const main = document.querySelector(".record-main[data-layout=tabs]");
const sections = main ? [...main.querySelectorAll(":scope > .record-section[data-section]")] : [];
if (sections.length) {
  const name = document.querySelector("[data-testid=record-title]")?.textContent || "";
  const parts = sections.map((element) => ({ key: element.dataset.section, label: element.querySelector("h2")?.textContent || element.dataset.section, element }));
  makeTabs(main, parts, { prefix: "record", name });
}

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
