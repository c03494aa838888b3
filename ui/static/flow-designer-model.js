// The flow designer's model: the flow is kept exactly as the app's JSON writes it (docs/flows.md:
// `nodes` and `edges`), and these pure helpers lay it out as a vertical chain of steps with
// branch blocks, and change it. No DOM, no imports (tests/ui/flow_designer_model.test.mjs).
//
// Invariants:
// - the graph is the truth; the layout is derived from it on every draw, so any graph the
//   engine takes (loops, shared tails, outcomes routed back) can be shown and edited: an edge
//   that does not fit the chain-of-blocks picture is drawn as a "go to <step>" at the end of
//   its branch, never dropped;
// - a block's branches meet again at the split's immediate post-dominator (the first step every
//   path from the split must pass); branches that never meet end in their own end step;
// - every change keeps the graph connected: a step is inserted on an edge (the edge now enters
//   it, a new edge leaves it for the old target), a step removed hands its incoming edges to its
//   one successor;
// - `compact(flow)` is what is saved: empty lists and defaults the format fills in are left out,
//   so a flow rebuilt in the designer equals the shipped one, key for key.

export const STEP_TYPES = ["user_task", "action", "timer", "wait", "subflow", "end", "terminate"];
export const BLOCK_TYPES = ["exclusive", "parallel", "inclusive"];
export const GATEWAYS = new Set(BLOCK_TYPES);

const clone = (value) => JSON.parse(JSON.stringify(value));

/** The edges leaving `key`, with their indices in `flow.edges`. */
export function outgoing(flow, key) {
  const out = [];
  flow.edges.forEach((edge, index) => {
    if (edge.from === key) out.push({ edge, index });
  });
  return out;
}

export function incoming(flow, key) {
  const out = [];
  flow.edges.forEach((edge, index) => {
    if (edge.to === key) out.push({ edge, index });
  });
  return out;
}

export function nodeOf(flow, key) {
  return flow.nodes.find((node) => node.key === key) || null;
}

export function startOf(flow) {
  return flow.nodes.find((node) => node.type === "start") || null;
}

/** For every node, its immediate post-dominator (null: only the exit follows). */
export function postDominators(flow) {
  const keys = flow.nodes.map((node) => node.key);
  const EXIT = "\u0000exit";
  const succ = new Map(keys.map((k) => [k, []]));
  for (const edge of flow.edges) if (succ.has(edge.from) && succ.has(edge.to)) succ.get(edge.from).push(edge.to);
  for (const k of keys) if (!succ.get(k).length) succ.get(k).push(EXIT);
  const all = new Set([...keys, EXIT]);
  const dom = new Map(keys.map((k) => [k, new Set(all)]));
  dom.set(EXIT, new Set([EXIT]));
  let changed = true;
  while (changed) {
    changed = false;
    for (const k of keys) {
      let meet = null;
      for (const s of succ.get(k)) {
        const ds = dom.get(s);
        meet = meet === null ? new Set(ds) : new Set([...meet].filter((x) => ds.has(x)));
      }
      meet = meet || new Set();
      meet.add(k);
      if (meet.size !== dom.get(k).size) {
        dom.set(k, meet);
        changed = true;
      }
    }
  }
  // the immediate one: the strict post-dominator that every other strict one post-dominates
  const ipdom = new Map();
  for (const k of keys) {
    const strict = [...dom.get(k)].filter((x) => x !== k && x !== EXIT);
    const immediate = strict.find((c) => strict.every((o) => o === c || dom.get(c).has(o))) ?? null;
    ipdom.set(k, immediate);
  }
  return ipdom;
}

/**
 * The flow as a chain of items, for drawing:
 *   {kind: "step", key, edge}            a step; `edge`: the index of its one way out (or null)
 *   {kind: "block", key, branches, merge} a step with several ways out; each branch is
 *                                         {edge, chain}; they meet again at `merge` (or never)
 *   {kind: "goto", target, edge}          the edge goes on to a step drawn elsewhere
 */
