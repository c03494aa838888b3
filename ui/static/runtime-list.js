// A form's list page: the quick search (results as you type, the same `q` as the record
// API's, docs/filters.md), the filter bar (it builds the same JsonLogic the record API's list
// filter takes, docs/filters.md), the column picker (remembered per user and form in
// localStorage), "load more" over the API's keyset cursors, the exact count when the page
// could only say "1,000+", and times on the clinic's clock (form-values.js), whatever the
// browser's own zone. The rows themselves are
// rendered by the server, so the list works and opens fast without this module.

import { api } from "/static/api.js";
import { t } from "/static/i18n.js";
import { relationPicker } from "/static/form.js";
import { departmentControl, userControl } from "/static/form-people.js";
import { clinicZone, fromLocalInput, showDateTime, toLocalInput } from "/static/form-values.js";
import { el } from "/static/dom.js";
import { FILTER, buildCondition, filterKind, needsValue, parseCondition } from "/static/conditions.js";

const meta = JSON.parse(document.getElementById("list-data").textContent);
const fields = new Map(meta.fields.map((field) => [field.key, field]));
const bar = document.querySelector("[data-testid=filter-bar]");
const rowsList = bar.querySelector(".filter-rows");
const toggle = document.querySelector("[data-testid=filter-toggle]");
const table = document.querySelector("table.records");

export function localTimes(root = document) {
  for (const node of root.querySelectorAll("time[data-local]")) {
    node.textContent = showDateTime(node.getAttribute("datetime"));
  }
}
localTimes();

// -- the filter bar ------------------------------------------------------------------------
// Rows of field · operator · value (conditions.js, with the operators the list API compiles
// to SQL); the value input follows the field: numbers as numbers, datetimes in local time
// sent as UTC, options from a list, relations with the forms' record picker.

function valueInput(field, op, value, row) {
  const holder = row.querySelector(".filter-value");
  holder.replaceChildren();
  row.valueOf = () => null;
  if (!needsValue(op)) return;
  const kind = filterKind(field.type);
  const name = `filter-value`;
  if (kind === "relation") {
    const picker = relationPicker({ app: meta.app, target: field.target, name, id: `fv-${Math.random().toString(36).slice(2)}`, value: value ?? null });
    holder.append(picker.element);
    row.valueOf = () => picker.get();
    return;
  }
  if (kind === "user" || kind === "users" || kind === "department") {
    // a person by name (one at a time, also for several), a department from the app's
    const ctx = { id: `fv-${Math.random().toString(36).slice(2)}`, name, value: value ?? null, appKey: meta.app, titles: meta.titles, changed: () => {} };
    const control = kind === "department" ? departmentControl(field, ctx) : userControl({ ...field, multiple: false }, ctx);
    holder.append(control.element);
    row.valueOf = () => control.get() ?? undefined;
    return;
  }
  if (kind === "select" || kind === "multiselect") {
    const select = el("select", { name, "aria-label": t("Value") }, (field.options || []).map((o) => el("option", { value: o.value, text: o.label, selected: value === o.value })));
    holder.append(select);
    row.valueOf = () => select.value;
    return;
  }
  const types = { number: "number", date: "date", datetime: "datetime-local", time: "time" };
  const zoned = kind === "datetime" ? t("{zone} time", { zone: clinicZone() }) : undefined;
  const input = el("input", { name, type: types[kind] || "text", step: kind === "number" ? "any" : undefined, "aria-label": zoned ? `${t("Value")} (${zoned})` : t("Value"), title: zoned, "data-testid": "filter-value" });
  if (value !== undefined && value !== null) {
    input.value = kind === "datetime" ? toLocalInput(value) : String(value);
  }
  holder.append(input);
  row.valueOf = () => {
    if (input.value === "") return undefined;
    if (kind === "number") return Number(input.value);
    if (kind === "datetime") return fromLocalInput(input.value);
    return input.value;
  };
}

function addRow(condition = {}) {
  const first = meta.fields[0];
  const field = fields.get(condition.field) || first;
  const fieldSelect = el("select", { "aria-label": t("Field"), "data-testid": "filter-field" }, meta.fields.map((f) => el("option", { value: f.key, text: f.label, selected: f.key === field.key })));
  const opSelect = el("select", { "aria-label": t("Condition"), "data-testid": "filter-op" });
  const remove = el("button", { type: "button", class: "icon-button", "aria-label": t("Remove condition"), text: "×" });
  const row = el("li", { class: "filter-row", "data-testid": "filter-row" }, fieldSelect, opSelect, el("span", { class: "filter-value" }), remove);
  function fillOps(selected) {
    const f = fields.get(fieldSelect.value);
    const ops = FILTER.operators(f.type);
    opSelect.replaceChildren(...ops.map((op) => el("option", { value: op, text: t(FILTER.label(op, f.type)), selected: op === selected })));
    valueInput(f, opSelect.value, condition.value, row);
    condition = {};
  }
  fieldSelect.addEventListener("change", () => fillOps());
  opSelect.addEventListener("change", () => valueInput(fields.get(fieldSelect.value), opSelect.value, undefined, row));
  remove.addEventListener("click", () => row.remove());
  // {field, op, value}, or null while the value is missing
  row.conditionOf = () => {
    const op = opSelect.value;
    const value = needsValue(op) ? row.valueOf() : null;
    if (needsValue(op) && (value === undefined || value === null || value === "" || Number.isNaN(value))) return null;
    return { field: fieldSelect.value, op, value };
  };
  rowsList.append(row);
  fillOps(condition.op);
  return row;
}

