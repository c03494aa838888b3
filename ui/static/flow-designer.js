// The flow designer (/designer/{app}/flows/{flow}): a vertical chain of steps where steps and
// branch blocks are inserted with "+", dragged (or moved with Alt+arrows) to reorder, and edited
// in a properties panel; Simulate runs the draft; Save goes through the flow API's plan
// (docs/flows.md, "The flow designer"). The page's data (#flow-designer-data) holds the flow as
// written, the app's forms, fields, roles and flows, the clinic's zone and the revision.
//
// Invariants:
// - the flow is edited as the JSON it is saved as (nodes and edges; flow-designer-model.js);
//   every control carries `data-path`, the JSON pointer of what it edits, where a 422 from the
//   server (or a problem found here) is shown, and a step with a problem is marked on the chain;
// - a change made with the mouse or keyboard is one undo step (text boxes: when they are left);
// - nothing is written but by the Save button (plan first, then apply with If-Match).

import { api, ApiError } from "/static/api.js";
import { el } from "/static/dom.js";
import { t, label as labelOf, locale } from "/static/i18n.js";
import { VISIBILITY, needsValue, buildCondition, parseCondition, literal } from "/static/conditions.js";
import { getAt, setAt, escapePart, showValue, splitPointer, pointer } from "/static/rule-editor-model.js";
import { relationPicker } from "/static/form-relation.js";
import * as fm from "/static/flow-designer-model.js";

const data = JSON.parse(document.getElementById("flow-designer-data").textContent);
const root = document.querySelector("[data-testid=flow-designer]");
const canvas = root.querySelector("[data-testid=flow-canvas]");
const propsNode = root.querySelector("[data-testid=flow-props]");
const settingsNode = root.querySelector("[data-testid=flow-settings]");
const statusNode = root.querySelector("[data-testid=flow-status]");
const dirtyNode = root.querySelector("[data-testid=flow-dirty]");
const problemsNode = root.querySelector("[data-testid=flow-problems]");
const jsonNode = root.querySelector("[data-testid=flow-json]");
const planDialog = root.querySelector("[data-testid=flow-plan]");
const simulationNode = root.querySelector("[data-testid=flow-simulation]");
const announceNode = root.querySelector("[data-testid=flow-announce]");

const app = data.app;
const locales = app.locales;
const forms = data.forms;
const formsByKey = Object.fromEntries(forms.map((f) => [f.key, f]));
const roles = data.roles;

const state = {
  isNew: data.flow === null,
  revision: data.revision,
  flow: data.flow ? structuredClone(data.flow) : { ...fm.emptyFlow(forms[0]?.key ?? ""), nodes: [], edges: [] },
  selected: "flow", // "flow", {node: key} or {edge: index}
  errors: new Map(),
  inserting: null, // {edge} or {after: block key}: the open "+" menu
};
if (state.isNew) {
  const empty = fm.emptyFlow(forms[0]?.key ?? "");
  empty.nodes[0].label = labelFor("Start");
  empty.nodes[1].label = labelFor("End");
  state.flow = empty;
}
let current = JSON.stringify(state.flow);
let savedText = state.isNew ? null : JSON.stringify(fm.compact(state.flow));
const past = [];
const future = [];

const TYPE_NAMES = {
  start: "Start",
  end: "End",
  terminate: "End the whole flow",
  user_task: "Task for people",
  action: "Automatic actions",
  timer: "Wait for a time",
  wait: "Wait for a change or a message",
  subflow: "Run another flow",
  cancel: "Withdraw steps",
  exclusive: "Condition branches",
  parallel: "Parallel branches",
  inclusive: "Inclusive branches",
};
const ICONS = { start: "▶", end: "■", terminate: "⏹", user_task: "👤", action: "⚙", timer: "⏱", wait: "⏳", subflow: "↪", cancel: "✕", exclusive: "◇", parallel: "⧉", inclusive: "◈" };
const INSERTABLE = ["user_task", "action", "timer", "wait", "exclusive", "parallel", "end"];
const MODES = { claim: "One of them claims it", any: "Any one of them", all: "Every one of them", n: "A number of them" };
const TIMING_KINDS = { "": "No due time", working_hours: "Working hours", working_days: "Working days", hours: "Hours (calendar)", days: "Days (calendar)" };
const ESCALATION_ACTIONS = { remind: "Remind", reassign: "Hand to someone else", complete: "Complete with an outcome" };
const SAME_BRANCH = { or: [{ "!": { var: "record.branch" } }, { "==": [{ var: "user.branch" }, { var: "record.branch" }] }] };
const SAME_DEPARTMENT = { "==": [{ var: "user.department" }, { var: "record.department" }] };

/** A label in every locale of the app, from an English message. */
function labelFor(message) {
  if (locales.length <= 1) return t(message);
  const out = {};
  for (const loc of locales) out[loc] = loc === locale ? t(message) : loc === "en" ? message : "";
  return out;
}

// -- history --------------------------------------------------------------------------------

function checkpoint() {
  const now = JSON.stringify(state.flow);
  if (now === current) return;
  past.push(current);
  future.length = 0;
  current = now;
  refreshChrome();
}

function restore(text) {
  current = text;
  state.flow = JSON.parse(text);
  if (state.selected?.node && !fm.nodeOf(state.flow, state.selected.node)) state.selected = "flow";
  if (state.selected?.edge !== undefined && !state.flow.edges[state.selected.edge]) state.selected = "flow";
  render();
}

function undo() {
  checkpoint();
  if (!past.length) return;
  future.push(current);
  restore(past.pop());
}

function redo() {
  if (!future.length) return;
  past.push(current);
  restore(future.pop());
}

function isDirty() {
  return JSON.stringify(fm.compact(state.flow)) !== savedText;
}

function refreshChrome() {
  dirtyNode.hidden = !isDirty();
  root.querySelector("[data-testid=flow-undo]").disabled = !past.length && JSON.stringify(state.flow) === current;
  root.querySelector("[data-testid=flow-redo]").disabled = !future.length;
  jsonNode.textContent = JSON.stringify(fm.compact(state.flow), null, 2);
  root.querySelector("[data-flow-title]").textContent = labelOf(state.flow.label) || state.flow.key || t("New flow");
}

/** Change the flow and draw it again (one undo step). */
function change(mutate) {
  mutate(state.flow);
  checkpoint();
  render();
}

function announce(text) {
  announceNode.textContent = text;
}

// -- controls -------------------------------------------------------------------------------

let uid = 0;
const nextId = () => `fd-${++uid}`;

function errorAt(path) {
  const message = state.errors.get(path);
  return message ? el("span", { class: "field-error", role: "alert", "data-error-for": path, text: message }) : null;
}

function row(text, control, path, hint) {
  const id = control.id || (control.id = nextId());
  return el(
    "div",
    { class: `re-row${path && state.errors.has(path) ? " invalid" : ""}` },
    el("label", { for: id, text }),
    control,
    hint ? el("span", { class: "muted small", text: hint }) : null,
    path ? errorAt(path) : null,
  );
}

function textBox(path, testid, { multiline = false, type = "text", read = (v) => showValue(v), write = (v) => v } = {}) {
  const value = read(getAt(state.flow, path));
  const node = el(multiline ? "textarea" : "input", {
    type: multiline ? undefined : type,
    rows: multiline ? 3 : undefined,
    "data-path": path,
    "data-testid": testid,
    "aria-invalid": state.errors.has(path) ? "true" : undefined,
  });
  node.value = value;
  node.addEventListener("input", () => {
    setAt(state.flow, path, write(node.value));
    refreshChrome();
  });
  node.addEventListener("change", () => {
    checkpoint();
    drawCanvas();
  });
  return node;
}