export function layout(flow) {
  const start = startOf(flow);
  if (!start) return [];
  const ipdom = postDominators(flow);
  const placed = new Set();
  const chain = (from, stop, viaEdge) => {
    const items = [];
    let key = from;
    let edge = viaEdge;
    while (key !== null && key !== undefined && key !== stop) {
      if (placed.has(key) || !nodeOf(flow, key)) {
        items.push({ kind: "goto", target: key, edge });
        break;
      }
      placed.add(key);
      const outs = outgoing(flow, key);
      if (outs.length <= 1) {
        items.push({ kind: "step", key, edge: outs.length ? outs[0].index : null });
        edge = outs.length ? outs[0].index : null;
        key = outs.length ? outs[0].edge.to : null;
        continue;
      }
      const merge = ipdom.get(key);
      const block = { kind: "block", key, merge, branches: [] };
      items.push(block);
      for (const { edge: e, index } of outs) {
        block.branches.push({ edge: index, chain: e.to === merge ? [] : chain(e.to, merge, index) });
      }
      key = merge;
      edge = null;
    }
    return items;
  };
  const items = chain(start.key, null, null);
  // steps no path from the start reaches are drawn too (the check will say so)
  for (const node of flow.nodes) {
    if (!placed.has(node.key)) items.push(...chain(node.key, null, null).map((item) => ({ ...item, unreachable: true })));
  }
  return items;
}

/** A key not yet used by a node: `base`, `base_2`, ... */
export function freshKey(flow, base) {
  const used = new Set(flow.nodes.map((node) => node.key));
  const stem = (base || "step").replace(/[^a-z0-9_]/g, "_").replace(/^[^a-z]+/, "") || "step";
  if (!used.has(stem)) return stem;
  for (let n = 2; ; n++) if (!used.has(`${stem}_${n}`)) return `${stem}_${n}`;
}

/** A new node of `type`, with what the format requires filled in blankly. */
export function newNode(flow, type, label) {
  const key = freshKey(flow, type === "user_task" ? "task" : type);
  const node = { type, key };
  if (label) node.label = label;
  if (type === "user_task") Object.assign(node, { title: "", assignee: { role: "" } });
  if (type === "action") node.actions = [];
  if (type === "timer") node.wait = { after: "P1D" };
  if (type === "wait") node.until = null;
  if (type === "subflow") node.flow = "";
  return node;
}

/** An empty flow: a start and an end. */
export function emptyFlow(form) {
  return {
    key: "",
    form,
    start: { roles: [] },
    nodes: [
      { type: "start", key: "start" },
      { type: "end", key: "end" },
    ],
    edges: [{ from: "start", to: "end" }],
  };
}

/** Insert `node` on edge `index` (a -> b becomes a -> node -> b). Answers the node's key. */
export function insertStep(flow, index, node) {
  const edge = flow.edges[index];
  const target = edge.to;
  flow.nodes.push(node);
  edge.to = node.key;
  if (node.type !== "end" && node.type !== "terminate") flow.edges.push({ from: node.key, to: target });
  else if (!incoming(flow, target).length) removeUnreachable(flow);
  return node.key;
}

/** Insert a block on edge `index`: a split with two branches meeting again where the edge went
 * (a parallel or inclusive block gets its join gateway too). Answers the split's key. */
export function insertBlock(flow, index, type, labels = {}) {
  const edge = flow.edges[index];
  const target = edge.to;
  const split = { type, key: freshKey(flow, type === "parallel" ? "together" : "choose") };
  if (labels.split) split.label = labels.split;
  flow.nodes.push(split);
  edge.to = split.key;
  let meet = target;
  if (type !== "exclusive") {
    const join = { type, key: freshKey(flow, `${split.key}_join`) };
    if (labels.join) join.label = labels.join;
    flow.nodes.push(join);
    flow.edges.push({ from: join.key, to: target });
    meet = join.key;
  }
  if (type === "parallel") {
    flow.edges.push({ from: split.key, to: meet }, { from: split.key, to: meet });
  } else {
    flow.edges.push({ from: split.key, to: meet, if: null }, { from: split.key, to: meet, default: true });
  }
  return split.key;
}

