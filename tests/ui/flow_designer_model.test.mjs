// The flow designer's model (ui/static/flow-designer-model.js): every shipped flow lays out with
// every step drawn once, saves back unchanged, and the designer's changes keep the graph whole.
// Run with `node --test tests/ui/` (test_logic_js.py).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  addBranch,
  compact,
  emptyFlow,
  insertBlock,
  insertStep,
  layout,
  localProblems,
  moveStep,
  newNode,
  outgoing,
  postDominators,
  removeBranch,
  removeStep,
  renameNode,
  routeOutcome,
  stepOrder,
} from "../../ui/static/flow-designer-model.js";

const APP = JSON.parse(readFileSync(new URL("../../builtin_apps/clinic_crm/app.json", import.meta.url), "utf8"));
const FLOWS = Object.fromEntries(APP.flows.map((f) => [f.key, f]));
const copy = (v) => JSON.parse(JSON.stringify(v));

/** Every key drawn as a step or block, and every goto target. */
function drawn(items, steps = [], gotos = []) {
  for (const item of items) {
    if (item.kind === "step") steps.push(item.key);
    if (item.kind === "goto") gotos.push(item.target);
    if (item.kind === "block") {
      steps.push(item.key);
      for (const b of item.branches) drawn(b.chain, steps, gotos);
    }
  }
  return { steps, gotos };
}

/** From the start, every edge's target is reachable and every node has a way to an end. */
function connected(flow) {
  const start = flow.nodes.find((n) => n.type === "start").key;
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length) {
    for (const { edge } of outgoing(flow, queue.shift())) {
      if (!seen.has(edge.to)) {
        seen.add(edge.to);
        queue.push(edge.to);
      }
    }
  }
  const keys = new Set(flow.nodes.map((n) => n.key));
  return flow.nodes.every((n) => seen.has(n.key)) && flow.edges.every((e) => keys.has(e.from) && keys.has(e.to));
}

describe("layout: the shipped flows", () => {
  for (const [key, flow] of Object.entries(FLOWS)) {
    test(`${key}: every step drawn exactly once; every other edge a go-to`, () => {
      const { steps, gotos } = drawn(layout(flow));
      assert.deepEqual([...steps].sort(), flow.nodes.map((n) => n.key).sort());
      for (const target of gotos) assert.ok(steps.includes(target), target);
    });
    test(`${key}: saves back as shipped`, () => {
      assert.deepEqual(compact(copy(flow)), flow);
    });
  }

  test("the complaint's review sends 'reject' back to handling as a go-to", () => {
    const items = layout(FLOWS.complaint);
    const review = items.find((i) => i.key === "review");
    assert.equal(review.kind, "block");
    assert.equal(review.merge, "tell_patient");
    const chains = review.branches.map((b) => b.chain);
    assert.deepEqual(chains[0], []);
    assert.deepEqual(chains[1].map((i) => [i.kind, i.target]), [["goto", "start_handling"]]);
  });

  test("post-dominators: the follow-up plan's three plans meet nowhere (doctor review ends apart)", () => {
    assert.equal(postDominators(FLOWS.follow_up_plan).get("which_plan"), null);
    assert.equal(postDominators(FLOWS.complaint).get("classify"), "start_handling");
  });
});

