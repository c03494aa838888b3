// The form designer: palette, canvas and properties of one form (docs/ui.md, "Designer").
//
// State is the form definition itself (designer-model.js adds a private `_uid` per field).
// Every change goes through `commit`, which keeps undo history; structural changes redraw
// the canvas (one innerHTML of plain cards, a few ms for 200 fields), property edits redraw
// only the edited card, and the preview is redrawn after a pause in typing, only while it
// is shown. Saving is designer-save.js; the properties panel is designer-props.js.

import { t, label } from "/static/i18n.js";
import * as model from "/static/designer-model.js";
import { renderProperties, showPropErrors } from "/static/designer-props.js";
import { save } from "/static/designer-save.js";
import { createState } from "/static/designer-state.js";
import { showTemplateButton, wireTemplates } from "/static/designer-templates.js";

const data = JSON.parse(document.getElementById("designer-data").textContent);
const root = document.querySelector("[data-testid=designer]");
const canvas = root.querySelector("[data-testid=canvas]");
const palette = root.querySelector("[data-palette]");
const propsPanel = root.querySelector("[data-testid=properties]");
const previewPanel = root.querySelector("[data-testid=preview]");
const previewBox = previewPanel.querySelector("[data-preview-body]");
const previewNote = previewPanel.querySelector("[data-preview-note]");
const dirtyBadge = root.querySelector("[data-testid=designer-dirty]");
const statusLine = root.querySelector("[data-testid=designer-status]");
const undoButton = root.querySelector("[data-testid=designer-undo]");
const redoButton = root.querySelector("[data-testid=designer-redo]");
const saveButton = root.querySelector("[data-testid=designer-save]");
const titleText = root.querySelector("[data-designer-title]");
const crumbText = document.querySelector("[data-designer-crumb]");
const openLink = root.querySelector("[data-testid=designer-open]");
const missingButton = root.querySelector("[data-testid=designer-missing-zh]");
// a form laid out as tabs (docs/forms.md, Tabs): one button per section over the canvas
const tabStrip = document.createElement("div");
tabStrip.className = "canvas-tabs";
tabStrip.dataset.testid = "canvas-tabs";
tabStrip.setAttribute("role", "group");
tabStrip.setAttribute("aria-label", t("Tabs of the form"));
tabStrip.hidden = true;
canvas.before(tabStrip);
const indicator = document.createElement("div");
indicator.className = "drop-indicator";
indicator.hidden = true;

const state = createState(data);

// What the properties panel (designer-props.js) and the save path (designer-save.js) may use:
// the state, and the actions that change it and redraw what depends on it.
const designer = {
  state,
  commit,
  find,
  siblingKeys,
  sectionOf: sectionOfField,
  select,
  move,
  moveTo,
  placeIn,
  remove,
  duplicate,
  setType,
  setTabs,
  status,
  markSaved,
  afterSave,
  showErrors: (errors) => showPropErrors(designer, errors),
  renderCanvas: redrawCanvas,
  renderProperties: () => renderProperties(designer),
};

// -- finding fields -------------------------------------------------------------------------

let index = new Map(); // uid -> {field, list, table}

function reindex() {
  index = new Map();
  clashes = new Map();
  for (const field of state.form.fields) {
    index.set(field._uid, { field, list: state.form.fields, table: null });
    if (field.type === "table" && Array.isArray(field.fields)) {
      for (const column of field.fields) index.set(column._uid, { field: column, list: field.fields, table: field });
    }
  }
}

function find(uid) {
  const found = index.get(uid);
  if (!found) return null;
  return { ...found, index: found.list.indexOf(found.field) };
}

// Keys of the other fields in the same scope (the form, or the table's columns).
function siblingKeys(uid) {
  const found = find(uid);
  const list = found ? found.list : state.form.fields;
  return new Set(list.filter((f) => f._uid !== uid).map((f) => f.key));
}

// The section a top-level field sits in (null before the first section).
function sectionOf(position) {
  for (let i = position - 1; i >= 0; i -= 1) if (state.form.fields[i].type === "section") return state.form.fields[i];
  return null;
}
function sectionOfField(uid) {
  const found = find(uid);
  return found && !found.table ? sectionOf(found.index) : null;
}

// A section's block: the section and the fields up to the next section.
function blockAt(position) {
  const fields = state.form.fields;
  if (fields[position].type !== "section") return [fields[position]];
  let end = position + 1;
  while (end < fields.length && fields[end].type !== "section") end += 1;
  return fields.slice(position, end);
}

// -- history --------------------------------------------------------------------------------

