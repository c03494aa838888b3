// The access screen's model (ui/static/access-editor-model.js): a form's grants per role and
// back, unchanged when nothing was changed; row filters with `$user` values in the builder.
// Run with `node --test tests/ui/` (test_logic_js.py).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { buildRowFilter, grantIndex, load, parseRowFilter, toGrants } from "../../ui/static/access-editor-model.js";

const ROLES = ["admin", "manager", "doctor", "nurse", "front_desk"];
const BRANCH = { or: [{ "!": { var: "branch" } }, { "==": [{ var: "branch" }, { var: ["$user.branch", ""] }] }] };
const CLINIC = [
  { form: "complaint", roles: ["front_desk"], actions: ["create", "read", "update"], row_filter: BRANCH, read_only_fields: ["department"] },
  { form: "complaint", roles: ["manager"], actions: ["create", "read", "update", "export"], row_filter: BRANCH },
  { form: "complaint", roles: ["doctor", "nurse"], actions: ["read"], hidden_fields: ["handler"] },
];
const types = { branch: "relation", subject: "text", score: "integer", created_by: "text" };
const typeOf = (key) => types[key];

describe("grants per role", () => {
  test("grants come back as they were written", () => {
    assert.deepEqual(toGrants(load(CLINIC, ROLES), "complaint", ROLES), CLINIC);
  });

  test("a changed role gets its own grant in its group's place; roles alike share one", () => {
    const model = load(CLINIC, ROLES);
    model.roles.get("nurse").actions.add("create");
    const grants = toGrants(model, "complaint", ROLES);
    assert.deepEqual(grants.map((g) => g.roles), [["front_desk"], ["manager"], ["doctor"], ["nurse"]]);
    assert.deepEqual(grants[3].actions, ["create", "read"]);
    model.roles.get("doctor").actions.add("create");
    assert.deepEqual(toGrants(model, "complaint", ROLES)[2].roles, ["doctor", "nurse"]);
  });

  test("a role without actions has no grant; a new role's grant goes last", () => {
    const model = load(CLINIC, ROLES);
    model.roles.get("manager").actions.clear();
    model.roles.get("admin").actions.add("read");
    const grants = toGrants(model, "complaint", ROLES);
    assert.deepEqual(grants.map((g) => g.roles), [["front_desk"], ["doctor", "nurse"], ["admin"]]);
  });

  test("a role named by two grants is kept as written", () => {
    const twice = [...CLINIC, { form: "complaint", roles: ["nurse"], actions: ["update"] }];
    const model = load(twice, ROLES);
    assert.ok(model.keptRoles.has("nurse") && model.keptRoles.has("doctor"));
    model.roles.get("manager").actions.add("delete");
    const grants = toGrants(model, "complaint", ROLES);
    assert.deepEqual(grants[2], twice[2]);
    assert.deepEqual(grants[3], twice[3]);
    assert.deepEqual(grants[1].actions, ["create", "read", "update", "delete", "export"]);
  });

  test("a read-only field that is also hidden is written as hidden only", () => {
    const model = load([], ROLES);
    const nurse = model.roles.get("nurse");
    nurse.actions.add("read");
    nurse.hidden.push("subject");
    nurse.readOnly.push("subject", "score");
    assert.deepEqual(toGrants(model, "f", ROLES), [
      { form: "f", roles: ["nurse"], actions: ["read"], hidden_fields: ["subject"], read_only_fields: ["score"] },
    ]);
  });
});

describe("row filters in the builder", () => {
  test("the user's branch and the user as creator", () => {
    const rule = { and: [{ "==": [{ var: "branch" }, { var: "$user.branch" }] }, { "==": [{ var: "created_by" }, { var: "$user.username" }] }] };
    const shown = parseRowFilter(rule, typeOf);
    assert.deepEqual(shown, {
      join: "all",
      rows: [
        { field: "branch", op: "==", value: null, user: "$user.branch" },
        { field: "created_by", op: "==", value: null, user: "$user.username" },
      ],
    });
    assert.deepEqual(buildRowFilter(shown), rule);
  });

  test("typed values stay values", () => {
    const rule = { or: [{ ">=": [{ var: "score" }, 3] }, { in: ["late", { var: "subject" }] }] };
    assert.deepEqual(buildRowFilter(parseRowFilter(rule, typeOf)), rule);
  });

  test("what the builder cannot write back exactly stays JSON", () => {
    assert.equal(parseRowFilter(BRANCH, typeOf), null); // `!` and a var with a default
    assert.equal(parseRowFilter({ "===": [{ var: "subject" }, "x"] }, typeOf), null);
    assert.equal(parseRowFilter({ "==": [{ var: "unknown" }, "x"] }, typeOf), null);
    assert.equal(parseRowFilter({ "<": [{ var: "score" }, { var: "$user.level" }] }, typeOf), null);
  });

  test("no condition is every row", () => {
    assert.deepEqual(parseRowFilter(undefined, typeOf), { join: "all", rows: [] });
    assert.equal(buildRowFilter({ join: "all", rows: [] }), undefined);
  });

  test("server errors land on their grant", () => {
    assert.equal(grantIndex("/2/hidden_fields/0"), 2);
    assert.equal(grantIndex("/0"), 0);
    assert.equal(grantIndex("/permissions/3"), null);
  });
});