describe("changes keep the graph whole", () => {
  test("insert a step, a block, a branch; remove them again", () => {
    const flow = emptyFlow("complaint");
    const before = copy(flow);
    const task = newNode(flow, "user_task");
    insertStep(flow, 0, task);
    assert.deepEqual(stepOrder(layout(flow)), ["start", task.key, "end"]);
    const split = insertBlock(flow, flow.edges.findIndex((e) => e.from === task.key), "exclusive");
    addBranch(flow, split);
    const branches = layout(flow).find((i) => i.key === split).branches;
    assert.equal(branches.length, 3);
    assert.ok(flow.edges.at(-1).default, "the default branch stays last");
    const call = newNode(flow, "action");
    insertStep(flow, branches[0].edge, call);
    assert.ok(connected(flow));
    assert.deepEqual(stepOrder(layout(flow)), ["start", task.key, split, call.key, "end"]);
    removeBranch(flow, flow.edges.findIndex((e) => e.from === split && e.to === call.key));
    assert.ok(!flow.nodes.some((n) => n.key === call.key));
    assert.ok(removeStep(flow, split));
    assert.ok(removeStep(flow, task.key));
    assert.deepEqual(flow, before);
  });

  test("a parallel block gets its join; removing the split removes the join", () => {
    const flow = emptyFlow("f");
    const split = insertBlock(flow, 0, "parallel");
    const kinds = flow.nodes.map((n) => n.type);
    assert.deepEqual(kinds.filter((k) => k === "parallel").length, 2);
    assert.ok(connected(flow));
    assert.ok(removeStep(flow, split));
    assert.deepEqual(flow, emptyFlow("f"));
  });

  test("move a step down the chain; rename follows every reference", () => {
    const flow = emptyFlow("f");
    const a = newNode(flow, "action", "A");
    insertStep(flow, 0, a);
    const b = newNode(flow, "timer", "B");
    insertStep(flow, flow.edges.findIndex((e) => e.from === a.key), b);
    assert.deepEqual(stepOrder(layout(flow)), ["start", a.key, b.key, "end"]);
    assert.ok(moveStep(flow, a.key, flow.edges.findIndex((e) => e.from === b.key)));
    assert.deepEqual(stepOrder(layout(flow)), ["start", b.key, a.key, "end"]);
    assert.ok(renameNode(flow, a.key, "notify_team"));
    assert.deepEqual(stepOrder(layout(flow)), ["start", b.key, "notify_team", "end"]);
    assert.ok(!renameNode(flow, "notify_team", b.key), "a key in use is refused");
  });

  test("routing an outcome elsewhere writes one edge per outcome, as the shipped complaint flow", () => {
    const shipped = FLOWS.complaint;
    const flow = copy(shipped);
    flow.edges = flow.edges.filter((e) => e.from !== "review");
    flow.edges.push({ from: "review", to: "tell_patient" });
    routeOutcome(flow, "review", "reject", "start_handling");
    const review = flow.edges.filter((e) => e.from === "review");
    assert.deepEqual(review, [
      { from: "review", to: "tell_patient", outcome: "approve" },
      { from: "review", to: "start_handling", outcome: "reject" },
    ]);
    routeOutcome(flow, "review", "reject", null);
    assert.deepEqual(flow.edges.filter((e) => e.from === "review"), [{ from: "review", to: "tell_patient" }]);
  });

  test("local problems point at the node or branch", () => {
    const flow = emptyFlow("f");
    insertStep(flow, 0, newNode(flow, "user_task"));
    insertBlock(flow, 1, "exclusive");
    const paths = localProblems(flow).map((p) => p.path);
    assert.deepEqual(paths.sort(), ["/edges/2/if", "/nodes/2/assignee", "/nodes/2/title"].sort());
  });

  test("random edits never disconnect the flow", () => {
    let seed = 7;
    const rand = (n) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let run = 0; run < 40; run++) {
      const flow = emptyFlow("f");
      for (let step = 0; step < 25; step++) {
        const choice = rand(5);
        const edge = rand(flow.edges.length);
        if (choice === 0) insertStep(flow, edge, newNode(flow, ["user_task", "action", "timer"][rand(3)]));
        else if (choice === 1) insertBlock(flow, edge, ["exclusive", "parallel", "inclusive"][rand(3)]);
        else if (choice === 2) {
          const splits = flow.nodes.filter((n) => outgoing(flow, n.key).length > 1);
          if (splits.length) addBranch(flow, splits[rand(splits.length)].key);
        } else if (choice === 3) {
          const nodes = flow.nodes.filter((n) => n.type !== "start");
          removeStep(flow, nodes[rand(nodes.length)].key);
        } else {
          const plain = flow.nodes.filter((n) => n.type !== "start" && outgoing(flow, n.key).length === 1);
          if (plain.length) moveStep(flow, plain[rand(plain.length)].key, rand(flow.edges.length));
        }
        assert.ok(connected(flow), JSON.stringify(flow));
        const { steps } = drawn(layout(flow));
        assert.deepEqual([...steps].sort(), flow.nodes.map((n) => n.key).sort());
      }
    }
  });
});
