// The condition builder's model (ui/static/conditions.js), shared by the designer's
// "Show this field" and the list's filter bar. Run with Node's built-in runner:
// `node --test tests/ui/` (tests/ui/test_logic_js.py runs it from pytest).

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  FILTER,
  OPERATORS,
  VISIBILITY,
  buildCondition,
  filterKind,
  literal,
  needsValue,
  parseCondition,
} from "../../ui/static/conditions.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const TYPES = {
  name: "text", notes: "textarea", age: "integer", weight: "number", born: "date", seen: "datetime",
  at: "time", kind: "select", tags: "multiselect", vip: "boolean", doctor: "relation", photo: "image",
};
const typeOf = (key) => TYPES[key];
const v = (field) => ({ var: field });

describe("rows to JsonLogic", () => {
  test("each operator writes standard JsonLogic", () => {
    const cases = [
      [{ field: "kind", op: "==", value: "b" }, { "==": [v("kind"), "b"] }],
      [{ field: "kind", op: "!=", value: "b" }, { "!=": [v("kind"), "b"] }],
      [{ field: "age", op: ">", value: 3 }, { ">": [v("age"), 3] }],
      [{ field: "age", op: ">=", value: 3 }, { ">=": [v("age"), 3] }],
      [{ field: "age", op: "<", value: 3 }, { "<": [v("age"), 3] }],
      [{ field: "age", op: "<=", value: 3 }, { "<=": [v("age"), 3] }],
      [{ field: "tags", op: "contains", value: "vip" }, { in: ["vip", v("tags")] }],
      [{ field: "name", op: "contains", value: "Qin" }, { in: ["Qin", v("name")] }],
      [{ field: "vip", op: "yes", value: null }, { "==": [v("vip"), true] }],
      [{ field: "vip", op: "no", value: null }, { "==": [v("vip"), false] }],
      [{ field: "name", op: "empty", value: null }, { is_empty: [v("name")] }],
      [{ field: "name", op: "filled", value: null }, { "!": [{ is_empty: [v("name")] }] }],
    ];
    for (const [row, rule] of cases) assert.deepEqual(buildCondition({ join: "all", rows: [row] }), rule);
  });

  test("several rows are joined by and / or; rows without a field or operator are left out", () => {
    const rows = [
      { field: "kind", op: "==", value: "b" },
      { field: "", op: "==", value: undefined },
      { field: "age", op: ">", value: 3 },
    ];
    assert.deepEqual(buildCondition({ join: "all", rows }), { and: [{ "==": [v("kind"), "b"] }, { ">": [v("age"), 3] }] });
    assert.deepEqual(buildCondition({ join: "any", rows }), { or: [{ "==": [v("kind"), "b"] }, { ">": [v("age"), 3] }] });
    assert.equal(buildCondition({ join: "all", rows: [] }), undefined);
    assert.equal(buildCondition({ join: "all", rows: [{ field: "", op: "==" }] }), undefined);
  });

  test("operators without a value say so", () => {
    assert.deepEqual(Object.keys(OPERATORS).filter((op) => !needsValue(op)), ["yes", "no", "empty", "filled"]);
  });
});