function select(path, testid, options, { onPick, value } = {}) {
  const chosen = value !== undefined ? value : getAt(state.flow, path);
  const node = el(
    "select",
    { "data-path": path, "data-testid": testid },
    options.map((o) => el("option", { value: o.value, text: o.label, selected: String(o.value) === String(chosen ?? "") })),
  );
  node.value = chosen ?? "";
  node.addEventListener("change", () => {
    if (onPick) change((flow) => onPick(node.value, flow));
    else change((flow) => setAt(flow, path, node.value === "" ? undefined : node.value));
  });
  return node;
}

function checkbox(testid, checked, onToggle, text, path) {
  const box = el("input", { type: "checkbox", "data-testid": testid, checked, "data-path": path });
  box.checked = checked;
  box.addEventListener("change", () => change((flow) => onToggle(box.checked, flow)));
  const id = nextId();
  box.id = id;
  return el("div", { class: "re-row check" }, box, el("label", { for: id, text }));
}

// JSON typed into a box that does not parse stays on screen with its error until it does.
const unparsed = new Map();

function jsonBox(path, testid, { optional = true } = {}) {
  const value = getAt(state.flow, path);
  const shown = unparsed.has(path) ? unparsed.get(path) : value === undefined || value === null ? "" : JSON.stringify(value, null, 1);
  const node = el("textarea", { rows: 4, class: "json", "data-path": path, "data-testid": testid, "aria-invalid": unparsed.has(path) ? "true" : undefined });
  node.value = shown;
  node.addEventListener("change", () => {
    const text = node.value.trim();
    if (!text && optional) {
      unparsed.delete(path);
      state.errors.delete(path);
      change((flow) => setAt(flow, path, undefined));
      return;
    }
    try {
      const parsed = JSON.parse(text);
      unparsed.delete(path);
      state.errors.delete(path);
      change((flow) => setAt(flow, path, parsed));
    } catch {
      unparsed.set(path, node.value);
      state.errors.set(path, t("This is not valid JSON."));
      render();
    }
  });
  return node;
}

/** A text people read: one box per app locale. */
function localeText(path, testid, caption, { multiline = false } = {}) {
  const value = getAt(state.flow, path);
  const boxes = [];
  if (typeof value === "string" || locales.length <= 1) {
    boxes.push(row(caption, textBox(path, testid, { multiline }), path));
  } else {
    if (value === undefined || value === null) setAt(state.flow, path, Object.fromEntries(locales.map((l) => [l, ""])));
    for (const loc of locales) {
      const inner = `${path}/${escapePart(loc)}`;
      boxes.push(row(`${caption} (${loc})`, textBox(inner, `${testid}-${loc}`, { multiline }), inner));
    }
  }
  return el("div", { class: "locale-text", "data-path": path }, boxes, errorAt(path));
}

function section(title, testid, ...children) {
  const id = nextId();
  return el("fieldset", { class: "re-section", "data-testid": testid, "aria-labelledby": id }, el("legend", { id, text: title }), ...children);
}

function flowFields() {
  return (formsByKey[state.flow.form]?.fields ?? []).filter((f) => f.type !== "table");
}

function nodeName(key) {
  const node = fm.nodeOf(state.flow, key);
  if (!node) return key;
  return labelOf(node.label) || t(TYPE_NAMES[node.type] ?? node.type);
}

function nodeIndex(key) {
  return state.flow.nodes.findIndex((n) => n.key === key);
}

// -- the flow's own settings ------------------------------------------------------------------

function drawSettings() {
  const flowKey = state.isNew
    ? row(t("Key"), textBox("/key", "flow-key"), "/key", t("Lower-case letters, digits and _; it cannot change once saved."))
    : el("p", { class: "muted small" }, `${t("Key")}: `, el("code", { text: state.flow.key }));
  const formPick = select("/form", "flow-form", forms.map((f) => ({ value: f.key, label: f.label })), {
    onPick: (value, flow) => {
      flow.form = value;
    },
  });
  const starters = el(
    "div",
    { class: "chips", "data-path": "/start/roles" },
    roles.map((role) =>
      checkbox(`flow-start-${role.key}`, (state.flow.start?.roles ?? []).includes(role.key), (on, flow) => {
        flow.start = flow.start ?? {};
        const list = (flow.start.roles ?? []).filter((k) => k !== role.key);
        if (on) list.push(role.key); // in the order they were ticked
        flow.start.roles = list;
      }, role.label),
    ),
  );
  settingsNode.replaceChildren(
    section(
      t("The flow"),
      "flow-settings-section",
      flowKey,
      localeText("/label", "flow-label", t("Name")),
      localeText("/description", "flow-description", t("What it is for"), { multiline: true }),
      row(t("Runs on records of"), formPick, "/form"),
      el("div", { class: "re-row" }, el("span", { class: "caption", text: t("Who may start it by hand") }), starters, errorAt("/start/roles")),
      el("details", { class: "advanced" }, el("summary", { text: t("Advanced") }),
        row(t("Only on records where (JsonLogic)"), jsonBox("/start/when", "flow-start-when"), "/start/when"),
        row(t("Cancel when (JsonLogic)"), jsonBox("/cancel_when", "flow-cancel-when"), "/cancel_when")),
    ),
  );
}

// -- the chain of steps -----------------------------------------------------------------------

function summaryOf(node) {
  if (node.type === "user_task") {
    const a = node.assignee ?? {};
    let who = "";
    if (a.role) who = roles.find((r) => r.key === a.role)?.label ?? a.role;
    else if (a.field) who = flowFields().find((f) => f.key === a.field)?.label ?? a.field;
    else if (a.starter) who = t("Who started the flow");
    else if (a.previous) who = t("Who did the step before");
    else if (a.user) who = typeof a.user === "string" ? a.user : t("A user (expression)");
    const due = timingWords(node.due);
    return [who || t("Nobody chosen yet"), due].filter(Boolean).join(" · ");
  }
  if (node.type === "timer") return timingWords(node.wait);
  if (node.type === "action") return t("{n} action(s)", { n: (node.actions ?? []).length });
  if (node.type === "subflow") return node.flow ? nodeFlowLabel(node.flow) : "";
  return "";
}

function nodeFlowLabel(key) {
  return data.flows.find((f) => f.key === key)?.label ?? key;
}

function timingWords(timing) {
  if (!timing) return "";
  if (timing.working_hours !== undefined) return t("{n} working hours", { n: timing.working_hours });
  if (timing.working_days !== undefined) return t("{n} working days", { n: timing.working_days });
  if (timing.after) {
    const hours = /^PT(\d+)H$/.exec(timing.after);
    const days = /^P(\d+)D$/.exec(timing.after);
    if (hours) return t("{n} hours", { n: hours[1] });
    if (days) return t("{n} days", { n: days[1] });
    return timing.after;
  }
  if (timing.at !== undefined) return t("at a date from the record");
  return "";
}

function hasProblem(key) {
  const index = nodeIndex(key);
  const prefix = `/nodes/${index}`;
  for (const path of state.errors.keys()) if (path === prefix || path.startsWith(`${prefix}/`)) return true;
  return false;
}