const undoStack = { past: [], future: [], lastKey: null, lastAt: 0 };
const HISTORY_LIMIT = 200;

function snapshot() {
  return JSON.stringify({ form: state.form, selected: state.selected, formKeyTouched: state.formKeyTouched });
}

// Change the state: `mutate` edits state.form in place. `coalesce` names a run of edits (typing
// in one input) that undo takes back as one step.
function commit(mutate, { coalesce = null, structure = true, uid = null } = {}) {
  const now = Date.now();
  if (!(coalesce && coalesce === undoStack.lastKey && now - undoStack.lastAt < 1500)) {
    undoStack.past.push(snapshot());
    if (undoStack.past.length > HISTORY_LIMIT) undoStack.past.shift();
  }
  undoStack.lastKey = coalesce;
  undoStack.lastAt = now;
  undoStack.future = [];
  if (uid) state.errors.delete(uid); // the server's verdict was about the field as it was
  const result = mutate();
  changed({ structure, uid });
  return result;
}

function restore(text) {
  const saved = JSON.parse(text);
  state.form = saved.form;
  state.selected = saved.selected;
  state.formKeyTouched = saved.formKeyTouched;
  undoStack.lastKey = null;
  reindex();
  if (state.selected && !index.has(state.selected)) state.selected = null;
  const active = document.activeElement;
  const onCard = Boolean(active?.closest?.(".field-card"));
  const inPanel = propsPanel.contains(active) ? active.dataset.testid : null;
  changed({ structure: true });
  renderProperties(designer);
  if (inPanel) propsPanel.querySelector(`[data-testid="${inPanel}"]`)?.focus();
  else if (onCard) focusCard();
}

function undo() {
  if (!undoStack.past.length) return;
  undoStack.future.push(snapshot());
  restore(undoStack.past.pop());
  status(t("Undone."));
}

function redo() {
  if (!undoStack.future.length) return;
  undoStack.past.push(snapshot());
  restore(undoStack.future.pop());
  status(t("Redone."));
}

// -- after every change ---------------------------------------------------------------------

// a form started from a template is unsaved from the start
let savedText = data.is_new && data.form ? "" : JSON.stringify(model.serializeForm(state.form));

function changed({ structure = true, uid = null } = {}) {
  if (structure) {
    reindex();
    renderCanvas();
  } else if (uid) {
    updateCard(uid);
  }
  updateTitle();
  updateDirty();
  updateMissing();
  undoButton.disabled = !undoStack.past.length;
  redoButton.disabled = !undoStack.future.length;
  schedulePreview();
}

function isDirty() {
  return JSON.stringify(model.serializeForm(state.form)) !== savedText;
}

function updateDirty() {
  const dirty = isDirty();
  dirtyBadge.hidden = !dirty;
  root.dataset.dirty = String(dirty);
}

function markSaved() {
  savedText = JSON.stringify(model.serializeForm(state.form));
  updateDirty();
}