function restore(filter) {
  if (!filter) return true;
  let rule;
  try {
    rule = JSON.parse(filter);
  } catch {
    return false;
  }
  const parsed = parseCondition(rule, FILTER, (key) => fields.get(key)?.type);
  if (!parsed) return false;
  bar.querySelector("[name=join]").value = parsed.join === "any" ? "or" : "and";
  parsed.rows.forEach((condition) => addRow(condition));
  return true;
}

function go(params) {
  if (meta.q) params = { q: meta.q, ...params };
  const url = new URL(window.location.href);
  url.search = "";
  for (const [key, value] of Object.entries(params)) if (value) url.searchParams.set(key, value);
  window.location.assign(url.toString());
}

toggle.addEventListener("click", () => {
  bar.hidden = !bar.hidden;
  toggle.setAttribute("aria-expanded", String(!bar.hidden));
  if (!bar.hidden && !rowsList.children.length) addRow();
  if (!bar.hidden) bar.querySelector("select, input")?.focus();
});
bar.querySelector("[data-testid=filter-add]").addEventListener("click", () => addRow().querySelector("select").focus());
bar.querySelector("[data-testid=filter-clear]").addEventListener("click", () => go({ sort: meta.sort === "-id" ? "" : meta.sort, drill: meta.drill }));
bar.addEventListener("submit", (event) => {
  event.preventDefault();
  const rows = [...rowsList.children].map((row) => row.conditionOf?.()).filter(Boolean);
  const join = bar.querySelector("[name=join]").value === "or" ? "any" : "all";
  const rule = buildCondition({ join, rows });
  go({ filter: rule ? JSON.stringify(rule) : "", sort: meta.sort === "-id" ? "" : meta.sort, drill: meta.drill });
});
if (meta.filter) {
  if (!restore(meta.filter)) {
    rowsList.append(el("li", { class: "muted", text: t("This list has a filter the bar cannot show; Clear removes it.") }));
  }
  bar.hidden = false;
  toggle.setAttribute("aria-expanded", "true");
}

// -- columns -----------------------------------------------------------------------------------

const storeKey = `formloom.columns.${meta.user}.${meta.app}.${meta.form}`;
const picker = document.querySelector("[data-testid=columns]");
const style = document.getElementById("column-style");
const exportLink = document.querySelector("[data-testid=export]");

function chosenColumns() {
  try {
    const saved = JSON.parse(localStorage.getItem(storeKey) || "null");
    if (Array.isArray(saved)) return saved.filter((key) => meta.columns.includes(key));
  } catch {
    /* a broken entry is ignored */
  }
  return meta.defaults;
}

function applyColumns(visible) {
  const shown = new Set(visible);
  style.textContent = meta.columns
    .filter((key) => !shown.has(key))
    .map((key) => `.records [data-col="${CSS.escape(key)}"]{display:none}`)
    .join("\n");
  for (const box of picker.querySelectorAll("input[type=checkbox]")) box.checked = shown.has(box.value);
  if (!exportLink) return; // the caller may not export this form
  const url = new URL(exportLink.href, window.location.href);
  // the title column is always there, so the export starts with it too
  const keys = meta.columns.filter((key) => shown.has(key) && key !== meta.title);
  url.searchParams.set("fields", (meta.title ? [meta.title, ...keys] : keys).join(","));
  exportLink.href = url.pathname + url.search;
}

picker.addEventListener("change", () => {
  const visible = [...picker.querySelectorAll("input[type=checkbox]")].filter((box) => box.checked).map((box) => box.value);
  localStorage.setItem(storeKey, JSON.stringify(visible));
  applyColumns(visible);
});
picker.querySelector("[data-reset-columns]").addEventListener("click", () => {
  localStorage.removeItem(storeKey);
  applyColumns(meta.defaults);
});
applyColumns(chosenColumns());
// the picker closes like a menu: a click elsewhere, or Escape (focus back on its button)
document.addEventListener("click", (event) => {
  if (picker.open && !picker.contains(event.target)) picker.open = false;
});
picker.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && picker.open) {
    picker.open = false;
    picker.querySelector("summary").focus();
  }
});

// -- load more -----------------------------------------------------------------------------------