/** One more branch out of a split, going straight to where its branches meet. */
export function addBranch(flow, splitKey) {
  const node = nodeOf(flow, splitKey);
  const merge = postDominators(flow).get(splitKey);
  const target = merge ?? outgoing(flow, splitKey)[0]?.edge.to;
  const edge = { from: splitKey, to: target };
  if (node.type !== "parallel" && GATEWAYS.has(node.type)) edge.if = null;
  // a new branch goes before the default one (the default is taken last)
  const defaultAt = flow.edges.findIndex((e) => e.from === splitKey && e.default);
  if (defaultAt >= 0) flow.edges.splice(defaultAt, 0, edge);
  else flow.edges.push(edge);
}

/** The keys of the steps drawn in a branch (not those it only goes to). */
function chainKeys(items, out = []) {
  for (const item of items) {
    if (item.kind === "step") out.push(item.key);
    if (item.kind === "block") {
      out.push(item.key);
      for (const branch of item.branches) chainKeys(branch.chain, out);
    }
  }
  return out;
}

/** Remove a branch (edge `index` out of a split) with the steps drawn in it. */
export function removeBranch(flow, index) {
  const items = findBranch(layout(flow), index);
  const keys = new Set(items ? chainKeys(items) : []);
  flow.edges.splice(index, 1);
  dropNodes(flow, keys);
}

function findBranch(items, index) {
  for (const item of items) {
    if (item.kind !== "block") continue;
    for (const branch of item.branches) {
      if (branch.edge === index) return branch.chain;
      const inner = findBranch(branch.chain, index);
      if (inner) return inner;
    }
  }
  return null;
}

function dropNodes(flow, keys) {
  flow.nodes = flow.nodes.filter((node) => !keys.has(node.key));
  flow.edges = flow.edges.filter((edge) => !keys.has(edge.from) && !keys.has(edge.to));
}

/** Remove what no path from the start reaches any more (after an end was put in a chain). */
export function removeUnreachable(flow) {
  const start = startOf(flow);
  if (!start) return;
  const seen = new Set([start.key]);
  const queue = [start.key];
  while (queue.length) {
    const key = queue.shift();
    for (const { edge } of outgoing(flow, key)) {
      if (!seen.has(edge.to)) {
        seen.add(edge.to);
        queue.push(edge.to);
      }
    }
  }
  dropNodes(flow, new Set(flow.nodes.map((n) => n.key).filter((k) => !seen.has(k))));
}

/**
 * Remove a step: its incoming edges go to its one successor. A block (a split) goes with its
 * branches and their steps, its join too. The start cannot be removed; an end only when
 * another way out remains for what led to it.
 */
export function removeStep(flow, key) {
  const node = nodeOf(flow, key);
  if (!node || node.type === "start") return false;
  const outs = outgoing(flow, key);
  if (outs.length > 1) {
    const block = findBlock(layout(flow), key);
    const inner = new Set(block ? block.branches.flatMap((b) => chainKeys(b.chain)) : []);
    let next = block ? block.merge : null;
    const nextNode = next ? nodeOf(flow, next) : null;
    if (nextNode && GATEWAYS.has(nextNode.type) && nextNode.type === node.type && incoming(flow, next).every((e) => inner.has(e.edge.from) || e.edge.from === key)) {
      // the block's own join goes too
      inner.add(next);
      next = outgoing(flow, next)[0]?.edge.to ?? null;
    }
    if (next === null) return false;
    for (const { edge } of incoming(flow, key)) edge.to = next;
    inner.add(key);
    dropNodes(flow, inner);
    return true;
  }
  if (!outs.length) {
    // an end: what led to it must then lead elsewhere; refuse
    return false;
  }
  const next = outs[0].edge.to;
  for (const { edge } of incoming(flow, key)) edge.to = next;
  dropNodes(flow, new Set([key]));
  return true;
}