window.addEventListener("beforeunload", (event) => {
  if (isDirty()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

function updateTitle() {
  const text = label(state.form.label, "") || (state.isNew ? t("New form") : state.form.key);
  titleText.textContent = text;
  // the breadcrumb names the form once it exists (a new one is "New form" until saved)
  if (crumbText && !state.isNew) {
    crumbText.textContent = text;
    document.title = `${t("Designer")} · ${text} · Formloom`;
  }
}

// -- labels without Chinese ------------------------------------------------------------------
// Where the app is read in Chinese (zh-CN among its locales, next to another), labels given
// in another language only are counted next to Save and flagged on their cards: Chinese
// readers would see them in English. The button selects the first such field.

const CHECKED_LOCALE = "zh-CN";

function lacksChinese(field) {
  if (model.lacksLocale(field.label, state.appLocales, CHECKED_LOCALE)) return true;
  return (field.options || []).some((option) => model.lacksLocale(option.label, state.appLocales, CHECKED_LOCALE));
}

function updateMissing() {
  const count = model.countLacking(state.form, state.appLocales, CHECKED_LOCALE);
  missingButton.hidden = !count;
  missingButton.textContent = count ? t("{n} labels without Chinese", { n: count }) : "";
  missingButton.dataset.count = String(count);
}

missingButton.addEventListener("click", () => {
  // the form's own name first (its settings), then the fields in form order
  const formLacks = model.lacksLocale(state.form.label, state.appLocales, CHECKED_LOCALE);
  const first = formLacks ? null : model.fieldsLacking(state.form, state.appLocales, CHECKED_LOCALE)[0];
  select(first ? first.uid : null, { focus: Boolean(first) });
  const input = propsPanel.querySelector("[data-testid$='-missing']:not([hidden])")?.closest(".prop, .option-row")?.querySelector(`[lang="${CHECKED_LOCALE}"]`);
  input?.focus();
});

function status(message, kind = "") {
  statusLine.textContent = message;
  statusLine.dataset.kind = kind;
}

// -- the canvas -----------------------------------------------------------------------------

const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => escapes[c]);

// Keys used more than once in each list (the form's fields, each table's columns), so that
// marking clashes on 200 cards is one pass, not one set per card.
let clashes = new Map(); // list -> {has(key)}

function countKeys(list) {
  const counts = new Map();
  for (const field of list) counts.set(field.key, (counts.get(field.key) || 0) + 1);
  const check = { has: (key) => (counts.get(key) || 0) > 1 };
  clashes.set(list, check);
  return check;
}

function siblingsOf(field) {
  const list = index.get(field._uid)?.list;
  if (!list) return new Set();
  return clashes.get(list) || countKeys(list);
}

function fieldProblem(field) {
  const problem = model.keyProblem(field.key, siblingsOf(field));
  if (problem) return problem;
  const errors = state.errors.get(field._uid);
  if (errors) return Object.values(errors).flat()[0] || "";
  if (field.type === "table" && !field.fields?.length) return t("A table needs at least one column.");
  return "";
}

function headHtml(field) {
  const info = model.TYPES[field.type] || {};
  const text = label(field.label, "");
  const flags = [];
  if (field.required) flags.push(`<span class="flag req" title="${esc(t("Required"))}">${esc(t("Required"))}</span>`);
  if (field.visible_if !== undefined) flags.push(`<span class="flag cond">${esc(t("Conditional"))}</span>`);
  if (field.read_only) flags.push(`<span class="flag">${esc(t("Read-only"))}</span>`);
  if (field.unique) flags.push(`<span class="flag">${esc(t("Unique"))}</span>`);
  if (lacksChinese(field)) flags.push(`<span class="flag locale" data-testid="card-missing-zh" title="${esc(t("Some labels have no Chinese text yet."))}">${esc(t("No Chinese"))}</span>`);
  const problem = fieldProblem(field);
  return (
    `<span class="grip" aria-hidden="true"></span>` +
    `<span class="type-icon" aria-hidden="true">${esc(info.icon || "?")}</span>` +
    `<span class="card-text"><span class="card-label${text ? "" : " untitled"}">${esc(text || t("Untitled"))}</span>` +
    `<span class="card-meta"><span class="type-name">${esc(model.typeName(field.type))}</span>` +
    `<code class="card-key">${esc(field.key)}</code>${flags.join("")}</span>` +
    (problem ? `<span class="card-error" role="note">${esc(problem)}</span>` : "") +
    `</span>`
  );
}

function cardOpen(field, table) {
  const testid = table ? `field-${table.key}.${field.key}` : `field-${field.key}`;
  const selected = field._uid === state.selected;
  const problem = fieldProblem(field) !== "";
  const labelText = label(field.label, "") || t("Untitled");
  return (
    `<div class="field-card type-${esc(field.type)}${selected ? " selected" : ""}${problem ? " has-error" : ""}"` +
    ` role="treeitem" aria-selected="${selected}" tabindex="-1" draggable="true"` +
    ` data-uid="${field._uid}" data-testid="${esc(testid)}"` +
    ` aria-label="${esc(`${labelText}, ${model.typeName(field.type)}`)}">` +
    `<div class="card-head">${headHtml(field)}</div>`
  );
}

function tableHtml(field) {
  const columns = (field.fields || []).map((column) => cardOpen(column, field) + "</div>").join("");
  return (
    `<div class="drop-list table-list" role="group" data-list="table" data-owner="${field._uid}"` +
    ` aria-label="${esc(t("Columns"))}" data-empty="${esc(t("Drop fields here to make columns"))}">${columns}</div>`
  );
}

function renderCanvas() {
  const parts = [];
  let open = false;
  for (const field of state.form.fields) {
    if (field.type === "section") {
      if (open) parts.push("</div></div>");
      parts.push(cardOpen(field, null));
      parts.push(
        `<div class="drop-list section-list" role="group" data-list="section" data-owner="${field._uid}"` +
          ` data-empty="${esc(t("Drop fields here"))}">`,
      );
      open = true;
      continue;
    }
    parts.push(cardOpen(field, null));
    if (field.type === "table") parts.push(tableHtml(field));
    parts.push("</div>");
  }
  if (open) parts.push("</div></div>");
  canvas.innerHTML = parts.join("");
  canvas.dataset.empty = state.form.fields.length ? "false" : "true";
  canvas.append(indicator);
  rove();
  renderTabStrip();
}

// The tab strip: a button per section (the tab it becomes); pressing one selects the section,
// dropping a field or a palette item on one puts it at the end of that tab.
function renderTabStrip() {
  const tabbed = state.form.layout === "tabs";
  canvas.classList.toggle("as-tabs", tabbed);
  tabStrip.hidden = !tabbed;
  if (!tabbed) return tabStrip.replaceChildren();
  const found = state.selected && find(state.selected);
  const current = found && !found.table ? (found.field.type === "section" ? found.field : sectionOf(found.index)) : null;
  tabStrip.innerHTML = state.form.fields
    .filter((field) => field.type === "section")
    .map((field) => {
      const on = field === current;
      return (
        `<button type="button" class="canvas-tab${on ? " current" : ""}" data-uid="${field._uid}"` +
        ` data-testid="canvas-tab-${esc(field.key)}"${on ? ' aria-current="true"' : ""}>` +
        `${esc(label(field.label, "") || t("Untitled"))}</button>`
      );
    })
    .join("");
}

function setTabs(on) {
  commit(() => {
    if (!on) return delete state.form.layout;
    state.form.layout = "tabs";
    if (state.form.fields.some((field) => field.type === "section")) return;
    // tabs need a section: the fields so far go into a first tab
    const first = model.newField("section", new Set(state.form.fields.map((f) => f.key)), context(false));
    first.label = t("General information");
    first.key = model.deriveKey("general", new Set(state.form.fields.map((f) => f.key)), "section");
    state.form.fields.unshift(first);
  });
  status(on ? t("Each section is now a tab.") : t("Sections are shown one under another."));
}

tabStrip.addEventListener("click", (event) => {
  const tab = event.target.closest("[data-uid]");
  if (tab) select(tab.dataset.uid, { focus: true });
});
tabStrip.addEventListener("dragover", (event) => {
  const tab = event.target.closest("[data-uid]");
  if (!tab || draggedType(dragging) === "section") return;
  event.preventDefault();
  event.dataTransfer.dropEffect = dragging?.kind === "field" ? "move" : "copy";
});
tabStrip.addEventListener("drop", (event) => {
  const tab = event.target.closest("[data-uid]");
  const payload = dragging;
  dragging = null;
  if (!tab || !payload) return;
  event.preventDefault();
  if (payload.kind === "type") {
    const at = state.form.fields.findIndex((field) => field._uid === tab.dataset.uid);
    addField(payload.type, { container: "root", beforeUid: state.form.fields[at + blockAt(at).length]?._uid ?? null });
  } else if (placeIn(payload.uid, tab.dataset.uid)) {
    status(t("Moved to the tab {name}.", { name: tab.textContent }));
  }
});

function cardOf(uid) {
  return canvas.querySelector(`.field-card[data-uid="${uid}"]`);
}

// Redraw one card's head (children of a section or table stay as they are).
function updateCard(uid) {
  const found = find(uid);
  const card = cardOf(uid);
  if (!found || !card) return renderCanvas();
  const field = found.field;
  const before = card.dataset.testid;
  clashes.delete(found.list);
  card.querySelector(":scope > .card-head").innerHTML = headHtml(field);
  card.dataset.testid = found.table ? `field-${found.table.key}.${field.key}` : `field-${field.key}`;
  card.classList.toggle("has-error", fieldProblem(field) !== "");
  if (before === card.dataset.testid) return;
  // a key change can clear (or make) a clash with a sibling: refresh their marks too
  for (const sibling of found.list) {
    if (sibling === field) continue;
    const other = cardOf(sibling._uid);
    if (!other) continue;
    const bad = fieldProblem(sibling) !== "";
    if (bad !== other.classList.contains("has-error")) {
      other.classList.toggle("has-error", bad);
      other.querySelector(":scope > .card-head").innerHTML = headHtml(sibling);
    }
  }
  if (field.type === "table") {
    const columns = card.querySelector(":scope > .table-list");
    for (const column of field.fields || []) {
      const cell = columns?.querySelector(`.field-card[data-uid="${column._uid}"]`);
      if (cell) cell.dataset.testid = `field-${field.key}.${column.key}`;
    }
  }
}

// One card is in the tab order (roving tabindex): the selected one, else the first.
function rove() {
  const cards = canvas.querySelectorAll(".field-card");
  for (const card of cards) card.tabIndex = -1;
  const current = (state.selected && cardOf(state.selected)) || cards[0];
  if (current) current.tabIndex = 0;
}

function select(uid, { focus = false, focusProp = null } = {}) {
  const previous = state.selected && cardOf(state.selected);
  if (previous) {
    previous.classList.remove("selected");
    previous.setAttribute("aria-selected", "false");
  }
  state.selected = uid && index.has(uid) ? uid : null;
  const card = state.selected && cardOf(state.selected);
  if (card) {
    card.classList.add("selected");
    card.setAttribute("aria-selected", "true");
    card.scrollIntoView({ block: "nearest" });
    if (focus) card.focus();
  }
  rove();
  if (state.form.layout === "tabs") renderTabStrip();
  showTab("properties");
  renderProperties(designer);
  if (focusProp) propsPanel.querySelector(`[data-testid="prop-${focusProp}"]`)?.focus();
}

function focusCard() {
  const card = state.selected && cardOf(state.selected);
  (card || canvas.querySelector(".field-card") || canvas).focus();
}

// -- adding, moving, removing ---------------------------------------------------------------

function context(column) {
  return { forms: state.app.forms, formKey: state.form.key, column };
}

// Insert `fields` into `container` ("root" or a table's uid) before `beforeUid` (or at the end).
function insertInto(container, beforeUid, fields) {
  const list = container === "root" ? state.form.fields : find(container)?.field.fields;
  if (!list) return false;
  let at = beforeUid ? list.findIndex((f) => f._uid === beforeUid) : -1;
  if (at < 0) at = list.length;
  list.splice(at, 0, ...fields);
  return true;
}

// Where a new field goes without a drop position: after the selected one.
function afterSelected(type) {
  const found = state.selected && find(state.selected);
  if (!found) return { container: "root", beforeUid: null };
  const columnType = model.TYPES[type]?.column;
  if (found.table) {
    if (columnType) {
      return { container: found.table._uid, beforeUid: found.list[found.index + 1]?._uid ?? null };
    }
    const tableAt = state.form.fields.indexOf(found.table);
    return { container: "root", beforeUid: state.form.fields[tableAt + 1]?._uid ?? null };
  }
  const after = type === "section" && found.field.type === "section" ? blockAt(found.index).length : 1;
  return { container: "root", beforeUid: state.form.fields[found.index + after]?._uid ?? null };
}

function addField(type, at = null, { focusLabel = true } = {}) {
  const where = at || afterSelected(type);
  const inTable = where.container !== "root";
  if (inTable && !model.TYPES[type]?.column) {
    status(t("A table cannot hold a {type}.", { type: model.typeName(type) }), "error");
    return;
  }
  const scope = inTable ? find(where.container).field.fields : state.form.fields;
  const field = model.newField(type, new Set(scope.map((f) => f.key)), context(inTable));
  commit(() => insertInto(where.container, where.beforeUid, [field]));
  select(field._uid, { focusProp: focusLabel ? "label" : null });
  status(t("Added a {type} field.", { type: model.typeName(type) }));
}

function fitToScope(fields, inTable, scopeList) {
  for (const field of fields) {
    if (inTable) {
      delete field.indexed;
      delete field.unique;
    }
    const taken = new Set(scopeList.filter((f) => !fields.includes(f)).map((f) => f.key));
    if (taken.has(field.key) && !field._kt) field.key = model.deriveKey(label(field.label, ""), taken, inTable ? "column" : "field");
  }
}

// Move a field (a section with its fields) before `beforeUid` in `container`.
function moveTo(uid, container, beforeUid) {
  const found = find(uid);
  if (!found) return false;
  const block = found.table ? [found.field] : blockAt(found.index);
  if (beforeUid && block.some((f) => f._uid === beforeUid)) return false;
  if (beforeUid === uid) return false;
  const refocus = Boolean(document.activeElement?.closest?.(".field-card"));
  if (container !== "root") {
    if (!model.TYPES[found.field.type]?.column || container === uid) {
      status(t("A table cannot hold a {type}.", { type: model.typeName(found.field.type) }), "error");
      return false;
    }
  }
  commit(() => {
    found.list.splice(found.index, block.length);
    insertInto(container, beforeUid, block);
    const list = container === "root" ? state.form.fields : index.get(container).field.fields;
    fitToScope(block, container !== "root", list);
  });
  select(uid, { focus: refocus });
  return true;
}

// One step up or down; a section moves with its fields, past the neighbouring block.
function move(uid, direction) {
  const found = find(uid);
  if (!found) return;
  const refocus = Boolean(document.activeElement?.closest?.(".field-card"));
  const list = found.list;
  if (found.table || found.field.type !== "section") {
    const target = found.index + direction;
    if (target < 0 || target >= list.length) return;
    commit(() => {
      list.splice(found.index, 1);
      list.splice(target, 0, found.field);
    });
  } else {
    const fields = state.form.fields;
    const block = blockAt(found.index);
    if (direction < 0) {
      if (found.index === 0) return;
      let start = found.index - 1;
      const previousSection = sectionOf(found.index);
      if (previousSection) start = fields.indexOf(previousSection);
      commit(() => {
        fields.splice(found.index, block.length);
        fields.splice(start, 0, ...block);
      });
    } else {
      const next = found.index + block.length;
      if (next >= fields.length) return;
      const nextBlock = blockAt(next);
      commit(() => {
        fields.splice(found.index, block.length);
        fields.splice(found.index + nextBlock.length, 0, ...block);
      });
    }
  }
  select(uid, { focus: refocus });
  status(direction < 0 ? t("Moved up.") : t("Moved down."));
}

// The "Place in" choice: "top", a section's uid or a table's uid.
function placeIn(uid, target) {
  const found = find(uid);
  if (!found) return;
  if (target === "top") {
    const firstSection = state.form.fields.find((f) => f.type === "section" && f._uid !== uid);
    return moveTo(uid, "root", firstSection?._uid ?? null);
  }
  const owner = find(target);
  if (!owner) return;
  if (owner.field.type === "table") return moveTo(uid, target, null);
  const end = state.form.fields.indexOf(owner.field) + blockAt(state.form.fields.indexOf(owner.field)).length;
  return moveTo(uid, "root", state.form.fields[end]?._uid ?? null);
}

function remove(uid) {
  const found = find(uid);
  if (!found) return;
  const cards = [...canvas.querySelectorAll(".field-card")];
  const position = cards.findIndex((card) => card.dataset.uid === uid);
  commit(() => found.list.splice(found.index, 1));
  const rest = [...canvas.querySelectorAll(".field-card")];
  const next = rest[Math.min(position, rest.length - 1)];
  select(next ? next.dataset.uid : null, { focus: true });
  status(t("Field removed. Undo brings it back."));
}

function duplicate(uid) {
  const found = find(uid);
  if (!found) return;
  const copy = JSON.parse(JSON.stringify(found.field));
  const renew = (field) => {
    field._uid = model.uid();
    field._kt = false;
    if (Array.isArray(field.fields)) field.fields.forEach(renew);
  };
  renew(copy);
  copy.key = model.deriveKey(copy.key, new Set(found.list.map((f) => f.key)), "field");
  commit(() => found.list.splice(found.index + 1, 0, copy));
  select(copy._uid, { focus: true });
}

function setType(uid, type) {
  const found = find(uid);
  if (!found || found.field.type === type) return;
  commit(() => {
    found.list[found.index] = model.retype(found.field, type, context(Boolean(found.table)));
  });
  renderProperties(designer);
}

// -- drag and drop (native HTML5) ----------------------------------------------------------

let dragging = null; // {kind: "type", type} | {kind: "field", uid}
const MIME = "application/x-formloom";

function startDrag(event, payload, text, effect) {
  dragging = payload;
  event.dataTransfer.setData(MIME, JSON.stringify(payload));
  event.dataTransfer.setData("text/plain", text);
  event.dataTransfer.effectAllowed = effect;
}

palette.addEventListener("dragstart", (event) => {
  const item = event.target.closest("[data-type]");
  if (item) startDrag(event, { kind: "type", type: item.dataset.type }, item.dataset.type, "copy");
});

canvas.addEventListener("dragstart", (event) => {
  const card = event.target.closest(".field-card");
  if (!card) return;
  startDrag(event, { kind: "field", uid: card.dataset.uid }, card.dataset.testid, "move");
  requestAnimationFrame(() => card.classList.add("dragging"));
});

document.addEventListener("dragend", () => {
  dragging = null;
  indicator.hidden = true;
  canvas.querySelector(".dragging")?.classList.remove("dragging");
});

function draggedType(payload) {
  if (!payload) return null;
  if (payload.kind === "type") return payload.type;
  return find(payload.uid)?.field.type ?? null;
}

// Where a drop at (x, y) lands: {container, beforeUid, list, before (a card or null)}.
function dropTarget(event, payload) {
  let list = event.target.closest?.("[data-list]");
  const type = draggedType(payload);
  if (list && list.dataset.list === "table" && !model.TYPES[type]?.column) list = null;
  if (list && type === "section" && list.dataset.list === "section") list = null;
  if (list && payload?.kind === "field" && list.closest(`.field-card[data-uid="${payload.uid}"]`)) list = null;
  let container = "root";
  let cards;
  if (list) {
    cards = [...list.querySelectorAll(":scope > .field-card")];
    if (list.dataset.list === "table") container = list.dataset.owner;
  } else {
    cards = [...canvas.querySelectorAll(":scope > .field-card")];
  }
  const before = cards.find((card) => {
    const box = card.getBoundingClientRect();
    return event.clientY < box.top + box.height / 2;
  });
  let beforeUid = before ? before.dataset.uid : null;
  if (list && list.dataset.list === "section" && !before) {
    // the end of a section: before the next top-level card
    const section = list.closest(".field-card");
    const next = section.nextElementSibling?.closest?.(".field-card") ? section.nextElementSibling : null;
    beforeUid = next ? next.dataset.uid : null;
  }
  return { container, beforeUid, list: list || canvas, before, cards };
}

function showIndicator(target) {
  const host = canvas.getBoundingClientRect();
  let y;
  let box;
  if (target.before) {
    box = target.before.getBoundingClientRect();
    y = box.top - 4;
  } else if (target.cards.length) {
    box = target.cards[target.cards.length - 1].getBoundingClientRect();
    y = box.bottom + 3;
  } else {
    box = target.list.getBoundingClientRect();
    y = box.top + 6;
  }
  indicator.style.top = `${y - host.top + canvas.scrollTop}px`;
  indicator.style.left = `${box.left - host.left}px`;
  indicator.style.width = `${box.width}px`;
  indicator.hidden = false;
}

canvas.addEventListener("dragover", (event) => {
  const payload = dragging;
  if (!payload && !event.dataTransfer.types.includes(MIME)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = payload?.kind === "field" ? "move" : "copy";
  if (payload) showIndicator(dropTarget(event, payload));
});

canvas.addEventListener("dragleave", (event) => {
  if (!canvas.contains(event.relatedTarget)) indicator.hidden = true;
});

canvas.addEventListener("drop", (event) => {
  event.preventDefault();
  indicator.hidden = true;
  let payload = dragging;
  try {
    const text = event.dataTransfer.getData(MIME);
    if (text) payload = JSON.parse(text);
  } catch {
    /* keep the module's own record of the drag */
  }
  dragging = null;
  if (!payload) return;
  const target = dropTarget(event, payload);
  if (payload.kind === "type") {
    addField(payload.type, { container: target.container, beforeUid: target.beforeUid });
  } else if (moveTo(payload.uid, target.container, target.beforeUid)) {
    status(t("Moved."));
  }
});

// -- pointer and keyboard -------------------------------------------------------------------

palette.addEventListener("click", (event) => {
  const item = event.target.closest("[data-type]");
  if (item) addField(item.dataset.type);
});

canvas.addEventListener("click", (event) => {
  const card = event.target.closest(".field-card");
  if (card) select(card.dataset.uid, { focus: true });
});

canvas.addEventListener("focusin", (event) => {
  const card = event.target.closest(".field-card");
  if (card && card.dataset.uid !== state.selected) select(card.dataset.uid);
});

canvas.addEventListener("keydown", (event) => {
  const card = event.target.closest(".field-card");
  if (!card) return;
  const uid = card.dataset.uid;
  const cards = [...canvas.querySelectorAll(".field-card")];
  const position = cards.indexOf(card);
  const go = (next) => {
    if (next) select(next.dataset.uid, { focus: true });
  };
  if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    move(uid, event.key === "ArrowUp" ? -1 : 1);
  } else if (event.key === "ArrowDown" && !event.altKey) {
    event.preventDefault();
    go(cards[position + 1]);
  } else if (event.key === "ArrowUp" && !event.altKey) {
    event.preventDefault();
    go(cards[position - 1]);
  } else if (event.key === "Home") {
    event.preventDefault();
    go(cards[0]);
  } else if (event.key === "End") {
    event.preventDefault();
    go(cards[cards.length - 1]);
  } else if (event.key === "Delete" || event.key === "Backspace") {
    event.preventDefault();
    remove(uid);
  } else if (event.key === "Enter" || event.key === "F2") {
    event.preventDefault();
    propsPanel.querySelector("[data-testid=prop-label]")?.focus();
  }
});

propsPanel.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.selected) {
    event.preventDefault();
    focusCard();
  }
});