describe("JsonLogic back to rows", () => {
  test("what the builder writes reads back as the same rows, in both places", () => {
    for (const profile of [VISIBILITY, FILTER]) {
      for (const [field, type] of Object.entries(TYPES)) {
        for (const op of profile.operators(type)) {
          const value = needsValue(op) ? (type === "integer" ? 7 : "x") : null;
          const rows = [{ field, op, value }, { field: "name", op: "empty", value: null }];
          for (const join of ["all", "any"]) {
            const rule = buildCondition({ join, rows });
            assert.deepEqual(parseCondition(rule, profile, typeOf), { join, rows }, JSON.stringify(rule));
            assert.deepEqual(parseCondition(rule, profile, typeOf).rows.slice(0, 1), [rows[0]]);
          }
        }
      }
    }
  });

  test("no rule is no rows; the other spellings of the same conditions are read", () => {
    assert.deepEqual(parseCondition(undefined, VISIBILITY, typeOf), { join: "all", rows: [] });
    assert.deepEqual(parseCondition(null, FILTER, typeOf), { join: "all", rows: [] });
    const filled = { field: "name", op: "filled", value: null };
    assert.deepEqual(parseCondition({ "!": { is_empty: [v("name")] } }, FILTER, typeOf).rows, [filled]);
    assert.deepEqual(parseCondition({ "===": [v("kind"), "b"] }, VISIBILITY, typeOf).rows, [{ field: "kind", op: "==", value: "b" }]);
    assert.deepEqual(parseCondition({ "!==": [{ var: ["kind"] }, "b"] }, VISIBILITY, typeOf).rows, [{ field: "kind", op: "!=", value: "b" }]);
    assert.deepEqual(parseCondition({ is_empty: v("name") }, VISIBILITY, typeOf).rows, [{ field: "name", op: "empty", value: null }]);
  });

  test("a boolean is == true/false with a value in the designer, yes/no in the filter bar", () => {
    const rule = { "==": [v("vip"), true] };
    assert.deepEqual(parseCondition(rule, VISIBILITY, typeOf).rows, [{ field: "vip", op: "==", value: true }]);
    assert.deepEqual(parseCondition(rule, FILTER, typeOf).rows, [{ field: "vip", op: "yes", value: null }]);
    assert.deepEqual(parseCondition({ "==": [v("vip"), false] }, FILTER, typeOf).rows, [{ field: "vip", op: "no", value: null }]);
    assert.equal(parseCondition({ "!=": [v("vip"), true] }, FILTER, typeOf), null);
  });

  test("what the builder cannot show is null, never a simplified rule", () => {
    const cannot = [
      { or: [{ "==": [v("kind"), "b"] }, { "!": v("name") }] }, // a part it has no row for
      { and: [] },
      { and: [{ or: [{ "==": [v("kind"), "b"] }] }] }, // nesting
      { "==": [v("kind"), { var: "name" }] }, // a field on the right
      { "==": [v("kind"), ["a"]] }, // not a literal
      { "==": [v("nowhere"), "a"] }, // a field the builder does not offer
      { ">": [v("name"), "a"] }, // an operator not offered for a text
      { "==": [v("kind"), "a", "b"] },
      { in: [v("kind"), ["a", "b"]] },
      { "!": [{ "==": [v("kind"), "b"] }] },
      { "==": [v("kind"), "b"], "!=": [v("kind"), "c"] },
      "kind",
      [],
      true,
    ];
    for (const rule of cannot) {
      assert.equal(parseCondition(rule, VISIBILITY, typeOf), null, JSON.stringify(rule));
      assert.equal(parseCondition(rule, FILTER, typeOf), null, JSON.stringify(rule));
    }
    // offered in the designer (the evaluator has it), not in the filter bar (no SQL for it)
    for (const rule of [{ ">": [v("kind"), "a"] }, { "==": [v("tags"), "a"] }, { "!=": [v("born"), "2024-01-01"] }]) {
      assert.equal(parseCondition(rule, FILTER, typeOf), null, JSON.stringify(rule));
    }
    assert.notEqual(parseCondition({ "!=": [v("born"), "2024-01-01"] }, VISIBILITY, typeOf), null);
  });
});

describe("operators per place", () => {
  test("the filter bar offers, per kind of field, what the list API compiles to SQL", () => {
    assert.deepEqual(FILTER.operators("text"), ["contains", "==", "!=", "empty", "filled"]);
    assert.deepEqual(FILTER.operators("email"), FILTER.operators("text"));
    assert.deepEqual(FILTER.operators("integer"), ["==", "!=", "<", "<=", ">", ">=", "empty", "filled"]);
    assert.deepEqual(FILTER.operators("datetime"), ["<", ">=", "empty", "filled"]);
    assert.deepEqual(FILTER.operators("multiselect"), ["contains", "empty", "filled"]);
    assert.deepEqual(FILTER.operators("boolean"), ["yes", "no"]);
    assert.equal(filterKind("phone"), "text");
    assert.equal(filterKind("something new"), "text");
    assert.equal(FILTER.label("<", "date"), "is before");
    assert.equal(FILTER.label(">=", "datetime"), "is on or after");
    assert.equal(FILTER.label("<", "number"), "<");
    assert.equal(FILTER.label("contains", "multiselect"), "has");
    assert.equal(FILTER.label("contains", "text"), "contains");
    assert.equal(FILTER.label("filled", "text"), "is not empty");
  });

  test("the designer offers comparisons by type, never yes/no rows", () => {
    assert.deepEqual(VISIBILITY.operators("text"), ["==", "!=", "contains", "empty", "filled"]);
    assert.deepEqual(VISIBILITY.operators("boolean"), ["==", "!=", "empty", "filled"]);
    assert.deepEqual(VISIBILITY.operators("computed"), ["==", "!=", ">", ">=", "<", "<=", "empty", "filled"]);
    assert.deepEqual(VISIBILITY.operators("multiselect"), ["contains", "empty", "filled"]);
    assert.equal(VISIBILITY.label("filled"), "is filled in");
  });

  test("every operator label has a zh-CN translation", () => {
    const folder = joinPath(REPO, "ui", "i18n", "zh-CN");
    const catalog = Object.assign({}, ...readdirSync(folder).map((name) => JSON.parse(readFileSync(joinPath(folder, name), "utf8"))));
    const labels = new Set();
    for (const type of [...Object.values(TYPES), "computed", "table", "url"]) {
      for (const op of VISIBILITY.operators(type)) labels.add(VISIBILITY.label(op, type));
      for (const op of FILTER.operators(type)) labels.add(FILTER.label(op, type));
    }
    const missing = [...labels].filter((text) => /[a-z]/.test(text) && !Object.hasOwn(catalog, text));
    assert.deepEqual(missing, []);
  });
});

test("a typed value is stored as the field's type stores it", () => {
  assert.equal(literal("integer", "42"), 42);
  assert.equal(literal("number", " "), " ");
  assert.equal(literal("computed", "x"), "x");
  assert.equal(literal("boolean", "true"), true);
  assert.equal(literal("boolean", "false"), false);
  assert.equal(literal("date", "2024-01-01"), "2024-01-01");
});
