// A form's list page: the filter bar (it builds the same JsonLogic the record API's list
// filter takes, docs/filters.md), the column picker (remembered per user and form in
// localStorage), "load more" over the API's keyset cursors, the exact count when the page
// could only say "1,000+", and times in the reader's own time zone. The rows themselves are
// rendered by the server, so the list works and opens fast without this module.

import { api } from "/static/api.js";
import { t } from "/static/i18n.js";
import { relationPicker, showDateTime } from "/static/form.js";
import { el } from "/static/dom.js";

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

const OPERATORS = {
  contains: { label: "contains", rule: (k, v) => ({ in: [v, { var: k }] }) },
  has: { label: "has", rule: (k, v) => ({ in: [v, { var: k }] }) },
  eq: { label: "is", rule: (k, v) => ({ "==": [{ var: k }, v] }) },
  ne: { label: "is not", rule: (k, v) => ({ "!=": [{ var: k }, v] }) },
  lt: { label: "<", rule: (k, v) => ({ "<": [{ var: k }, v] }) },
  le: { label: "≤", rule: (k, v) => ({ "<=": [{ var: k }, v] }) },
  gt: { label: ">", rule: (k, v) => ({ ">": [{ var: k }, v] }) },
  ge: { label: "≥", rule: (k, v) => ({ ">=": [{ var: k }, v] }) },
  before: { label: "is before", rule: (k, v) => ({ "<": [{ var: k }, v] }) },
  after: { label: "is on or after", rule: (k, v) => ({ ">=": [{ var: k }, v] }) },
  yes: { label: "is yes", rule: (k) => ({ "==": [{ var: k }, true] }), noValue: true },
  no: { label: "is no", rule: (k) => ({ "==": [{ var: k }, false] }), noValue: true },
  empty: { label: "is empty", rule: (k) => ({ is_empty: [{ var: k }] }), noValue: true },
  filled: { label: "is not empty", rule: (k) => ({ "!": { is_empty: [{ var: k }] } }), noValue: true },
};
const BY_TYPE = {
  text: ["contains", "eq", "ne", "empty", "filled"],
  number: ["eq", "ne", "lt", "le", "gt", "ge", "empty", "filled"],
  date: ["eq", "before", "after", "empty", "filled"],
  datetime: ["before", "after", "empty", "filled"],
  time: ["eq", "before", "after", "empty", "filled"],
  select: ["eq", "ne", "empty", "filled"],
  multiselect: ["has", "empty", "filled"],
  boolean: ["yes", "no"],
  relation: ["eq", "ne", "empty", "filled"],
};
const KIND = { textarea: "text", email: "text", phone: "text", url: "text", integer: "number" };
const kindOf = (field) => KIND[field.type] || (BY_TYPE[field.type] ? field.type : "text");
const COMPARE = { "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge" };

