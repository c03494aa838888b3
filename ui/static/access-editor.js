// The access screen (/designer/{app}/{form}/access): roles × read / create / update / delete /
// export, and per role which records (a row filter, built with the condition builder) and
// which fields are hidden or read-only. The page's data (#access-data) is the access API's
// document (GET /api/apps/{app}/forms/{form}/access); saving replaces the form's grants with
// PUT on the same path, with If-Match (docs/permissions.md, "The access screen").
//
// Invariants:
// - what is saved is `m.toGrants(model)` (access-editor-model.js); the JSON box shows it;
// - the app's "*" grants are shown (ticked, greyed) and never sent;
// - a form no grant names starts from the server's proposal, shown as unsaved until saved;
// - nothing is written but by the Save button; leaving with unsaved changes asks first.

import { api, ApiError } from "/static/api.js";
import { el } from "/static/dom.js";
import { t, label as labelOf } from "/static/i18n.js";
import { FILTER, needsValue, literal } from "/static/conditions.js";
import * as m from "/static/access-editor-model.js";

const data = JSON.parse(document.getElementById("access-data").textContent);
const root = document.querySelector("[data-testid=access-editor]");
const matrix = root.querySelector("[data-access-matrix]");
const statusNode = root.querySelector("[data-testid=access-status]");
const dirtyNode = root.querySelector("[data-testid=access-dirty]");
const problemsNode = root.querySelector("[data-testid=access-problems]");
const proposalNode = root.querySelector("[data-testid=access-proposal]");
const jsonBox = root.querySelector("[data-testid=access-json]");

const form = data.form;
const roleKeys = data.roles.map((r) => r.key);
const rolesByKey = Object.fromEntries(data.roles.map((r) => [r.key, r]));
const shared = m.sharedActions(data.shared);
const COLUMNS = [{ key: "created_by", label: t("Created by"), type: "text" }];
const fields = data.fields.filter((f) => m.FILTERABLE.has(f.type)).map((f) => ({ ...f, label: labelOf(f.label, f.key) }));
const filterFields = [...fields, ...COLUMNS];
const typeOf = (key) => filterFields.find((f) => f.key === key)?.type;
const NEEDS_READ = ["update", "delete", "export"];
const ACTION_NAMES = { read: "Read", create: "Create", update: "Update", delete: "Delete", export: "Export" };
const USER_NAMES = { "$user.branch": "the user's branch", "$user.department": "the user's department", "$user.username": "the user (who is signed in)" };

const state = {
  revision: data.revision,
  model: m.load(data.proposal || data.grants, roleKeys),
  open: new Set(), // roles whose details are shown
  jsonFilter: new Set(), // roles whose row filter is edited as JSON
  errors: new Map(), // role -> messages
};
let savedText = JSON.stringify(m.toGrants(m.load(data.grants, roleKeys), form, roleKeys));

const roleName = (key) => labelOf(rolesByKey[key]?.label, key);
const userName = (name) => (USER_NAMES[name] ? t(USER_NAMES[name]) : t("the user's {name}", { name: name.slice("$user.".length) }));
const grants = () => m.toGrants(state.model, form, roleKeys);
const isDirty = () => JSON.stringify(grants()) !== savedText;

function setStatus(text, kind) {
  statusNode.textContent = text;
  if (kind) statusNode.dataset.kind = kind;
  else delete statusNode.dataset.kind;
}

function refresh() {
  dirtyNode.hidden = !isDirty();
  if (document.activeElement !== jsonBox) jsonBox.value = JSON.stringify(grants(), null, 2);
}

/** Change the model and draw the screen again (the errors shown were of what was there). */
function change(mutate) {
  mutate();
  state.errors.clear();
  render();
}

// -- one role's row ----------------------------------------------------------------------------

function actionBox(role, action, entry) {
  const inherited = shared.get(role)?.has(action);
  const kept = state.model.keptRoles.has(role);
  const box = el("input", {
    type: "checkbox",
    "data-testid": `access-${role}-${action}`,
    "aria-label": `${roleName(role)}: ${t(ACTION_NAMES[action])}`,
    checked: inherited || Boolean(entry?.actions.has(action)),
    disabled: inherited || kept,
    title: inherited ? t("Given on every form by the app's grants") : undefined,
  });
  box.addEventListener("change", () =>
    change(() => {
      if (box.checked) entry.actions.add(action);
      else entry.actions.delete(action);
      // changing, deleting and exporting are of records one reads (creating need not be:
      // a kiosk may only hand in)
      if (box.checked && NEEDS_READ.includes(action)) entry.actions.add("read");
      if (!box.checked && action === "read") for (const a of NEEDS_READ) entry.actions.delete(a);
    }),
  );
  return el("td", { class: "check-cell" }, box);
}

