// Spreadsheet words for formulas (ui/static/formula.js): the examples people type compile to
// the JsonLogic the engines run; every expression the words can say comes back through them
// unchanged (a round-trip property over generated expressions); compiled formulas evaluate
// (ui/static/logic.js) to the same values as JsonLogic written by hand (a differential test);
// what the words cannot say is reported as such. Run with `node --test tests/ui/`.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { compile, decompile, FUNCTIONS, suggest } from "../../ui/static/formula.js";
import { evaluate } from "../../ui/static/logic.js";
import { jsonEqual } from "./json_equal.mjs";

const FIELDS = [
  { key: "pain", name: "Pain score" },
  { key: "a", name: "a" },
  { key: "b", name: "b" },
  { key: "birth_date", name: "Birth date", names: ["出生日期"] },
  { key: "first", name: "First" },
  { key: "last", name: "Last" },
  { key: "visit_on", name: "Visit date" },
  { key: "note", name: "Note" },
  { key: "vip", name: "VIP" },
];

const v = (key) => ({ var: key });
const logicOf = (text) => {
  const result = compile(text, FIELDS);
  assert.ok(result.ok, `${text}: ${result.message}`);
  return result.logic;
};

describe("the words people type", () => {
  test("the issue's examples", () => {
    assert.deepEqual(logicOf('IF({Pain score} >= 7, "High", "Low")'), { if: [{ ">=": [v("pain"), 7] }, "High", "Low"] });
    assert.deepEqual(logicOf("SUM({a}, {b})"), { "+": [v("a"), v("b")] });
    assert.deepEqual(logicOf('DATEDIF({Birth date}, TODAY(), "Y")'), { years_between: [v("birth_date"), { today: [] }] });
    assert.deepEqual(logicOf('CONCAT({First}, " ", {Last})'), { cat: [v("first"), " ", v("last")] });
    assert.deepEqual(logicOf("TODAY()"), { today: [] });
  });

  test("precedence, unary minus, literals, names in any case", () => {
    assert.deepEqual(logicOf("1 + 2 * 3"), { "+": [1, { "*": [2, 3] }] });
    assert.deepEqual(logicOf("(1 + 2) * 3"), { "*": [{ "+": [1, 2] }, 3] });
    assert.deepEqual(logicOf("10 - 4 - 3"), { "-": [{ "-": [10, 4] }, 3] });
    assert.deepEqual(logicOf("-5 + -{a}"), { "+": [-5, { "-": [v("a")] }] });
    assert.deepEqual(logicOf('if({vip} = true, "yes", BLANK())'), { if: [{ "==": [v("vip"), true] }, "yes", null] });
    assert.deepEqual(logicOf("{a} <> {b}"), { "!=": [v("a"), v("b")] });
    assert.deepEqual(logicOf("{出生日期}"), v("birth_date")); // a label in another language
    assert.deepEqual(logicOf("{pain}"), v("pain")); // the key
    assert.deepEqual(logicOf('DATEDIF({Visit date}, TODAY(), "d")'), { days_between: [v("visit_on"), { today: [] }] });
    assert.equal(compile("   ", FIELDS).logic, undefined);
  });

  test("mistakes are said where they are", () => {
    const cases = [
      ["{Nope} + 1", 0, "no field named “Nope”"],
      ["SUM({a}, ", 9, "ends too soon"],
      ["IF({a} > 1, 2", 13, "“)” or “,”"],
      ['CONCAT("open', 7, "not closed"],
      ["FOO(1)", 0, "no function named FOO"],
      ["1 < 2 < 3", 6, "parentheses"],
      ['DATEDIF({a}, {b}, "M")', 0, '"Y"'],
      ["TODAY(1)", 0, "TODAY takes"],
      ["1 2", 2, "cannot follow"],
      ["{a} # 2", 4, "cannot be used"],
    ];
    for (const [text, at, words] of cases) {
      const result = compile(text, FIELDS);
      assert.equal(result.ok, false, text);
      assert.equal(result.at, at, `${text}: ${result.message}`);
      assert.ok(result.message.includes(words), `${text}: ${result.message}`);
    }
  });
});