function valueInput(field, op, value, row) {
  const holder = row.querySelector(".filter-value");
  holder.replaceChildren();
  row.valueOf = () => null;
  if (OPERATORS[op]?.noValue) return;
  const kind = kindOf(field);
  const name = `filter-value`;
  if (kind === "relation") {
    const picker = relationPicker({ app: meta.app, target: field.target, name, id: `fv-${Math.random().toString(36).slice(2)}`, value: value ?? null });
    holder.append(picker.element);
    row.valueOf = () => picker.get();
    return;
  }
  if (kind === "select" || kind === "multiselect") {
    const select = el("select", { name, "aria-label": t("Value") }, (field.options || []).map((o) => el("option", { value: o.value, text: o.label, selected: value === o.value })));
    holder.append(select);
    row.valueOf = () => select.value;
    return;
  }
  const types = { number: "number", date: "date", datetime: "datetime-local", time: "time" };
  const input = el("input", { name, type: types[kind] || "text", step: kind === "number" ? "any" : undefined, "aria-label": t("Value"), "data-testid": "filter-value" });
  if (value !== undefined && value !== null) {
    if (kind === "datetime") {
      const date = new Date(value);
      const pad = (n) => String(n).padStart(2, "0");
      input.value = Number.isNaN(date.getTime()) ? "" : `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
    } else input.value = String(value);
  }
  holder.append(input);
  row.valueOf = () => {
    if (input.value === "") return undefined;
    if (kind === "number") return Number(input.value);
    if (kind === "datetime") return new Date(input.value).toISOString().replace(/\.\d{3}Z$/, "Z");
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
    const ops = BY_TYPE[kindOf(f)];
    opSelect.replaceChildren(...ops.map((op) => el("option", { value: op, text: t(OPERATORS[op].label), selected: op === selected })));
    valueInput(f, opSelect.value, condition.value, row);
    condition = {};
  }
  fieldSelect.addEventListener("change", () => fillOps());
  opSelect.addEventListener("change", () => valueInput(fields.get(fieldSelect.value), opSelect.value, undefined, row));
  remove.addEventListener("click", () => row.remove());
  row.ruleOf = () => {
    const op = OPERATORS[opSelect.value];
    const value = row.valueOf();
    if (!op.noValue && (value === undefined || value === null || value === "" || Number.isNaN(value))) return null;
    return op.rule(fieldSelect.value, value);
  };
  rowsList.append(row);
  fillOps(condition.op);
  return row;
}

// A condition the bar itself would build, read back: {field, op, value}, or null.
function parseCondition(rule) {
  if (!rule || typeof rule !== "object" || Array.isArray(rule)) return null;
  const [op, args] = Object.entries(rule)[0] || [];
  const varOf = (node) => (node && typeof node === "object" && typeof node.var === "string" ? node.var : null);
  if (op === "!" && args?.is_empty) {
    const key = varOf(args.is_empty[0]);
    return key ? { field: key, op: "filled" } : null;
  }
  if (op === "is_empty") return varOf(args[0]) ? { field: varOf(args[0]), op: "empty" } : null;
  if (op === "in" && Array.isArray(args) && varOf(args[1])) {
    const field = fields.get(varOf(args[1]));
    return field ? { field: field.key, op: field.type === "multiselect" ? "has" : "contains", value: args[0] } : null;
  }
  if (COMPARE[op] && Array.isArray(args) && args.length === 2 && varOf(args[0])) {
    const field = fields.get(varOf(args[0]));
    if (!field) return null;
    const kind = kindOf(field);
    if (kind === "boolean") return { field: field.key, op: args[1] === true ? "yes" : "no" };
    let name = COMPARE[op];
    if (["date", "datetime", "time"].includes(kind)) name = op === "<" ? "before" : op === ">=" ? "after" : name;
    return { field: field.key, op: name, value: args[1] };
  }
  return null;
}

function restore(filter) {
  if (!filter) return true;
  let rule;
  try {
    rule = JSON.parse(filter);
  } catch {
    return false;
  }
  const join = rule && (rule.and || rule.or);
  const list = Array.isArray(join) ? join : [rule];
  const parsed = list.map(parseCondition);
  if (parsed.some((c) => !c || !fields.has(c.field))) return false;
  bar.querySelector("[name=join]").value = rule.or ? "or" : "and";
  parsed.forEach((condition) => addRow(condition));
  return true;
}

function go(params) {
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
  const rules = [...rowsList.children].map((row) => row.ruleOf()).filter(Boolean);
  const join = bar.querySelector("[name=join]").value;
  const rule = rules.length === 0 ? null : rules.length === 1 ? rules[0] : { [join]: rules };
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

const more = document.querySelector("[data-testid=load-more]");
if (more) {
  more.addEventListener("click", async (event) => {
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
  });
}

// -- the exact count, when the page could only say "1,000+" ------------------------------------

const count = document.querySelector("[data-testid=count]");
if (count?.dataset.more === "true" && !meta.drill) {
  const body = { count: true, limit: 1, fields: [] };
  if (meta.filter) body.filter = JSON.parse(meta.filter);
  api(`/api/records/${meta.app}/${meta.form}/query`, { method: "POST", body })
    .then(({ data }) => {
      count.dataset.count = String(data.count);
      count.dataset.more = "false";
      count.textContent = t("{n} records", { n: data.count.toLocaleString() });
    })
    .catch(() => {});
}