const everythingShared = (role) => m.ACTIONS.every((a) => shared.get(role)?.has(a));

function rowsSummary(role, entry) {
  if (everythingShared(role)) return t("All records");
  if (!entry || !entry.actions.size) return "—";
  if (entry.rowFilter === undefined) return t("All records");
  return t("Only some records");
}

function fieldsSummary(role, entry) {
  if (everythingShared(role)) return t("All fields");
  if (!entry || !entry.actions.size) return "—";
  const hidden = entry.hidden.length;
  const readOnly = entry.readOnly.filter((f) => !entry.hidden.includes(f)).length;
  if (!hidden && !readOnly) return t("All fields");
  return [hidden ? t("{n} hidden", { n: hidden }) : null, readOnly ? t("{n} read-only", { n: readOnly }) : null].filter(Boolean).join(" · ");
}

function roleRows(role) {
  const entry = state.model.roles.get(role);
  const kept = state.model.keptRoles.has(role);
  const everything = everythingShared(role);
  const open = state.open.has(role);
  const head = el(
    "th",
    { scope: "row" },
    el("span", { class: "role-name", text: roleName(role) }),
    rolesByKey[role]?.designer ? el("span", { class: "badge", text: t("App designer") }) : null,
    everything ? el("span", { class: "muted small block", text: t("Everything, on every form") }) : null,
    kept ? el("span", { class: "muted small block", text: t("Several grants: edit them as JSON below") }) : null,
  );
  const more = el("button", {
    type: "button",
    class: "quiet small",
    "data-testid": `access-${role}-more`,
    "aria-expanded": open ? "true" : "false",
    "aria-controls": `access-detail-${role}`,
    disabled: kept || everything || !entry?.actions.size,
    text: open ? t("Hide rules") : t("Rules…"),
    onclick: () => change(() => (open ? state.open.delete(role) : state.open.add(role))),
  });
  const row = el(
    "tr",
    { "data-role": role, class: state.errors.has(role) ? "invalid" : undefined },
    head,
    m.ACTIONS.map((action) => actionBox(role, action, entry)),
    el("td", { "data-testid": `access-${role}-rows` }, rowsSummary(role, entry)),
    el("td", { "data-testid": `access-${role}-fields` }, fieldsSummary(role, entry)),
    el("td", {}, more),
  );
  const out = [row];
  if (open && entry && entry.actions.size && !kept) {
    out.push(el("tr", { class: "access-detail", id: `access-detail-${role}` }, el("td", { colspan: String(m.ACTIONS.length + 4) }, details(role, entry))));
  }
  if (state.errors.has(role)) {
    out.push(el("tr", { class: "access-errors", "data-testid": `access-${role}-errors` }, el("td", { colspan: String(m.ACTIONS.length + 4) }, state.errors.get(role).map((text) => el("p", { class: "field-error", role: "alert", text })))));
  }
  return out;
}

// -- one role's details: row filter and fields -------------------------------------------------

function details(role, entry) {
  return el(
    "div",
    { class: "access-rules", "data-testid": `access-${role}-details` },
    el("section", { class: "access-filter", "aria-label": t("Which records") }, el("h3", { text: t("Which records {role} may use", { role: roleName(role) }) }), rowFilter(role, entry)),
    el("section", { class: "access-fields", "aria-label": t("Fields") }, el("h3", { text: t("Fields {role} may not see or change", { role: roleName(role) }) }), fieldRules(role, entry)),
  );
}