function card(key) {
  const node = fm.nodeOf(state.flow, key);
  const selected = state.selected?.node === key;
  const problem = hasProblem(key);
  const movable = !["start"].includes(node.type) && fm.outgoing(state.flow, key).length === 1;
  const box = el(
    "div",
    {
      class: `flow-step type-${node.type}${selected ? " selected" : ""}${problem ? " has-error" : ""}`,
      role: "treeitem",
      tabindex: "0",
      "aria-selected": selected ? "true" : "false",
      "data-node": key,
      "data-testid": `step-${key}`,
      draggable: movable ? "true" : undefined,
      "aria-keyshortcuts": movable ? "Alt+ArrowUp Alt+ArrowDown Delete" : undefined,
    },
    el("span", { class: "step-icon", "aria-hidden": "true", text: ICONS[node.type] ?? "•" }),
    el("span", { class: "step-text" }, el("strong", { text: nodeName(key) }), el("span", { class: "muted small", text: [t(TYPE_NAMES[node.type] ?? node.type), summaryOf(node)].filter(Boolean).join(" · ") })),
    problem ? el("span", { class: "step-problem", text: "!", title: t("This step has a problem") }) : null,
    data.positions?.[key] ? el("span", { class: "step-count", "data-testid": `waiting-${key}`, title: t("Running instances waiting at this step"), text: t("{n} waiting", { n: data.positions[key] }) }) : null,
    watched.here.has(key) ? el("span", { class: "step-here", "data-testid": `here-${key}`, text: t("It is here") }) : watched.done.has(key) ? el("span", { class: "step-done", "aria-label": t("Done"), text: "✓" }) : null,
  );
  box.addEventListener("click", () => selectItem({ node: key }));
  box.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData("text/x-flow-step", key);
    event.dataTransfer.effectAllowed = "move";
    box.classList.add("dragging");
  });
  box.addEventListener("dragend", () => box.classList.remove("dragging"));
  return box;
}

/** The "+" between two steps: insert on `edge`; also where a dragged step is dropped. */
function slot(edge, testid) {
  const open = state.inserting && state.inserting.edge === edge;
  const button = el("button", { type: "button", class: "flow-add", "data-testid": testid, "aria-expanded": open ? "true" : "false", "aria-label": t("Add a step here"), text: "+" });
  button.addEventListener("click", () => {
    state.inserting = open ? null : { edge };
    drawCanvas();
    if (state.inserting) canvas.querySelector("[data-insert-menu] button")?.focus();
  });
  const wrap = el("div", { class: "flow-slot", "data-edge": String(edge) }, el("span", { class: "flow-line", "aria-hidden": "true" }), button);
  wrap.addEventListener("dragover", (event) => {
    if (event.dataTransfer.types.includes("text/x-flow-step")) {
      event.preventDefault();
      wrap.classList.add("drop");
    }
  });
  wrap.addEventListener("dragleave", () => wrap.classList.remove("drop"));
  wrap.addEventListener("drop", (event) => {
    event.preventDefault();
    const key = event.dataTransfer.getData("text/x-flow-step");
    wrap.classList.remove("drop");
    moveTo(key, edge);
  });
  if (open) wrap.append(insertMenu(edge));
  return wrap;
}

function insertMenu(edge) {
  const menu = el("div", { class: "flow-insert", role: "menu", "data-insert-menu": "", "data-testid": "insert-menu" });
  for (const type of INSERTABLE) {
    const item = el("button", { type: "button", role: "menuitem", "data-testid": `insert-${type}`, text: `${ICONS[type]} ${t(TYPE_NAMES[type])}` });
    item.addEventListener("click", () => insertAt(edge, type));
    menu.append(item);
  }
  menu.addEventListener("keydown", (event) => {
    const items = [...menu.querySelectorAll("button")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown") items[(at + 1) % items.length].focus();
    else if (event.key === "ArrowUp") items[(at - 1 + items.length) % items.length].focus();
    else if (event.key === "Escape") {
      state.inserting = null;
      drawCanvas();
      canvas.querySelector(`[data-edge="${edge}"] .flow-add`)?.focus();
    } else return;
    event.preventDefault();
  });
  return menu;
}

function insertAt(edge, type) {
  let key;
  change((flow) => {
    if (fm.GATEWAYS.has(type)) {
      key = fm.insertBlock(flow, edge, type, { split: labelFor(type === "parallel" ? "At the same time" : "Which way?") });
    } else {
      const node = fm.newNode(flow, type, labelFor(TYPE_NAMES[type]));
      if (type === "user_task") node.title = labelFor("");
      key = fm.insertStep(flow, edge, node);
    }
  });
  state.inserting = null;
  selectItem({ node: key });
  announce(t("Added: {step}", { step: nodeName(key) }));
}

function moveTo(key, edge) {
  const before = JSON.stringify(state.flow);
  const flow = JSON.parse(before);
  if (!fm.moveStep(flow, key, edge)) {
    announce(t("That step cannot be moved there."));
    return;
  }
  change((f) => Object.assign(f, flow));
  announce(t("Moved: {step}", { step: nodeName(key) }));
  focusStep(key);
}

function branchCaption(block, branch) {
  const edge = state.flow.edges[branch.edge];
  const split = fm.nodeOf(state.flow, block.key);
  if (labelOf(edge.label)) return labelOf(edge.label);
  if (edge.outcome) {
    const outcome = (split.outcomes ?? []).find((o) => o.key === edge.outcome);
    return labelOf(outcome?.label) || edge.outcome;
  }
  if (edge.default) return t("Otherwise");
  if (split.type === "parallel") return t("Branch");
  if (edge.if === null || edge.if === undefined) return t("Condition not set");
  return t("When the condition holds");
}

function drawChain(items) {
  const out = [];
  for (const item of items) {
    if (item.kind === "goto") {
      const pill = el("button", { type: "button", class: "flow-goto", "data-testid": `goto-${item.target}`, text: `↪ ${t("Go to: {step}", { step: nodeName(item.target) })}` });
      pill.addEventListener("click", () => focusStep(item.target, true));
      out.push(pill);
      continue;
    }
    out.push(card(item.key));
    if (item.kind === "step") {
      if (item.edge !== null) out.push(slot(item.edge, `add-after-${item.key}`));
      continue;
    }
    const node = fm.nodeOf(state.flow, item.key);
    const columns = item.branches.map((branch, index) => {
      const edge = state.flow.edges[branch.edge];
      const selected = state.selected?.edge === branch.edge;
      const head = el("button", {
        type: "button",
        class: `flow-branch-head${selected ? " selected" : ""}${state.errors.has(`/edges/${branch.edge}/if`) ? " has-error" : ""}`,
        "data-testid": `branch-${item.key}-${index}`,
        "data-edge-head": String(branch.edge),
        text: branchCaption(item, branch),
      });
      head.addEventListener("click", () => selectItem({ edge: branch.edge }));
      const column = el("div", { class: "flow-branch", role: "group", "aria-label": branchCaption(item, branch) }, head);
      if (!edge.outcome) column.append(slot(branch.edge, `add-in-${item.key}-${index}`));
      column.append(...drawChain(branch.chain));
      return column;
    });
    const branches = el("div", { class: "flow-branches" }, columns);
    const tools = el("div", { class: "flow-block-tools" });
    if (fm.GATEWAYS.has(node.type)) {
      const add = el("button", { type: "button", class: "quiet small", "data-testid": `add-branch-${item.key}`, text: `+ ${t("Add a branch")}` });
      add.addEventListener("click", () => change((flow) => fm.addBranch(flow, item.key)));
      tools.append(add);
    }
    out.push(el("div", { class: "flow-block", "data-block": item.key }, branches, tools));
  }
  return out;
}

// One instance whose position the drawing shows (?instance=<id>, from the instance API, which
// checks that the reader may see it): the steps it waits at and those it has done.
const watched = { here: new Set(), done: new Set() };

async function watchInstance(id) {
  try {
    const { data: instance } = await api(`/api/flow-instances/${encodeURIComponent(id)}`);
    watched.here = new Set(instance.waiting_at);
    watched.done = new Set(Object.keys(instance.steps ?? {}).filter((k) => !watched.here.has(k)));
    drawCanvas();
    announce(t("Showing where the instance is: {steps}", { steps: instance.waiting_at.map(nodeName).join(", ") || t(instance.status) }));
  } catch (error) {
    setStatus(error.message, "error");
  }
}

function drawCanvas() {
  const items = fm.layout(state.flow);
  canvas.replaceChildren(...drawChain(items));
  refreshChrome();
}

function focusStep(key, pick = false) {
  const target = canvas.querySelector(`[data-node="${CSS.escape(key)}"]`);
  if (!target) return;
  if (pick) selectItem({ node: key });
  canvas.querySelector(`[data-node="${CSS.escape(key)}"]`)?.focus();
}

function selectItem(item) {
  state.selected = item;
  render();
  if (item.node) canvas.querySelector(`[data-node="${CSS.escape(item.node)}"]`)?.focus();
}

canvas.addEventListener("keydown", (event) => {
  const target = event.target.closest?.("[data-node]");
  if (!target) return;
  const key = target.dataset.node;
  const order = fm.stepOrder(fm.layout(state.flow));
  const at = order.indexOf(key);
  if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    moveByKeyboard(key, event.key === "ArrowUp" ? -1 : 1);
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const next = order[at + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) focusStep(next);
  } else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    selectItem({ node: key });
    propsNode.querySelector("input, select, textarea")?.focus();
  } else if (event.key === "Delete") {
    event.preventDefault();
    removeNode(key);
  }
});

