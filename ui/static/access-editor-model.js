// The access screen's model (/designer/{app}/{form}/access): a form's grants as the app writes
// them (docs/permissions.md) seen per role — which actions, which rows (a row filter built with
// the condition builder, conditions.js), which fields hidden or read-only — and back.
//
// Invariants:
// - `toGrants(load(grants))` gives back the same grants when each role is named by one grant
//   (roles with the same settings share one grant, in the place of the first of them);
// - a role named by several grants of the form, or a grant with something the screen does not
//   show, is "kept": its grants are saved exactly as written (the screen offers them as JSON);
// - a row filter is shown in the builder only if the builder writes it back exactly; any
//   other stays JSON. `$user.<attribute>` values are offered beside typed values (only for
//   "is" / "is not", the comparisons a row filter can make with them in SQL).
// Pure functions, no DOM (tests/ui/access_editor_model.test.mjs runs this on Node).

import { FILTER, buildCondition, parseCondition } from "./conditions.js";

/** The actions in the order the screen's columns show them. */
export const ACTIONS = ["read", "create", "update", "delete", "export"];
/** The actions in the order a grant writes them (the clinic's app.json). */
const WRITTEN = ["create", "read", "update", "delete", "export"];
const KNOWN = new Set(["form", "roles", "actions", "row_filter", "hidden_fields", "read_only_fields"]);

/** Field types a row filter can test in SQL (docs/filters.md). */
export const FILTERABLE = new Set([
  "text", "textarea", "email", "phone", "url", "number", "integer", "date", "datetime", "time",
  "select", "multiselect", "boolean", "relation", "rating", "richtext",
]);

/**
 * The grants of one form, per role: {roles: Map(role -> entry), kept: [{grant, at}], at: Map}.
 * An entry is {actions: Set, rowFilter, hidden: [], readOnly: []}; `at` is where the role's
 * grant stood (so it is written back in its place).
 */
export function load(grants, roleKeys) {
  const count = new Map();
  for (const grant of grants) for (const role of grant.roles || []) count.set(role, (count.get(role) || 0) + 1);
  const odd = (grant) => Object.keys(grant).some((key) => !KNOWN.has(key)) || !Array.isArray(grant.roles) || !Array.isArray(grant.actions);
  // grants kept as written: those naming a role that has several, or that the screen cannot show
  const keptRoles = new Set();
  let grew = true;
  while (grew) {
    grew = false;
    for (const grant of grants) {
      const roles = Array.isArray(grant.roles) ? grant.roles : [];
      if (odd(grant) || roles.some((r) => count.get(r) > 1 || keptRoles.has(r))) {
        for (const r of roles) {
          if (!keptRoles.has(r)) {
            keptRoles.add(r);
            grew = true;
          }
        }
      }
    }
  }
  const model = { roles: new Map(), kept: [], at: new Map(), keptRoles };
  grants.forEach((grant, index) => {
    const roles = Array.isArray(grant.roles) ? grant.roles : [];
    if (odd(grant) || roles.some((r) => keptRoles.has(r))) {
      model.kept.push({ grant, at: index });
      return;
    }
    for (const role of roles) {
      model.at.set(role, index);
      model.roles.set(role, {
        actions: new Set(grant.actions),
        rowFilter: grant.row_filter ?? undefined,
        hidden: [...(grant.hidden_fields || [])],
        readOnly: [...(grant.read_only_fields || [])],
      });
    }
  });
  for (const role of roleKeys) if (!model.roles.has(role) && !keptRoles.has(role)) model.roles.set(role, emptyEntry());
  return model;
}

export function emptyEntry() {
  return { actions: new Set(), rowFilter: undefined, hidden: [], readOnly: [] };
}

function grantOf(form, roles, entry) {
  const grant = { form, roles, actions: WRITTEN.filter((a) => entry.actions.has(a)) };
  if (entry.rowFilter !== undefined) grant.row_filter = entry.rowFilter;
  if (entry.hidden.length) grant.hidden_fields = [...entry.hidden];
  const readOnly = entry.readOnly.filter((f) => !entry.hidden.includes(f));
  if (readOnly.length) grant.read_only_fields = readOnly;
  return grant;
}