function rowFilter(role, entry) {
  const parsed = state.jsonFilter.has(role) ? null : m.parseRowFilter(entry.rowFilter, typeOf);
  if (parsed === null) return filterJson(role, entry);
  const write = (next) => change(() => (entry.rowFilter = m.buildRowFilter(next)));
  const rows = parsed.rows.map((item, index) => filterRow(role, parsed, item, index, write));
  const add = (row) => write({ ...parsed, rows: [...parsed.rows, row] });
  const first = filterFields[0];
  const presets = [];
  if (fields.some((f) => f.key === "branch")) {
    presets.push(el("button", { type: "button", class: "quiet small", "data-testid": `access-${role}-same-branch`, text: `+ ${t("Same branch as the user")}`, onclick: () => add({ field: "branch", op: "==", value: null, user: "$user.branch" }) }));
  }
  if (fields.some((f) => f.key === "department")) {
    presets.push(el("button", { type: "button", class: "quiet small", "data-testid": `access-${role}-same-department`, text: `+ ${t("Same department as the user")}`, onclick: () => add({ field: "department", op: "==", value: null, user: "$user.department" }) }));
  }
  presets.push(el("button", { type: "button", class: "quiet small", "data-testid": `access-${role}-own`, text: `+ ${t("Created by the user")}`, onclick: () => add({ field: "created_by", op: "==", value: null, user: "$user.username" }) }));
  const join = el(
    "select",
    { "data-testid": `access-${role}-join`, "aria-label": t("Join") },
    el("option", { value: "all", text: t("all of these"), selected: parsed.join === "all" }),
    el("option", { value: "any", text: t("any of these"), selected: parsed.join === "any" }),
  );
  join.addEventListener("change", () => write({ ...parsed, join: join.value }));
  return el(
    "div",
    { class: "filter-builder" },
    parsed.rows.length ? el("p", { class: "join-line" }, t("Records that match"), " ", parsed.rows.length > 1 ? join : null) : el("p", { class: "muted", "data-testid": `access-${role}-all-rows`, text: t("Every record (no condition).") }),
    rows,
    el(
      "div",
      { class: "re-buttons" },
      el("button", { type: "button", class: "quiet small", "data-testid": `access-${role}-add-condition`, text: `+ ${t("Add a condition")}`, onclick: () => add({ field: first.key, op: m.operators(first.type)[0], value: null, user: null }) }),
      presets,
      el("button", { type: "button", class: "quiet small", "data-testid": `access-${role}-filter-json`, text: t("Edit as JSON"), onclick: () => change(() => state.jsonFilter.add(role)) }),
    ),
  );
}

function filterRow(role, parsed, item, index, write) {
  const meta = filterFields.find((f) => f.key === item.field) || { type: "text" };
  const put = (next) => write({ ...parsed, rows: parsed.rows.map((r, i) => (i === index ? next : r)) });
  const field = el(
    "select",
    { "data-testid": `access-${role}-field-${index}`, "aria-label": t("Field") },
    filterFields.map((f) => el("option", { value: f.key, text: f.label, selected: f.key === item.field })),
  );
  field.addEventListener("change", () => {
    const type = typeOf(field.value);
    const ops = m.operators(type);
    put({ field: field.value, op: ops.includes(item.op) ? item.op : ops[0], value: null, user: null });
  });
  const op = el(
    "select",
    { "data-testid": `access-${role}-op-${index}`, "aria-label": t("Operator") },
    m.operators(meta.type).map((o) => el("option", { value: o, text: t(filterLabel(o, meta.type)), selected: o === item.op })),
  );
  op.addEventListener("change", () => put({ ...item, op: op.value, user: m.takesUser(op.value) ? item.user : null }));
  const parts = [field, op];
  if (needsValue(item.op)) {
    if (m.takesUser(item.op)) {
      const source = el(
        "select",
        { "data-testid": `access-${role}-source-${index}`, "aria-label": t("Compared with") },
        el("option", { value: "", text: t("a value"), selected: !item.user }),
        [...new Set([...data.user_values, ...(item.user ? [item.user] : [])])].map((name) => el("option", { value: name, text: userName(name), selected: name === item.user })),
      );
      source.addEventListener("change", () => put({ ...item, user: source.value || null, value: null }));
      parts.push(source);
    }
    if (!item.user) parts.push(valueControl(role, item, index, meta, put));
  }
  const remove = el("button", {
    type: "button",
    class: "icon-button",
    "data-testid": `access-${role}-remove-${index}`,
    "aria-label": t("Remove this condition"),
    text: "×",
    onclick: () => write({ ...parsed, rows: parsed.rows.filter((_, i) => i !== index) }),
  });
  return el("div", { class: "condition-row" }, parts, remove);
}

// the list filter's wording for operators (conditions.js), translated by t()
const filterLabel = (op, type) => FILTER.label(op, type);