function moveByKeyboard(key, direction) {
  const flow = state.flow;
  if (direction < 0) {
    // onto the edge that enters the step before it
    const before = fm.incoming(flow, key).map((e) => e.edge.from)[0];
    const edge = before ? fm.incoming(flow, before)[0] : null;
    if (!edge) return announce(t("That step cannot be moved there."));
    return moveTo(key, edge.index);
  }
  const after = fm.outgoing(flow, key)[0]?.edge.to;
  const edge = after ? fm.outgoing(flow, after) : [];
  if (edge.length !== 1) return announce(t("That step cannot be moved there."));
  moveTo(key, edge[0].index);
}

function removeNode(key) {
  const flow = JSON.parse(JSON.stringify(state.flow));
  const name = nodeName(key);
  if (!fm.removeStep(flow, key)) {
    announce(t("This step cannot be removed: the flow needs it to reach an end."));
    setStatus(t("This step cannot be removed: the flow needs it to reach an end."), "error");
    return;
  }
  change((f) => Object.assign(f, flow));
  state.selected = "flow";
  render();
  announce(t("Removed: {step}", { step: name }));
  canvas.querySelector("[data-node]")?.focus();
}

// -- properties ------------------------------------------------------------------------------

function timingEditor(path, testid, { none = true } = {}) {
  const timing = getAt(state.flow, path);
  let kind = "";
  let amount = "";
  if (timing?.working_hours !== undefined) [kind, amount] = ["working_hours", timing.working_hours];
  else if (timing?.working_days !== undefined) [kind, amount] = ["working_days", timing.working_days];
  else if (timing?.after) {
    const hours = /^PT(\d+)H$/.exec(timing.after);
    const days = /^P(\d+)D$/.exec(timing.after);
    if (hours) [kind, amount] = ["hours", hours[1]];
    else if (days) [kind, amount] = ["days", days[1]];
  }
  const custom = timing && !kind;
  const kinds = Object.entries(TIMING_KINDS).filter(([k]) => none || k);
  const kindBox = el("select", { "data-testid": `${testid}-kind`, "data-path": path, "aria-label": t("Kind of time") }, kinds.map(([k, text]) => el("option", { value: k, text: t(text), selected: k === kind })));
  if (custom) kindBox.append(el("option", { value: "custom", text: t("As written (Advanced)"), selected: true }));
  const amountBox = el("input", { type: "number", min: "0", step: kind === "working_hours" ? "0.5" : "1", "data-testid": `${testid}-amount`, "aria-label": t("How many") });
  amountBox.value = amount;
  amountBox.hidden = !kind;
  const write = () => change((flow) => {
    const k = kindBox.value;
    const n = Number(amountBox.value || 1);
    let next;
    if (k === "working_hours") next = { working_hours: n };
    else if (k === "working_days") next = { working_days: Math.round(n) };
    else if (k === "hours") next = { after: `PT${Math.round(n)}H` };
    else if (k === "days") next = { after: `P${Math.round(n)}D` };
    setAt(flow, path, next);
  });
  kindBox.addEventListener("change", () => {
    if (kindBox.value !== "custom") write();
  });
  amountBox.addEventListener("change", write);
  return el("div", { class: "timing" }, kindBox, amountBox, custom ? jsonBox(path, `${testid}-json`) : null, errorAt(path));
}

function assigneeEditor(path, testid) {
  const a = getAt(state.flow, path) ?? {};
  const kind = a.role !== undefined ? "role" : a.field !== undefined ? "field" : a.starter ? "starter" : a.previous ? "previous" : a.user !== undefined ? "user" : "role";
  const kinds = { role: t("Everyone with a role"), field: t("The staff member in a field"), starter: t("Who started the flow"), previous: t("Who did the step before"), user: t("A user (name or expression)") };
  const kindBox = select(`${path}/kind`, `${testid}-kind`, Object.entries(kinds).map(([value, label]) => ({ value, label })), {
    value: kind,
    onPick: (value, flow) => {
      const where = getAt(flow, `${path}/where`);
      const next = { role: { role: "" }, field: { field: "" }, starter: { starter: true }, previous: { previous: true }, user: { user: "" } }[value];
      if (where !== undefined && value === "role") next.where = where;
      setAt(flow, path, next);
    },
  });
  const parts = [row(t("Who does it"), kindBox, path)];
  if (kind === "role") {
    parts.push(row(t("Role"), select(`${path}/role`, `${testid}-role`, [{ value: "", label: "—" }, ...roles.map((r) => ({ value: r.key, label: r.label }))]), `${path}/role`));
    const where = a.where;
    const sameBranch = JSON.stringify(where) === JSON.stringify(SAME_BRANCH);
    const sameDept = JSON.stringify(where) === JSON.stringify(SAME_DEPARTMENT);
    parts.push(checkbox(`${testid}-same-branch`, sameBranch, (on, flow) => setAt(flow, `${path}/where`, on ? structuredClone(SAME_BRANCH) : undefined), t("Only people of the record's branch (records without a branch: everyone)"), `${path}/where`));
    parts.push(checkbox(`${testid}-same-department`, sameDept, (on, flow) => setAt(flow, `${path}/where`, on ? structuredClone(SAME_DEPARTMENT) : undefined), t("Only people of the record's department")));
    if (where !== undefined && !sameBranch && !sameDept) parts.push(row(t("Only those for whom (JsonLogic over user and record)"), jsonBox(`${path}/where`, `${testid}-where`), `${path}/where`));
  } else if (kind === "field") {
    // a relation to staff, or a member field (its people themselves)
    const relations = flowFields().filter((f) => f.type === "relation" || f.type === "user");
    parts.push(row(t("Field"), select(`${path}/field`, `${testid}-field`, [{ value: "", label: "—" }, ...relations.map((f) => ({ value: f.key, label: f.label }))]), `${path}/field`));
  } else if (kind === "user") {
    parts.push(row(t("User name"), textBox(`${path}/user`, `${testid}-user`), `${path}/user`));
  }
  return el("div", { class: "assignee", "data-path": path }, parts);
}