function sameKey(entry) {
  return JSON.stringify([
    WRITTEN.filter((a) => entry.actions.has(a)),
    entry.rowFilter ?? null,
    [...entry.hidden].sort(),
    entry.readOnly.filter((f) => !entry.hidden.includes(f)).sort(),
  ]);
}

/** The grants to save: one per group of roles with the same settings (roles without any
 * action have none), and the kept grants, each in the place it had. */
export function toGrants(model, form, roleKeys) {
  const placed = [];
  const groups = new Map();
  roleKeys.forEach((role, position) => {
    const entry = model.roles.get(role);
    if (!entry || !entry.actions.size) return;
    const key = sameKey(entry);
    const at = model.at.has(role) ? model.at.get(role) : 10000 + position;
    const group = groups.get(key);
    if (group) {
      group.roles.push(role);
      group.at = Math.min(group.at, at);
    } else {
      groups.set(key, { roles: [role], entry, at });
    }
  });
  for (const group of groups.values()) placed.push({ at: group.at, grant: grantOf(form, group.roles, group.entry) });
  for (const { grant, at } of model.kept) placed.push({ at, grant });
  placed.sort((a, b) => a.at - b.at);
  return placed.map((p) => p.grant);
}

/** Role -> the actions the app's "*" grants give it on every form. */
export function sharedActions(shared) {
  const given = new Map();
  for (const grant of shared) {
    for (const role of grant.roles || []) {
      const set = given.get(role) || new Set();
      for (const action of grant.actions || []) set.add(action);
      given.set(role, set);
    }
  }
  return given;
}

// -- row filters -----------------------------------------------------------------------------

// A `$user.<attribute>` value travels through the builder as this marked string.
const MARK = "\u0000user:";

function isUserVar(node) {
  return node && typeof node === "object" && !Array.isArray(node) && Object.keys(node).length === 1 &&
    typeof node.var === "string" && node.var.startsWith("$user.");
}

function mask(node) {
  if (isUserVar(node)) return MARK + node.var;
  if (Array.isArray(node)) return node.map(mask);
  if (node && typeof node === "object") return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, mask(v)]));
  return node;
}

function unmask(node) {
  if (typeof node === "string" && node.startsWith(MARK)) return { var: node.slice(MARK.length) };
  if (Array.isArray(node)) return node.map(unmask);
  if (node && typeof node === "object") return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, unmask(v)]));
  return node;
}

/** Operators a row of the builder offers for a field of `type` (and a `$user` value for "is"
 * and "is not" only). */
export function operators(type) {
  return FILTER.operators(type);
}

export const takesUser = (op) => op === "==" || op === "!=";

/** The row filter as {join, rows: [{field, op, value, user}]} (user: "$user.branch" or
 * null), or null when the builder could not write it back exactly. */
export function parseRowFilter(rule, typeOf) {
  if (rule === undefined || rule === null) return { join: "all", rows: [] };
  const parsed = parseCondition(mask(rule), FILTER, typeOf);
  if (parsed === null) return null;
  const rows = parsed.rows.map((row) => {
    const user = typeof row.value === "string" && row.value.startsWith(MARK) ? row.value.slice(MARK.length) : null;
    if (user && !takesUser(row.op)) return null;
    return { field: row.field, op: row.op, value: user ? null : row.value, user };
  });
  if (rows.includes(null)) return null;
  const shown = { join: parsed.join, rows };
  return JSON.stringify(buildRowFilter(shown)) === JSON.stringify(rule) ? shown : null;
}

/** The JsonLogic the builder's rows write (undefined: no condition, every row). */
export function buildRowFilter({ join, rows }) {
  const marked = rows.map((row) => ({ ...row, value: row.user && takesUser(row.op) ? MARK + row.user : row.value }));
  const built = buildCondition({ join, rows: marked });
  return built === undefined ? undefined : unmask(built);
}

/** Where a server error's pointer (`/2/hidden_fields/0`) lands: the grant's index. */
export function grantIndex(path) {
  const match = /^\/(\d+)(\/|$)/.exec(path || "");
  return match ? Number(match[1]) : null;
}