function findBlock(items, key) {
  for (const item of items) {
    if (item.kind === "block") {
      if (item.key === key) return item;
      for (const branch of item.branches) {
        const inner = findBlock(branch.chain, key);
        if (inner) return inner;
      }
    }
  }
  return null;
}

/** Move a plain step (one way in is not required; one way out is) onto edge `index`. */
export function moveStep(flow, key, index) {
  const node = nodeOf(flow, key);
  if (!node || outgoing(flow, key).length !== 1) return false;
  const edge = flow.edges[index];
  if (!edge || edge.from === key || edge.to === key) return false;
  const target = edge;
  if (!removeStep(flow, key)) return false;
  const at = flow.edges.indexOf(target);
  flow.nodes.push(node);
  const to = target.to;
  target.to = key;
  flow.edges.splice(at + 1, 0, { from: key, to });
  return true;
}

/** Give a node a new key, and every edge, outcome jump and cancel region that names it. */
export function renameNode(flow, from, to) {
  if (!to || from === to || nodeOf(flow, to)) return false;
  for (const node of flow.nodes) {
    if (node.key === from) node.key = to;
    for (const outcome of node.outcomes || []) if (outcome.to === from) outcome.to = to;
    if (Array.isArray(node.region)) node.region = node.region.map((k) => (k === from ? to : k));
  }
  for (const edge of flow.edges) {
    if (edge.from === from) edge.from = to;
    if (edge.to === from) edge.to = to;
  }
  return true;
}

/**
 * Where each outcome of a user task goes: null for "the next step" (the edge without an
 * outcome), else a node key. When any outcome is sent elsewhere, every outcome gets its own
 * edge (as the shipped flows write them); when none is, one plain edge leaves the task.
 */
export function outcomeRoutes(flow, key) {
  const node = nodeOf(flow, key);
  const outs = outgoing(flow, key);
  const plain = outs.find((o) => !o.edge.outcome && !("if" in o.edge) && !o.edge.default);
  const routes = {};
  for (const outcome of node.outcomes || []) {
    const own = outs.find((o) => o.edge.outcome === outcome.key);
    routes[outcome.key] = own ? own.edge.to : plain ? plain.edge.to : null;
  }
  return routes;
}

/** Send `outcome` of user task `key` to `target` (a node key). */
export function routeOutcome(flow, key, outcome, target) {
  const node = nodeOf(flow, key);
  const routes = outcomeRoutes(flow, key);
  routes[outcome] = target;
  const outs = outgoing(flow, key);
  const next = outs.find((o) => !o.edge.outcome)?.edge.to ?? outs[0]?.edge.to;
  const targets = new Set(Object.values(routes).map((t) => t ?? next));
  // keep the edges' labels where the same route stays
  const labels = new Map(outs.map((o) => [`${o.edge.outcome ?? ""}>${o.edge.to}`, o.edge.label]));
  flow.edges = flow.edges.filter((e) => e.from !== key);
  if (targets.size <= 1) {
    flow.edges.push({ from: key, to: [...targets][0] ?? next });
    return;
  }
  for (const o of node.outcomes || []) {
    const to = routes[o.key] ?? next;
    const edge = { from: key, to, outcome: o.key };
    const label = labels.get(`${o.key}>${to}`);
    if (label) edge.label = label;
    flow.edges.push(edge);
  }
}

function isBlank(value) {
  if (value === undefined || value === null || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object") return Object.keys(value).length === 0;
  return false;
}

const NODE_DEFAULTS = { mode: "claim", returnable: false };
const OUTCOME_DEFAULTS = { veto: false, comment: "optional" };

function compactLabel(value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (v !== "" && v !== null && v !== undefined) out[k] = v;
    return Object.keys(out).length ? out : undefined;
  }
  return value === "" ? undefined : value;
}