function outcomesEditor(key, base) {
  const node = fm.nodeOf(state.flow, key);
  const outcomes = node.outcomes ?? [];
  const routes = fm.outcomeRoutes(state.flow, key);
  const targets = state.flow.nodes.filter((n) => n.key !== key && n.type !== "start");
  const list = outcomes.map((outcome, index) => {
    const path = `${base}/outcomes/${index}`;
    const goes = el(
      "select",
      { "data-testid": `outcome-${index}-to`, "aria-label": t("Then") },
      el("option", { value: "", text: t("The next step") }),
      targets.map((n) => el("option", { value: n.key, text: t("Go to: {step}", { step: nodeName(n.key) }), selected: routes[outcome.key] === n.key && outcomes.length > 1 && hasOwnRoute(key, outcome.key) })),
    );
    if (!hasOwnRoute(key, outcome.key)) goes.value = "";
    goes.addEventListener("change", () => change((flow) => fm.routeOutcome(flow, key, outcome.key, goes.value || null)));
    const remove = el("button", { type: "button", class: "icon-button", "data-testid": `outcome-${index}-remove`, "aria-label": t("Remove this outcome"), text: "×" });
    remove.addEventListener("click", () => change((flow) => {
      const n = fm.nodeOf(flow, key);
      const [gone] = n.outcomes.splice(index, 1);
      flow.edges = flow.edges.filter((e) => !(e.from === key && e.outcome === gone.key));
      if (!fm.outgoing(flow, key).length) flow.edges.push({ from: key, to: routes[gone.key] ?? "end" });
      if (!n.outcomes.length) delete n.outcomes;
    }));
    return el(
      "div",
      { class: "outcome-card", "data-path": path, "data-testid": `outcome-${index}` },
      row(t("Key"), keyBox(`${path}/key`, `outcome-${index}-key`, (flow, old, next) => {
        for (const e of flow.edges) if (e.from === key && e.outcome === old) e.outcome = next;
      }), `${path}/key`),
      localeText(`${path}/label`, `outcome-${index}-label`, t("Button")),
      checkbox(`outcome-${index}-comment`, outcome.comment === "required", (on, flow) => setAt(flow, `${path}/comment`, on ? "required" : undefined), t("A comment is required")),
      node.mode === "all" || typeof node.mode === "number" ? checkbox(`outcome-${index}-veto`, !!outcome.veto, (on, flow) => setAt(flow, `${path}/veto`, on || undefined), t("One person choosing this decides for all")) : null,
      row(t("Then"), goes, null),
      remove,
    );
  });
  const add = el("button", { type: "button", class: "quiet", "data-testid": "outcome-add", text: `+ ${t("Add an outcome")}` });
  add.addEventListener("click", () => change((flow) => {
    const n = fm.nodeOf(flow, key);
    n.outcomes = n.outcomes ?? [];
    const used = new Set(n.outcomes.map((o) => o.key));
    let k = "done";
    for (let i = 2; used.has(k); i++) k = `outcome_${i}`;
    n.outcomes.push({ key: k, label: Object.fromEntries(locales.map((l) => [l, ""])) });
  }));
  return section(t("Outcomes (the task's buttons)"), "step-outcomes", outcomes.length ? null : el("p", { class: "muted small", text: t("One button, Done, unless you add outcomes.") }), list, add, errorAt(`${base}/outcomes`));
}

function hasOwnRoute(key, outcome) {
  return fm.outgoing(state.flow, key).some((o) => o.edge.outcome === outcome);
}

/** A key box: written on leaving it; `follow` updates what names the old key. */
function keyBox(path, testid, follow) {
  const node = el("input", { type: "text", "data-path": path, "data-testid": testid, pattern: "[a-z][a-z0-9_]*" });
  node.value = getAt(state.flow, path) ?? "";
  node.addEventListener("change", () => {
    const old = getAt(state.flow, path);
    const next = node.value.trim();
    change((flow) => {
      setAt(flow, path, next);
      follow?.(flow, old, next);
    });
  });
  return node;
}

function fieldTable(base) {
  const node = getAt(state.flow, base);
  const fields = flowFields().filter((f) => f.type !== "section");
  const edit = new Set(node.edit ?? []);
  const required = new Set(node.required ?? []);
  const hide = new Set(node.hide ?? []);
  const toggle = (list, key, on) => (flow) => {
    const n = getAt(flow, base);
    const set = new Set(n[list] ?? []);
    if (on) set.add(key);
    else set.delete(key);
    if (list === "edit" && !on) {
      const req = new Set(n.required ?? []);
      req.delete(key);
      n.required = fields.map((f) => f.key).filter((k) => req.has(k));
    }
    if (list === "required" && on) {
      const ed = new Set(n.edit ?? []);
      ed.add(key);
      n.edit = fields.map((f) => f.key).filter((k) => ed.has(k));
    }
    if (list === "hide" && on) {
      for (const other of ["edit", "required"]) n[other] = (n[other] ?? []).filter((k) => k !== key);
    }
    n[list] = fields.map((f) => f.key).filter((k) => set.has(k));
    for (const l of ["edit", "required", "hide"]) if (n[l] && !n[l].length) delete n[l];
  };
  const box = (list, key, checked, testid, caption) => {
    const input = el("input", { type: "checkbox", "data-testid": testid, "aria-label": caption });
    input.checked = checked;
    input.addEventListener("change", () => change(toggle(list, key, list === "hide" ? !input.checked : input.checked)));
    return el("td", {}, input);
  };
  return section(
    t("Fields at this step"),
    "step-fields",
    el(
      "table",
      { class: "field-rights", "data-path": `${base}/edit` },
      el("thead", {}, el("tr", {}, el("th", { text: t("Field") }), el("th", { text: t("Visible") }), el("th", { text: t("Editable") }), el("th", { text: t("Required") }))),
      el("tbody", {}, fields.map((f) => el("tr", { "data-field": f.key },
        el("th", { scope: "row", text: f.label }),
        box("hide", f.key, !hide.has(f.key), `field-${f.key}-visible`, `${f.label}: ${t("Visible")}`),
        box("edit", f.key, edit.has(f.key), `field-${f.key}-edit`, `${f.label}: ${t("Editable")}`),
        box("required", f.key, required.has(f.key), `field-${f.key}-required`, `${f.label}: ${t("Required")}`)))),
    ),
    errorAt(`${base}/edit`),
    errorAt(`${base}/required`),
  );
}