const pager = document.querySelector("nav.pager");
pager.addEventListener("click", async (event) => {
  const more = event.target.closest("[data-testid=load-more]");
  if (!more) return;
  {
    event.preventDefault();
    more.setAttribute("aria-busy", "true");
    const params = new URLSearchParams(more.getAttribute("href").replace(/^\?/, ""));
    const answer = await fetch(`/apps/${meta.app}/forms/${meta.form}/rows?${params}`, { headers: { accept: "text/html" } });
    more.removeAttribute("aria-busy");
    if (!answer.ok) return;
    const template = document.createElement("template");
    template.innerHTML = await answer.text();
    localTimes(template.content);
    const firstNew = template.content.querySelector("tr a");
    table.tBodies[0].append(template.content);
    const next = answer.headers.get("X-Next-Cursor");
    if (next) {
      params.set("cursor", next);
      more.setAttribute("href", `?${params}`);
      more.dataset.cursor = next;
    } else {
      more.remove();
    }
    firstNew?.focus();
  }
});

// -- the exact count, when the page could only say "1,000+" ------------------------------------

const count = document.querySelector("[data-testid=count]");

export function recordCount(n, more = false) {
  if (more) return t("{n}+ records", { n: n.toLocaleString() });
  return n === 1 ? t("1 record") : t("{n} records", { n: n.toLocaleString() });
}

function exactCount() {
  if (count?.dataset.more !== "true" || meta.drill) return;
  const body = { count: true, limit: 1, fields: [] };
  if (meta.filter) body.filter = JSON.parse(meta.filter);
  if (meta.q) body.q = meta.q;
  const asked = meta.q;
  api(`/api/records/${meta.app}/${meta.form}/query`, { method: "POST", body })
    .then(({ data }) => {
      if (asked !== meta.q) return; // the term changed meanwhile
      count.dataset.count = String(data.count);
      count.dataset.more = "false";
      count.textContent = recordCount(data.count);
    })
    .catch(() => {});
}
exactCount();

// -- quick search ---------------------------------------------------------------------------
// Typing searches (a quarter of a second after the last key): the rows come from the same
// HTML rows endpoint as "load more", and the address keeps the term (?q=), so a search can
// be bookmarked, reloaded and exported. Without scripts the box is a plain GET form.

const searchForm = document.querySelector("[data-testid=list-search]");
const searchInput = searchForm?.querySelector("input[name=q]");
const empty = document.querySelector("[data-testid=empty]");
const emptyFirst = empty && !meta.q ? [...empty.childNodes].map((node) => node.cloneNode(true)) : null;
let searchTimer = null;
let searchSeq = 0;

function listParams(q) {
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  if (meta.filter) params.set("filter", meta.filter);
  if (meta.sort && meta.sort !== "-id") params.set("sort", meta.sort);
  if (meta.drill) params.set("drill", meta.drill);
  return params;
}

async function search(q) {
  const seq = ++searchSeq;
  const params = listParams(q);
  table.setAttribute("aria-busy", "true");
  const answer = await fetch(`/apps/${meta.app}/forms/${meta.form}/rows?${params}`, { headers: { accept: "text/html" } });
  if (seq !== searchSeq) return; // a later search has started
  table.removeAttribute("aria-busy");
  if (!answer.ok) return;
  meta.q = q;
  const template = document.createElement("template");
  template.innerHTML = await answer.text();
  localTimes(template.content);
  table.tBodies[0].replaceChildren(template.content);
  const rows = table.tBodies[0].rows.length;
  const next = answer.headers.get("X-Next-Cursor");
  count.dataset.count = String(rows);
  count.dataset.more = next ? "true" : "false";
  count.textContent = recordCount(rows, Boolean(next));
  if (empty) {
    empty.hidden = rows > 0;
    if (q) empty.textContent = t("No records match “{q}”.", { q });
    else if (emptyFirst) empty.replaceChildren(...emptyFirst.map((node) => node.cloneNode(true)));
  }
  pager.replaceChildren();
  if (next) {
    const more = new URLSearchParams(params);
    more.set("cursor", next);
    pager.append(el("a", { class: "button quiet", href: `?${more}`, "data-testid": "load-more", "data-cursor": next, text: t("Load more") }));
  }
  const url = new URL(window.location.href);
  url.search = params.toString();
  window.history.replaceState(null, "", url.pathname + url.search);
  if (exportLink) {
    const exportUrl = new URL(exportLink.href, window.location.href);
    if (q) exportUrl.searchParams.set("q", q);
    else exportUrl.searchParams.delete("q");
    exportLink.href = exportUrl.pathname + exportUrl.search;
  }
  exactCount();
}

if (searchForm) {
  searchInput.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search(searchInput.value.trim()), 250);
  });
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    search(searchInput.value.trim());
  });
  searchInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && searchInput.value) {
      searchInput.value = "";
      clearTimeout(searchTimer);
      search("");
    }
  });
}