document.addEventListener("keydown", (event) => {
  if (document.querySelector("dialog[open]")) return;
  const mod = event.ctrlKey || event.metaKey;
  if (!mod) return;
  const key = event.key.toLowerCase();
  if (key === "z" && !event.shiftKey) {
    event.preventDefault();
    undo();
  } else if ((key === "z" && event.shiftKey) || key === "y") {
    event.preventDefault();
    redo();
  } else if (key === "s") {
    event.preventDefault();
    save(designer);
  }
});

undoButton.addEventListener("click", () => undo());
redoButton.addEventListener("click", () => redo());
saveButton.addEventListener("click", () => save(designer));
root.querySelector("[data-testid=designer-form-settings]").addEventListener("click", () => {
  select(null);
  propsPanel.querySelector("[data-testid=prop-form-label]")?.focus();
});

// -- tabs and the live preview -------------------------------------------------------------

const tabs = [...root.querySelectorAll("[role=tab]")];

function showTab(name) {
  for (const tab of tabs) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    root.querySelector(`#${tab.getAttribute("aria-controls")}`).hidden = !on;
  }
  if (name === "preview") renderPreview();
}

for (const tab of tabs) {
  tab.addEventListener("click", () => showTab(tab.dataset.tab));
  tab.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    showTab(next.dataset.tab);
    next.focus();
  });
}