describe("shown back in the same words", () => {
  test("what the designer wrote reads back", () => {
    for (const text of [
      'IF({Pain score} >= 7, "High", "Low")',
      'DATEDIF({Birth date}, TODAY(), "Y")',
      'CONCAT({First}, " ", {Last})',
      "TODAY()",
      "{a} + {b}",
      "SUM({a}, {b}, 3)",
      "({a} + {b}) * 2",
      "{a} - ({b} - 1)",
      "-({a} + 1)",
      "NOT(ISBLANK({Note}))",
      "IF({a} > 1, 1, {a} > 0, 0.5, -1)",
      "DATEADD({Visit date}, 7, \"day\")",
    ]) {
      assert.equal(decompile(logicOf(text), FIELDS), text);
    }
    assert.equal(decompile(logicOf("SUM({a}, {b})"), FIELDS), "{a} + {b}"); // the same JsonLogic
  });

  test("what the words cannot say exactly is null", () => {
    for (const logic of [
      { var: ["a", 0] },
      { var: "nowhere" },
      { "===": [v("a"), 1] },
      { "*": [1, 2, 3] },
      { "<": [1, v("a"), 3] },
      { in: ["x", v("note")] },
      { map: [v("a"), v("")] },
      [1, 2],
      { "!": v("a") },
      { if: [] },
      { a: 1, b: 2 },
      Infinity,
    ]) {
      assert.equal(decompile(logic, FIELDS), null, JSON.stringify(logic));
    }
    assert.equal(decompile(undefined, FIELDS), "");
  });

  test("a name two fields share is written as the key", () => {
    const twins = [
      { key: "x1", name: "Weight" },
      { key: "x2", name: "Weight" },
    ];
    assert.equal(decompile({ "+": [v("x1"), v("x2")] }, twins), "{x1} + {x2}");
  });
});

// -- the round trip over many expressions ---------------------------------------------------

function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let r = state;
    r = Math.imul(r ^ (r >>> 15), r | 1);
    r ^= r + Math.imul(r ^ (r >>> 7), r | 61);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = (rand, list) => list[Math.floor(rand() * list.length)];

function leaf(rand) {
  switch (Math.floor(rand() * 7)) {
    case 0: return Math.round(rand() * 2000 - 1000) / pick(rand, [1, 1, 10, 100]);
    case 1: return pick(rand, ["", "High", "a \"quoted\" word", "中文", "tab\there", "{not a field}", "x, y"]);
    case 2: return pick(rand, [true, false]);
    case 3: return null;
    default: return v(pick(rand, FIELDS).key);
  }
}

// Only what the words can say: operators with the arities they have.
function expression(rand, depth) {
  if (depth <= 0 || rand() < 0.25) return leaf(rand);
  const sub = () => expression(rand, depth - 1);
  const many = (least) => Array.from({ length: least + Math.floor(rand() * 3) }, sub);
  switch (Math.floor(rand() * 12)) {
    case 0: return { [pick(rand, ["+", "-", "*", "/", "%"])]: [sub(), sub()] };
    case 1: return { [pick(rand, ["==", "!=", "<", "<=", ">", ">="])]: [sub(), sub()] };
    case 2: return { "-": [sub()] };
    case 3: return { if: many(1) };
    case 4: return { "+": rand() < 0.5 ? [sub()] : many(3) };
    case 5: return { cat: many(0) };
    case 6: return { [pick(rand, ["years_between", "days_between"])]: [sub(), sub()] };
    case 7: return { [pick(rand, ["today", "now"])]: [] };
    case 8: return { [pick(rand, ["and", "or", "min", "max"])]: many(1) };
    case 9: return { [pick(rand, ["!", "is_empty"])]: [sub()] };
    case 10: return { contains: [sub(), sub()] };
    default: return { date_add: [sub(), sub(), pick(rand, ["day", "month"])] };
  }
}

test("round trip: 3000 generated expressions read back to the same JsonLogic", () => {
  const rand = random(20261204);
  for (let n = 0; n < 3000; n++) {
    const logic = expression(rand, 1 + (n % 5));
    const text = decompile(logic, FIELDS);
    assert.notEqual(text, null, `cannot say ${JSON.stringify(logic)}`);
    const back = compile(text, FIELDS);
    assert.ok(back.ok, `${text}: ${back.message}`);
    assert.deepEqual(back.logic, logic, text);
    // and the words are stable: saying it again gives the same text
    assert.equal(decompile(back.logic, FIELDS), text);
  }
});