function escalationsEditor(base) {
  const list = getAt(state.flow, `${base}/escalations`) ?? [];
  const cards = list.map((esc, index) => {
    const path = `${base}/escalations/${index}`;
    const action = select(`${path}/action`, `escalation-${index}-action`, Object.entries(ESCALATION_ACTIONS).map(([value, label]) => ({ value, label: t(label) })), {
      onPick: (value, flow) => {
        const e = getAt(flow, path);
        e.action = value;
        if (value !== "reassign") delete e.to;
        else e.to = e.to ?? { role: "" };
        if (value !== "complete") delete e.outcome;
      },
    });
    const remove = el("button", { type: "button", class: "icon-button", "data-testid": `escalation-${index}-remove`, "aria-label": t("Remove"), text: "×" });
    remove.addEventListener("click", () => change((flow) => {
      const n = getAt(flow, base);
      n.escalations.splice(index, 1);
      if (!n.escalations.length) delete n.escalations;
    }));
    return el(
      "div",
      { class: "outcome-card", "data-path": path, "data-testid": `escalation-${index}` },
      row(t("When overdue"), action, `${path}/action`),
      row(t("After the due time"), timingEditor(`${path}/after`, `escalation-${index}-after`), `${path}/after`, t("No time: at once when overdue")),
      esc.action === "reassign" ? assigneeEditor(`${path}/to`, `escalation-${index}-to`) : null,
      esc.action === "complete" ? row(t("Outcome"), textBox(`${path}/outcome`, `escalation-${index}-outcome`), `${path}/outcome`) : null,
      remove,
    );
  });
  const add = el("button", { type: "button", class: "quiet", "data-testid": "escalation-add", text: `+ ${t("Add an escalation")}` });
  add.addEventListener("click", () => change((flow) => {
    const n = getAt(flow, base);
    n.escalations = [...(n.escalations ?? []), { action: "remind" }];
  }));
  return section(t("Due time and escalation"), "step-due", row(t("Due"), timingEditor(`${base}/due`, "step-due"), `${base}/due`), cards, add);
}

function userTaskProps(key, base) {
  const node = fm.nodeOf(state.flow, key);
  const modeValue = typeof node.mode === "number" ? "n" : node.mode ?? "claim";
  const mode = select(`${base}/mode`, "step-mode", Object.entries(MODES).map(([value, label]) => ({ value, label: t(label) })), {
    value: modeValue,
    onPick: (value, flow) => setAt(flow, `${base}/mode`, value === "n" ? 2 : value === "claim" ? undefined : value),
  });
  return [
    localeText(`${base}/title`, "step-title", t("Task title")),
    localeText(`${base}/description`, "step-description", t("What to do"), { multiline: true }),
    section(t("Who"), "step-who", assigneeEditor(`${base}/assignee`, "assignee"), row(t("How many must act"), mode, `${base}/mode`),
      typeof node.mode === "number" ? row(t("Number of people"), textBox(`${base}/mode`, "step-mode-n", { type: "number", write: (v) => Number(v) }), `${base}/mode`) : null),
    outcomesEditor(key, base),
    fieldTable(base),
    escalationsEditor(base),
    checkbox("step-returnable", !!node.returnable, (on, flow) => setAt(flow, `${base}/returnable`, on || undefined), t("May be sent back to an earlier step")),
  ];
}

function edgeProps(index) {
  const edge = state.flow.edges[index];
  const base = `/edges/${index}`;
  const split = fm.nodeOf(state.flow, edge.from);
  const parts = [localeText(`${base}/label`, "branch-label", t("Name on the arrow"))];
  if (split && (split.type === "exclusive" || split.type === "inclusive")) {
    parts.push(checkbox("branch-default", !!edge.default, (on, flow) => {
      const e = flow.edges[index];
      if (on) {
        for (const other of flow.edges) if (other.from === e.from && other !== e) delete other.default;
        e.default = true;
        delete e.if;
      } else {
        delete e.default;
        e.if = null;
      }
    }, t("Otherwise (taken when no other branch's condition holds)")));
    if (!edge.default) parts.push(conditionEditor(`${base}/if`));
  }
  const remove = el("button", { type: "button", class: "danger", "data-testid": "branch-remove", text: t("Remove this branch and its steps") });
  remove.addEventListener("click", () => {
    if (fm.outgoing(state.flow, edge.from).length <= 2) {
      setStatus(t("A block keeps at least two branches; remove the block instead."), "error");
      return;
    }
    change((flow) => fm.removeBranch(flow, index));
    state.selected = { node: edge.from };
    render();
  });
  return [el("h2", { text: t("Branch") }), ...parts, remove];
}

const PREFIX = "record.";
let conditionAsJson = false;

function typeOfVariable(name) {
  if (!name.startsWith(PREFIX)) return undefined;
  return flowFields().find((f) => f.key === name.slice(PREFIX.length))?.type;
}

function conditionEditor(path) {
  const rule = getAt(state.flow, path);
  const parsed = conditionAsJson ? null : parseCondition(rule === null || rule === undefined ? undefined : rule, VISIBILITY, typeOfVariable);
  if (parsed === null) {
    const back = el("button", { type: "button", class: "quiet small", "data-testid": "condition-builder", text: t("Use the builder") });
    back.addEventListener("click", () => {
      conditionAsJson = false;
      render();
    });
    return section(t("Condition"), "branch-condition", row(t("JsonLogic over record, vars and steps"), jsonBox(path, "condition-json"), path), back);
  }
  const write = (next) => change((flow) => setAt(flow, path, buildCondition(next) ?? null));
  const fields = flowFields();
  const rows = parsed.rows.map((item, index) => {
    const type = typeOfVariable(item.field);
    const field = el("select", { "data-testid": `condition-field-${index}`, "aria-label": t("Field") }, fields.map((f) => el("option", { value: PREFIX + f.key, text: f.label, selected: PREFIX + f.key === item.field })));
    field.addEventListener("change", () => {
      const next = structuredClone(parsed);
      const newType = typeOfVariable(field.value);
      const op = VISIBILITY.operators(newType)[0];
      next.rows[index] = { field: field.value, op, value: needsValue(op) ? (["number", "integer", "rating"].includes(newType) ? 0 : "") : null };
      write(next);
    });
    const op = el("select", { "data-testid": `condition-op-${index}`, "aria-label": t("Operator") }, VISIBILITY.operators(type).map((o) => el("option", { value: o, text: t(VISIBILITY.label(o)), selected: o === item.op })));
    op.addEventListener("change", () => {
      const next = structuredClone(parsed);
      next.rows[index] = { ...item, op: op.value, value: needsValue(op.value) ? item.value : null };
      write(next);
    });
    let value = null;
    if (needsValue(item.op)) {
      const meta = fields.find((f) => PREFIX + f.key === item.field);
      if (meta?.options) {
        value = el("select", { "data-testid": `condition-value-${index}`, "aria-label": t("Value") }, el("option", { value: "", text: "—" }), meta.options.map((o) => el("option", { value: o.value, text: o.label, selected: o.value === item.value })));
      } else {
        value = el("input", { type: "text", "data-testid": `condition-value-${index}`, "aria-label": t("Value") });
        value.value = showValue(item.value);
      }
      value.addEventListener("change", () => {
        const next = structuredClone(parsed);
        next.rows[index] = { ...item, value: literal(type, value.value) };
        write(next);
      });
    }
    const remove = el("button", { type: "button", class: "icon-button", "data-testid": `condition-remove-${index}`, "aria-label": t("Remove this condition"), text: "×" });
    remove.addEventListener("click", () => {
      const next = structuredClone(parsed);
      next.rows.splice(index, 1);
      write(next);
    });
    return el("div", { class: "condition-row" }, field, op, value, remove);
  });
  const join = el("select", { "data-testid": "condition-join", "aria-label": t("Join") },
    el("option", { value: "all", text: t("all of these are true"), selected: parsed.join === "all" }),
    el("option", { value: "any", text: t("any of these is true"), selected: parsed.join === "any" }));
  join.addEventListener("change", () => write({ ...parsed, join: join.value }));
  const add = el("button", { type: "button", class: "quiet", "data-testid": "condition-add", text: `+ ${t("Add a condition")}` });
  add.addEventListener("click", () => {
    const first = fields[0];
    if (!first) return;
    const next = structuredClone(parsed);
    const op = VISIBILITY.operators(first.type)[0];
    next.rows.push({ field: PREFIX + first.key, op, value: needsValue(op) ? (["number", "integer", "rating"].includes(first.type) ? 0 : "") : null });
    write(next);
  });
  const asJson = el("button", { type: "button", class: "quiet small", "data-testid": "condition-as-json", text: t("Edit as JSON") });
  asJson.addEventListener("click", () => {
    conditionAsJson = true;
    render();
  });
  return section(t("Condition"), "branch-condition", parsed.rows.length > 1 ? row(t("Take it when"), join, null) : null, parsed.rows.length ? null : el("p", { class: "muted small", text: t("No condition yet.") }), rows, el("div", { class: "re-buttons" }, add, asJson), errorAt(path));
}