let renderer = null; // the form.js module, once loaded
let rendererMissing = false;
let preview = null;
let previewTimer = 0;
let previewStale = true;

async function loadRenderer() {
  if (renderer || rendererMissing) return renderer;
  try {
    renderer = await import("/static/form.js");
  } catch {
    rendererMissing = true;
  }
  return renderer;
}

function schedulePreview() {
  previewStale = true;
  if (previewPanel.hidden) return;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(renderPreview, 250);
}

async function renderPreview() {
  if (previewPanel.hidden || !previewStale) return;
  previewStale = false;
  const module = await loadRenderer();
  if (!module?.renderForm) {
    previewNote.textContent = t("The preview is not available: the form renderer is missing.");
    previewNote.hidden = false;
    return;
  }
  let values;
  try {
    values = preview?.values() || {};
  } catch {
    values = {};
  }
  try {
    preview?.destroy();
  } catch {
    /* a broken preview must not stop the next one */
  }
  preview = null;
  previewBox.replaceChildren();
  previewNote.hidden = true;
  const form = model.serializeForm(state.form);
  form.key ||= "new_form";
  try {
    preview = module.renderForm(previewBox, form, {
      values,
      access: {},
      app: data.preview_app,
      mode: "preview",
      now: data.now,
    });
  } catch (error) {
    previewNote.textContent = t("The preview cannot show this form yet: {reason}", { reason: error.message });
    previewNote.hidden = false;
  }
}

