// The dashboard page: a shared filter on a link to another form (a branch) becomes the
// forms' search-as-you-type record picker, which offers the records by title and keeps the
// chosen id in the filter's hidden input, so the filter form still submits `branch=<id>`.
// Select filters are plain <select>s of the field's options, rendered by the server.

import { relationPicker } from "/static/form.js";

const page = JSON.parse(document.getElementById("dashboard-data").textContent);

for (const holder of document.querySelectorAll("[data-filter-relation]")) {
  const key = holder.dataset.key;
  const target = holder.dataset.target;
  const hidden = holder.querySelector(`input[type=hidden][name="${CSS.escape(key)}"]`);
  const picker = relationPicker({
    app: { key: page.app, forms: { [target]: JSON.parse(holder.dataset.info) } },
    target,
    name: key,
    id: `filter-${key}-search`,
    value: hidden.value || null,
    title: holder.dataset.title || null,
  });
  hidden.replaceWith(picker.element);
}