function nodeProps(key) {
  const index = nodeIndex(key);
  const base = `/nodes/${index}`;
  const node = state.flow.nodes[index];
  const parts = [el("h2", {}, el("span", { "aria-hidden": "true", text: `${ICONS[node.type] ?? ""} ` }), t(TYPE_NAMES[node.type] ?? node.type))];
  parts.push(localeText(`${base}/label`, "step-label", t("Name")));
  if (node.type === "user_task") parts.push(...userTaskProps(key, base));
  else if (node.type === "action") {
    parts.push(row(t("Actions (as in a rule: set, create_record, notify, webhook...)"), jsonBox(`${base}/actions`, "step-actions", { optional: false }), `${base}/actions`, t("A list of rule actions; see the rules guide.")));
  } else if (node.type === "timer") {
    parts.push(row(t("Wait"), timingEditor(`${base}/wait`, "step-wait", { none: false }), `${base}/wait`));
  } else if (node.type === "wait") {
    parts.push(row(t("Until (JsonLogic over the record)"), jsonBox(`${base}/until`, "step-until"), `${base}/until`));
    parts.push(row(t("Or a message named"), textBox(`${base}/message`, "step-message"), `${base}/message`));
    parts.push(row(t("Give up after"), timingEditor(`${base}/timeout`, "step-timeout"), `${base}/timeout`));
  } else if (node.type === "subflow") {
    parts.push(row(t("Flow"), select(`${base}/flow`, "step-subflow", [{ value: "", label: "—" }, ...data.flows.filter((f) => f.key !== state.flow.key).map((f) => ({ value: f.key, label: f.label }))]), `${base}/flow`));
  }
  parts.push(el("details", { class: "advanced", open: state.errors.has(`${base}/key`) || undefined }, el("summary", { text: t("Advanced") }),
    row(t("Key"), keyBox(`${base}/key`, "step-key", (flow, old, next) => {
      const n = flow.nodes[index];
      n.key = old;
      if (!fm.renameNode(flow, old, next)) state.errors.set(`${base}/key`, t("Another step has this key."));
      else state.selected = { node: next };
    }), `${base}/key`)));
  if (node.type !== "start") {
    const remove = el("button", { type: "button", class: "danger", "data-testid": "step-remove", text: t("Remove this step") });
    remove.addEventListener("click", () => removeNode(key));
    parts.push(remove);
  }
  return parts;
}

function drawProps() {
  const sel = state.selected;
  if (sel?.node && fm.nodeOf(state.flow, sel.node)) propsNode.replaceChildren(...nodeProps(sel.node));
  else if (sel?.edge !== undefined && state.flow.edges[sel.edge]) propsNode.replaceChildren(...edgeProps(sel.edge));
  else propsNode.replaceChildren(el("p", { class: "muted", text: t("Pick a step to edit it, or + to add one.") }));
}

function render() {
  drawSettings();
  drawCanvas();
  drawProps();
  refreshChrome();
}

// -- simulate --------------------------------------------------------------------------------