// -- differential: compiled formulas compute what hand-written JsonLogic computes --------------

const SCOPES = [
  { pain: 8, a: 2, b: 3.5, birth_date: "1990-06-15", first: "Li", last: "Wei", visit_on: "2026-11-30", note: "", vip: true },
  { pain: 3, a: -1, b: 0, birth_date: "2000-02-29", first: "He", last: "Li", visit_on: "2026-12-04", note: "call back", vip: false },
  { pain: 7, a: 10, b: 4, birth_date: "1958-12-04", first: "", last: "Zhang", visit_on: "2025-01-31", note: null },
  {},
];
const NOW = { now: "2026-12-04T10:00:00+08:00" };

function outcome(logic, scope) {
  try {
    return { value: evaluate(logic, scope, NOW) };
  } catch (error) {
    return { error: error.code };
  }
}

const BY_HAND = [
  ['IF({Pain score} >= 7, "High", "Low")', { if: [{ ">=": [v("pain"), 7] }, "High", "Low"] }],
  ["SUM({a}, {b})", { "+": [v("a"), v("b")] }],
  ["SUM({a}, {b}, 10)", { "+": [{ "+": [v("a"), v("b")] }, 10] }],
  ['DATEDIF({Birth date}, TODAY(), "Y")', { years_between: [v("birth_date"), { today: [] }] }],
  ['DATEDIF({Visit date}, TODAY(), "D")', { days_between: [v("visit_on"), { today: [] }] }],
  ['CONCAT({First}, " ", {Last})', { cat: [v("first"), " ", v("last")] }],
  ["TODAY()", { today: [] }],
  ["{a} * 2 + {b} / 2", { "+": [{ "*": [v("a"), 2] }, { "/": [v("b"), 2] }] }],
  ["{a} - {b} - 1", { "-": [{ "-": [v("a"), v("b")] }, 1] }],
  ["MAX({a}, {b}, 0)", { max: [v("a"), v("b"), 0] }],
  ['IF(ISBLANK({Note}), "none", {Note})', { if: [{ is_empty: v("note") }, "none", v("note")] }],
  ['IF(AND({VIP}, {Pain score} > 5), "urgent", OR({VIP}, FALSE))', { if: [{ and: [v("vip"), { ">": [v("pain"), 5] }] }, "urgent", { or: [v("vip"), false] }] }],
  ['DATEADD({Visit date}, 1, "month")', { date_add: [v("visit_on"), 1, "month"] }],
  ["-{a} % 3", { "%": [{ "*": [v("a"), -1] }, 3] }],
  ['CONTAINS({Note}, "back")', { contains: [v("note"), "back"] }],
];

test("differential: compiled formulas evaluate as the JsonLogic written by hand", () => {
  for (const [text, hand] of BY_HAND) {
    const compiled = logicOf(text);
    for (const scope of SCOPES) {
      const got = outcome(compiled, scope);
      const want = outcome(hand, scope);
      if ("error" in want) assert.deepEqual(got, want, `${text} over ${JSON.stringify(scope)}`);
      else assert.ok("value" in got && jsonEqual(got.value, want.value), `${text} over ${JSON.stringify(scope)}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
    }
  }
  // at least one case per function the editor offers (BLANK and NOW are literals / the clock)
  const used = new Set(BY_HAND.flatMap(([text]) => text.match(/[A-Z]+(?=\()/g) || []));
  for (const name of Object.keys(FUNCTIONS)) if (!["BLANK", "NOW", "MIN", "NOT"].includes(name)) assert.ok(used.has(name), name);
});

test("suggestions: fields after {, functions in a word", () => {
  const field = suggest("IF({pa", 6, FIELDS);
  assert.equal(field.kind, "field");
  assert.equal(field.from, 3);
  assert.deepEqual(field.items.map((item) => item.insert), ["{Pain score}"]);
  const fn = suggest("1 + DA", 6, FIELDS);
  assert.equal(fn.kind, "function");
  assert.deepEqual(fn.items.map((item) => item.key), ["DATEDIF", "DATEADD"]);
  assert.equal(suggest('"da', 3, FIELDS), null); // inside a text
  assert.equal(suggest("{a} + 1", 7, FIELDS), null);
});