function valueControl(role, item, index, meta, put) {
  const testid = `access-${role}-value-${index}`;
  if (meta.options) {
    const select = el(
      "select",
      { "data-testid": testid, "aria-label": t("Value") },
      el("option", { value: "", text: "—" }),
      meta.options.map((o) => el("option", { value: o.value, text: labelOf(o.label, o.value), selected: o.value === item.value })),
    );
    select.addEventListener("change", () => put({ ...item, value: select.value }));
    return select;
  }
  const input = el("input", { type: "text", "data-testid": testid, "aria-label": t("Value"), value: item.value ?? "" });
  input.addEventListener("change", () => put({ ...item, value: literal(meta.type, input.value) }));
  return input;
}

function filterJson(role, entry) {
  const box = el("textarea", {
    class: "json",
    rows: "4",
    "data-testid": `access-${role}-filter-text`,
    "aria-label": t("Row filter (JSON)"),
    value: entry.rowFilter === undefined ? "" : JSON.stringify(entry.rowFilter, null, 1),
  });
  const problem = el("span", { class: "field-error", role: "alert" });
  box.addEventListener("change", () => {
    const text = box.value.trim();
    if (!text) return change(() => (entry.rowFilter = undefined));
    try {
      const rule = JSON.parse(text);
      change(() => (entry.rowFilter = rule));
    } catch {
      problem.textContent = t("This is not valid JSON.");
    }
  });
  const back = el("button", {
    type: "button",
    class: "quiet small",
    "data-testid": `access-${role}-filter-builder`,
    text: t("Use the builder"),
    onclick: () =>
      change(() => {
        state.jsonFilter.delete(role);
        if (m.parseRowFilter(entry.rowFilter, typeOf) === null && window.confirm(t("The builder cannot show this condition. Start again with no condition?"))) {
          entry.rowFilter = undefined;
        } else if (m.parseRowFilter(entry.rowFilter, typeOf) === null) {
          state.jsonFilter.add(role);
        }
      }),
  });
  return el(
    "div",
    { class: "filter-json" },
    el("p", { class: "muted small", text: t("A condition the builder cannot show, as JSON: the record's fields, created_by and $user.<attribute> (for example $user.branch).") }),
    box,
    problem,
    el("div", { class: "re-buttons" }, back),
  );
}

function fieldRules(role, entry) {
  // names the form does not have (written by hand, or a field since removed) stay untickable
  const known = new Set(data.fields.map((f) => f.key));
  const stray = [...new Set([...entry.hidden, ...entry.readOnly])].filter((k) => !known.has(k)).map((key) => ({ key, label: key }));
  const rows = [...data.fields, ...stray].map((f) => {
    const hidden = entry.hidden.includes(f.key);
    const readOnly = !hidden && entry.readOnly.includes(f.key);
    const name = labelOf(f.label, f.key);
    const hide = el("input", { type: "checkbox", "data-testid": `access-${role}-hidden-${f.key}`, "aria-label": t("{field}: hidden", { field: name }), checked: hidden });
    hide.addEventListener("change", () =>
      change(() => {
        entry.hidden = hide.checked ? [...entry.hidden, f.key] : entry.hidden.filter((k) => k !== f.key);
        if (hide.checked) entry.readOnly = entry.readOnly.filter((k) => k !== f.key);
      }),
    );
    const lock = el("input", { type: "checkbox", "data-testid": `access-${role}-readonly-${f.key}`, "aria-label": t("{field}: read-only", { field: name }), checked: readOnly, disabled: hidden });
    lock.addEventListener("change", () =>
      change(() => (entry.readOnly = lock.checked ? [...entry.readOnly, f.key] : entry.readOnly.filter((k) => k !== f.key))),
    );
    return el("tr", {}, el("th", { scope: "row", text: name }), el("td", { class: "check-cell" }, hide), el("td", { class: "check-cell" }, lock));
  });
  return el(
    "table",
    { class: "access-field-table" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("Field") }), el("th", { scope: "col", text: t("Hidden") }), el("th", { scope: "col", text: t("Read-only") }))),
    el("tbody", {}, rows),
  );
}

// -- the screen --------------------------------------------------------------------------------