// -- start ---------------------------------------------------------------------------------

function renderPalette() {
  palette.innerHTML = data.types
    .map(
      (type) =>
        `<li><button type="button" class="palette-item" draggable="true" data-type="${type}"` +
        ` data-testid="palette-${type}" title="${esc(t("Add after the selected field, or drag onto the form"))}">` +
        `<span class="type-icon" aria-hidden="true">${esc(model.TYPES[type]?.icon || "?")}</span>` +
        `<span>${esc(model.typeName(type))}</span></button></li>`,
    )
    .join("");
}

function redrawCanvas() {
  reindex();
  renderCanvas();
}
function afterSave({ revision, formKey }) {
  state.revision = revision;
  markSaved();
  if (state.isNew) {
    state.isNew = false;
    state.formKeyTouched = true;
    history.replaceState(null, "", `/designer/${state.app.key}/${formKey}`);
    openLink.href = `/apps/${state.app.key}/forms/${formKey}/new`;
    openLink.hidden = false;
    showTemplateButton();
    if (!state.app.forms.some((f) => f.key === formKey)) state.app.forms.push({ key: formKey, label: state.form.label });
    renderProperties(designer);
  }
  updateTitle();
}

renderPalette();
reindex();
renderCanvas();
updateTitle();
updateDirty();
updateMissing();
undoButton.disabled = true;
redoButton.disabled = true;
renderProperties(designer);
wireTemplates(designer, { isDirty });
// a blank new form: its name first
if (state.isNew && !data.form) propsPanel.querySelector("[data-testid=prop-form-label]")?.focus();
if (data.template) status(t("Started from the template “{name}”: change what you need, then save.", { name: data.template }));
root.dataset.ready = "true";