function compactNode(node) {
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key in NODE_DEFAULTS && value === NODE_DEFAULTS[key]) continue;
    if (["label", "title", "description"].includes(key)) {
      const text = compactLabel(value);
      if (text !== undefined) out[key] = text;
      continue;
    }
    if (key === "outcomes") {
      const outcomes = value.map((o) => {
        const c = {};
        for (const [k, v] of Object.entries(o)) {
          if (k in OUTCOME_DEFAULTS && v === OUTCOME_DEFAULTS[k]) continue;
          if (k === "label") {
            const text = compactLabel(v);
            if (text !== undefined) c.label = text;
            continue;
          }
          if (!isBlank(v)) c[k] = v;
        }
        return c;
      });
      if (outcomes.length) out.outcomes = outcomes;
      continue;
    }
    if (key === "assignee") {
      const a = {};
      for (const [k, v] of Object.entries(value || {})) if (!isBlank(v) && v !== false) a[k] = v;
      out.assignee = a;
      continue;
    }
    if (key === "escalations") {
      const list = value.map((e) => Object.fromEntries(Object.entries(e).filter(([, v]) => !isBlank(v))));
      if (list.length) out.escalations = list;
      continue;
    }
    if (key === "until" && value === null) continue;
    if (isBlank(value) && key !== "title") continue;
    out[key] = value;
  }
  return out;
}

function compactEdge(edge) {
  const out = {};
  for (const [key, value] of Object.entries(edge)) {
    if (key === "default" && !value) continue;
    if (key === "label") {
      const text = compactLabel(value);
      if (text !== undefined) out.label = text;
      continue;
    }
    if (key === "if" && value === null) {
      out.if = null; // kept: the check points at the branch that still needs a condition
      continue;
    }
    if (isBlank(value)) continue;
    out[key] = value;
  }
  return out;
}

/** The flow as it is saved: defaults and blanks left out. */
export function compact(flow) {
  const out = {};
  for (const [key, value] of Object.entries(flow)) {
    if (key === "nodes") out.nodes = value.map(compactNode);
    else if (key === "edges") out.edges = value.map(compactEdge);
    else if (key === "start") {
      const start = {};
      if (value?.roles?.length) start.roles = value.roles;
      if (!isBlank(value?.when)) start.when = value.when;
      out.start = start;
    } else if (key === "single" && value === true) continue;
    else if (["label", "description"].includes(key)) {
      const text = compactLabel(value);
      if (text !== undefined) out[key] = text;
    } else if (!isBlank(value)) out[key] = value;
  }
  if (out.start && !Object.keys(out.start).length) delete out.start;
  return out;
}

/** Problems the designer can tell before the server does, as {path, message} (pointers into the
 * flow, as the server's). Messages are in English; the caller translates them. */
export function localProblems(flow) {
  const problems = [];
  flow.nodes.forEach((node, i) => {
    if (node.type === "user_task") {
      const a = node.assignee || {};
      if (!a.role && isBlank(a.user) && !a.field && !a.starter && !a.previous) {
        problems.push({ path: `/nodes/${i}/assignee`, message: "Choose who does this step" });
      }
      const title = node.title;
      if (isBlank(title) || (typeof title === "object" && !Object.values(title).some((v) => v))) {
        problems.push({ path: `/nodes/${i}/title`, message: "Give the task a title" });
      }
    }
    if (node.type === "action" && !(node.actions || []).length) {
      problems.push({ path: `/nodes/${i}/actions`, message: "Add at least one action" });
    }
  });
  flow.edges.forEach((edge, i) => {
    const from = nodeOf(flow, edge.from);
    if (from && (from.type === "exclusive" || from.type === "inclusive") && !edge.default && (edge.if === null || edge.if === undefined)) {
      problems.push({ path: `/edges/${i}/if`, message: "Set the branch's condition (or make it the default)" });
    }
  });
  return problems;
}

/** The layout's steps in drawing order (for keyboard moves between them). */
export function stepOrder(items, out = []) {
  for (const item of items) {
    if (item.kind === "step") out.push(item.key);
    if (item.kind === "block") {
      out.push(item.key);
      for (const branch of item.branches) stepOrder(branch.chain, out);
    }
  }
  return out;
}

export { clone };