function render() {
  const focused = document.activeElement?.dataset?.testid;
  matrix.replaceChildren(
    el(
      "table",
      { class: "access-matrix", "data-testid": "access-matrix" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", text: t("Role") }),
          m.ACTIONS.map((a) => el("th", { scope: "col", class: "check-cell", text: t(ACTION_NAMES[a]) })),
          el("th", { scope: "col", text: t("Which records") }),
          el("th", { scope: "col", text: t("Fields") }),
          el("th", { scope: "col" }, el("span", { class: "visually-hidden", text: t("Rules") })),
        ),
      ),
      el("tbody", {}, roleKeys.flatMap(roleRows)),
    ),
  );
  if (focused) root.querySelector(`[data-testid="${focused}"]`)?.focus();
  refresh();
}

function showErrors(errors, sent) {
  state.errors.clear();
  const general = [];
  for (const error of errors) {
    const index = m.grantIndex(error.path);
    const grant = index === null || error.in === "app" ? null : sent[index];
    const text = `${error.message}${error.path ? ` (${error.path})` : ""}`;
    if (!grant) {
      general.push(text);
      continue;
    }
    for (const role of grant.roles || []) {
      state.errors.set(role, [...(state.errors.get(role) || []), text]);
      if (!state.model.keptRoles.has(role)) state.open.add(role);
    }
  }
  problemsNode.replaceChildren(
    el("p", { text: t("Not saved: {n} problem(s).", { n: errors.length }) }),
    ...(general.length ? [el("ul", {}, general.map((text) => el("li", { text })))] : []),
  );
  problemsNode.hidden = false;
  render();
}

/** Conditions whose value was never given, per role (found before anything is sent). */
function localProblems() {
  const problems = new Map();
  for (const [role, entry] of state.model.roles) {
    if (!entry.actions.size) continue;
    const parsed = m.parseRowFilter(entry.rowFilter, typeOf);
    if (parsed && parsed.rows.some((r) => needsValue(r.op) && !r.user && (r.value === null || r.value === ""))) {
      problems.set(role, [t("A condition has no value: give it one or remove the condition.")]);
    }
  }
  return problems;
}

async function save() {
  state.errors.clear();
  problemsNode.hidden = true;
  const local = localProblems();
  if (local.size) {
    state.errors = local;
    for (const role of local.keys()) state.open.add(role);
    render();
    setStatus(t("Not saved."), "error");
    return;
  }
  const body = grants();
  setStatus(t("Saving…"));
  try {
    const { data: result } = await api(`/api/apps/${data.app.key}/forms/${encodeURIComponent(form)}/access`, {
      method: "PUT",
      body,
      headers: { "If-Match": `"${state.revision}"` },
    });
    state.revision = result.revision;
    savedText = JSON.stringify(body);
    proposalNode.hidden = true;
    render();
    setStatus(
      result.status === "unchanged" ? t("Nothing to save.") : t("Saved (revision {revision}).", { revision: result.revision }),
      "ok",
    );
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      showErrors(error.errors.length ? error.errors : [{ path: "", message: error.message }], body);
      setStatus(t("Not saved."), "error");
    } else if (error instanceof ApiError && error.status === 412) {
      setStatus(t("Not saved."), "error");
      problemsNode.replaceChildren(
        el("p", { "data-testid": "access-conflict", text: t("Someone saved this app meanwhile; reload the page to see their changes (yours are lost on reload).") }),
        el("button", { type: "button", class: "quiet", "data-testid": "access-reload", text: t("Reload"), onclick: () => reload() }),
      );
      problemsNode.hidden = false;
    } else {
      setStatus(error.message, "error");
    }
  }
}

function reload() {
  savedText = JSON.stringify(grants()); // the user chose to drop them
  window.location.reload();
}

jsonBox.addEventListener("change", () => {
  let parsed;
  try {
    parsed = JSON.parse(jsonBox.value);
  } catch {
    setStatus(t("This is not valid JSON."), "error");
    return;
  }
  if (!Array.isArray(parsed) || parsed.some((g) => !g || typeof g !== "object")) {
    setStatus(t("The grants must be a list of objects."), "error");
    return;
  }
  setStatus("");
  state.model = m.load(parsed, roleKeys);
  state.jsonFilter.clear();
  jsonBox.blur();
  render();
});

root.querySelector("[data-testid=access-save]").addEventListener("click", save);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
    event.preventDefault();
    save();
  }
});
window.addEventListener("beforeunload", (event) => {
  if (isDirty()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

proposalNode.hidden = !data.proposal;
render();