const clock = new Intl.DateTimeFormat(locale, { timeZone: data.zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const KIND_WORDS = {
  node_entered: "Reached",
  task_opened: "Task opened",
  task_completed: "Task done",
  task_closed: "Task closed",
  task_reassigned: "Handed to someone else",
  task_reminded: "Reminder",
  timer_armed: "Waiting until",
  timer_cancelled: "Wait cancelled",
  actions_planned: "Actions",
  record_set: "Record changed",
  subflow_started: "Other flow started",
  instance_ended: "Flow ended",
  step_completed: "Step done",
};

async function simulate() {
  clearErrors();
  const flow = fm.compact(state.flow);
  const key = flow.key || "draft";
  const choices = {};
  for (const picker of simulationNode.querySelectorAll("[data-choice]")) choices[picker.dataset.choice] = [picker.value];
  setStatus(t("Simulating…"));
  try {
    const sample = simRecord && simForm === flow.form ? { record_id: simRecord } : { record: {} };
    const { data: result } = await api(`/api/flows/${app.key}/${encodeURIComponent(key)}/simulate`, {
      method: "POST",
      body: { flow: { ...flow, key }, ...sample, choices, default_outcome: true, horizon_days: 200 },
    });
    setStatus("");
    drawSimulation(result);
  } catch (error) {
    failed(error, t("The flow cannot be simulated yet."));
  }
}

// The sample record Simulate runs on: one the designer picks (read through their grants by
// the simulate API), else an empty record of the flow's form.
let simRecord = null;
let simForm = null;
let simPicker = null;

function samplePicker() {
  const form = state.flow.form;
  if (simPicker && simForm === form) return simPicker;
  simForm = form;
  simRecord = null;
  if (!data.picker_app?.forms?.[form]) {
    simPicker = el("p", { class: "muted small", text: t("You may not read this form's records; the simulation runs on an empty record.") });
    return simPicker;
  }
  const picker = relationPicker({ app: data.picker_app, target: form, name: "sim_record", id: "sim-record", onChange: (id) => (simRecord = id || null) });
  simPicker = el("div", { class: "re-row", "data-testid": "simulate-record" }, el("label", { for: "sim-record", text: t("On the record (else an empty one)") }), picker.element);
  return simPicker;
}

function drawSimulation(result) {
  const tasks = state.flow.nodes.filter((n) => n.type === "user_task" && (n.outcomes ?? []).length > 1);
  const pickers = tasks.map((n) => {
    const previous = simulationNode.querySelector(`[data-choice="${CSS.escape(n.key)}"]`)?.value;
    const pick = el("select", { "data-choice": n.key, "data-testid": `simulate-choice-${n.key}` }, n.outcomes.map((o) => el("option", { value: o.key, text: labelOf(o.label) || o.key, selected: o.key === previous })));
    return row(nodeName(n.key), pick, null);
  });
  const again = el("button", { type: "button", class: "quiet", "data-testid": "simulate-again", text: t("Simulate again") });
  again.addEventListener("click", simulate);
  const lines = result.timeline
    .filter((e) => e.kind !== "node_entered" || ["end", "terminate"].includes(e.type))
    .map((e) => el("li", { "data-kind": e.kind, "data-node": e.node ?? "" },
      el("time", { text: clock.format(new Date(e.at)) }), " ",
      el("strong", { text: t(KIND_WORDS[e.kind] ?? e.kind) }), " ",
      e.node ? nodeName(e.node) : "",
      e.outcome ? ` → ${e.outcome}` : "",
      e.due ? ` · ${t("due {when}", { when: clock.format(new Date(e.due)) })}` : ""));
  simulationNode.replaceChildren(
    el("h2", { text: t("Simulation") }),
    el("p", { class: "muted small", text: t("Times on the clinic's clock ({zone}); tasks take the outcome chosen below (else their first). Nothing is saved or sent.", { zone: data.zone }) }),
    samplePicker(),
    pickers.length ? el("div", { class: "sim-choices" }, pickers) : null,
    again,
    el("ol", { class: "timeline", "data-testid": "simulation-timeline" }, lines),
    el("p", { "data-testid": "simulation-status", text: t("Status: {status}", { status: t(result.status) }) }),
  );
  simulationNode.hidden = false;
}

// -- saving ----------------------------------------------------------------------------------

function setStatus(text, kind = "") {
  statusNode.textContent = text;
  statusNode.dataset.kind = kind;
}

function showErrors(errors, heading) {
  state.errors = new Map();
  const general = [];
  for (const error of errors) {
    if (error.in === "app") general.push(error);
    else state.errors.set(error.path || "", error.message);
  }
  // a problem inside a step selects that step so it is seen at its control
  const first = [...state.errors.keys()].map((p) => /^\/nodes\/(\d+)/.exec(p)).find(Boolean);
  const firstEdge = [...state.errors.keys()].map((p) => /^\/edges\/(\d+)/.exec(p)).find(Boolean);
  if (first && state.flow.nodes[Number(first[1])]) state.selected = { node: state.flow.nodes[Number(first[1])].key };
  else if (firstEdge && state.flow.edges[Number(firstEdge[1])]) state.selected = { edge: Number(firstEdge[1]) };
  render();
  const unplaced = [];
  for (const [path, message] of state.errors) {
    if (root.querySelector(`[data-error-for="${CSS.escape(path)}"]`)) continue;
    const parts = splitPointer(path);
    let placed = false;
    while (parts.length) {
      parts.pop();
      const target = root.querySelector(`[data-path="${CSS.escape(pointer(...parts))}"]`);
      if (target) {
        target.after(el("span", { class: "field-error", role: "alert", "data-error-for": path, text: message }));
        placed = true;
        break;
      }
    }
    if (!placed) unplaced.push({ path, message });
  }
  const listed = [...general, ...unplaced].map((e) => {
    const step = /^\/nodes\/(\d+)/.exec(e.path || "");
    const where = step && state.flow.nodes[Number(step[1])] ? nodeName(state.flow.nodes[Number(step[1])].key) : e.path || "/";
    return el("li", { text: `${where}: ${e.message}` });
  });
  problemsNode.replaceChildren(el("p", { text: heading ?? t("The flow was not saved: {n} problem(s).", { n: errors.length }) }), listed.length ? el("ul", {}, listed) : null);
  problemsNode.hidden = false;
}

function clearErrors() {
  state.errors = new Map();
  problemsNode.hidden = true;
  problemsNode.replaceChildren();
}

function localProblems() {
  const errors = fm.localProblems(state.flow).map((p) => ({ ...p, message: t(p.message) }));
  if (state.isNew && !/^[a-z][a-z0-9_]*$/.test(state.flow.key ?? "")) {
    errors.push({ path: "/key", message: state.flow.key ? t("Use lower-case letters, digits and _, starting with a letter.") : t("Give the flow a key.") });
  }
  return errors;
}

function planBody(plan) {
  const flows = plan.flows ?? {};
  const lines = [];
  for (const [kind, text] of [["added", "Added"], ["changed", "Changed"], ["removed", "Removed"]]) {
    if (flows[kind]?.length) lines.push(el("li", { text: `${t(text)}: ${flows[kind].join(", ")}` }));
  }
  if (!lines.length) lines.push(el("li", { text: t("The flow is checked and can be saved.") }));
  return [
    el("ul", { "data-testid": "flow-plan-lines" }, lines),
    el("p", { class: "muted small", text: t("Running instances keep the version they started with; new ones take this one. Saving makes a new revision of the app ({revision} now); an admin can roll it back.", { revision: state.revision }) }),
  ];
}

async function save() {
  checkpoint();
  clearErrors();
  const local = localProblems();
  if (local.length) {
    showErrors(local);
    return;
  }
  const flow = fm.compact(state.flow);
  const url = `/api/apps/${app.key}/flows/${encodeURIComponent(flow.key)}`;
  const headers = { "If-Match": `"${state.revision}"` };
  setStatus(t("Checking…"));
  let plan;
  try {
    ({ data: plan } = await api(`${url}?dry_run=true`, { method: "PUT", body: flow, headers }));
  } catch (error) {
    return failed(error);
  }
  setStatus("");
  root.querySelector("[data-plan-body]").replaceChildren(...planBody(plan));
  planDialog.showModal();
  root.querySelector("[data-testid=flow-confirm]").focus();
  const confirmed = await new Promise((resolve) => {
    const confirm = root.querySelector("[data-testid=flow-confirm]");
    const done = (value) => {
      confirm.removeEventListener("click", onConfirm);
      planDialog.removeEventListener("close", onClose);
      resolve(value);
    };
    const onConfirm = () => {
      planDialog.close("confirm");
      done(true);
    };
    const onClose = () => done(planDialog.returnValue === "confirm");
    confirm.addEventListener("click", onConfirm);
    planDialog.addEventListener("close", onClose);
  });
  if (!confirmed) {
    setStatus(t("Not saved."));
    return;
  }
  setStatus(t("Saving…"));
  try {
    const { data: result } = await api(url, { method: "PUT", body: flow, headers });
    state.revision = result.revision;
    savedText = JSON.stringify(flow);
    if (state.isNew) {
      state.isNew = false;
      root.querySelector("[data-testid=flow-delete]").hidden = false;
      history.replaceState(null, "", `/designer/${app.key}/flows/${encodeURIComponent(flow.key)}${flow.key === "new" ? "?existing=1" : ""}`);
    }
    render();
    setStatus(t("Saved (revision {revision}).", { revision: result.revision }), "ok");
  } catch (error) {
    failed(error);
  }
}

function failed(error, heading) {
  if (error instanceof ApiError && error.status === 422) {
    showErrors(error.errors.length ? error.errors : [{ path: "", message: error.message }], heading);
    setStatus(t("Not saved."), "error");
  } else if (error instanceof ApiError && error.status === 412) {
    setStatus(t("Someone saved this app meanwhile; reload the page to see their changes (yours are lost on reload)."), "error");
  } else {
    setStatus(error.message, "error");
  }
}

async function deleteFlow() {
  if (state.isNew) return;
  const key = state.flow.key;
  if (!window.confirm(t("Delete the flow {flow}? An admin can bring it back by rolling the app back.", { flow: key }))) return;
  setStatus(t("Deleting…"));
  try {
    await api(`/api/apps/${app.key}/flows/${encodeURIComponent(key)}`, { method: "DELETE", headers: { "If-Match": `"${state.revision}"` } });
    savedText = JSON.stringify(fm.compact(state.flow));
    window.location.assign(`/designer/${app.key}/flows`);
  } catch (error) {
    failed(error);
  }
}

// -- keyboard and the unsaved-changes guard --------------------------------------------------

root.querySelector("[data-testid=flow-undo]").addEventListener("click", undo);
root.querySelector("[data-testid=flow-redo]").addEventListener("click", redo);
root.querySelector("[data-testid=flow-save]").addEventListener("click", save);
root.querySelector("[data-testid=flow-simulate]").addEventListener("click", simulate);
root.querySelector("[data-testid=flow-delete]").addEventListener("click", deleteFlow);
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey)) return;
  const key = event.key.toLowerCase();
  if (key === "s") {
    event.preventDefault();
    save();
  } else if (key === "z" && !event.shiftKey && !event.target.matches?.("input, textarea")) {
    event.preventDefault();
    undo();
  } else if ((key === "z" && event.shiftKey) || key === "y") {
    if (event.target.matches?.("input, textarea")) return;
    event.preventDefault();
    redo();
  }
});
window.addEventListener("beforeunload", (event) => {
  if (isDirty()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

render();
if (data.instance) watchInstance(data.instance);
