// The browser evaluator (ui/static/logic.js) against the public JsonLogic suites and
// Formloom's extensions. Run with Node's built-in runner: `node --test tests/ui/`.
//
// The conformance data is kept in the repository (tests/conformance, or
// $FORMLOOM_CONFORMANCE_DIR), as for the Python tests; if it is missing the count tests fail
// rather than letting the suite silently shrink. tests/ui/test_logic_js.py runs this file from
// pytest and checks that it reports 277 classic passes.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  evaluate,
  InvalidArguments,
  LogicError,
  NotANumber,
  OPERATORS,
  ThrownError,
  UnknownOperator,
  variables,
} from "../../ui/static/logic.js";
import { jsonEqual } from "./json_equal.mjs";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const CONFORMANCE =
  process.env.FORMLOOM_CONFORMANCE_DIR || join(REPO, "tests", "conformance");
const CLASSIC_CASES = 277;
const COMPAT_CASES = 1138;
const FIXED_NOW = "2024-01-15T12:00:00Z"; // the clock compat.py gives the suites

function readJson(...parts) {
  try {
    return JSON.parse(readFileSync(join(CONFORMANCE, "jsonlogic", ...parts), "utf8"));
  } catch (error) {
    if (error.code === "ENOENT") return null; // reported by the count tests
    throw error;
  }
}

function show(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return "(too deep to show)";
  }
}

/** evaluate(rule, data) must give `want` (deep, strict: 1 is not true, null is not 0). */
function expect(rule, data, want, now = undefined) {
  const got = evaluate(rule, data, now === undefined ? {} : { now });
  assert.deepStrictEqual(got, want, `${show(rule)} with ${show(data)}`);
}

/** evaluate(rule, data) must throw an ErrorClass (a LogicError). */
function raises(rule, data, ErrorClass, code = undefined) {
  assert.throws(
    () => evaluate(rule, data),
    (error) => {
      assert.ok(error instanceof ErrorClass, `${show(rule)}: got ${error}`);
      assert.ok(error instanceof LogicError);
      if (code) assert.equal(error.code, code);
      return true;
    },
  );
}

// -- the classic jsonlogic.com suite: 277 of 277 ----------------------------------------------

const classic = (readJson("tests.json") ?? []).filter(Array.isArray);

describe("classic conformance suite (jsonlogic/tests.json)", () => {
  test("the suite is present and complete", () => {
    assert.equal(classic.length, CLASSIC_CASES, `classic suite not found under ${CONFORMANCE}`);
  });

  classic.forEach(([rule, data, expected], index) => {
    const name = `conformance case ${String(index).padStart(3, "0")}: ${show(rule).slice(0, 60)}`;
    test(name, () => {
      const got = evaluate(rule, data);
      assert.ok(jsonEqual(got, expected), `got ${show(got)}, want ${show(expected)}`);
    });
  });
});

// -- the community compat tables: 1138 of 1138, error types included ----------------------------

const suites = readJson("compat-tables", "index.json") ?? [];

function compatFailures(item) {
  const rule = item.rule ?? null;
  const data = item.data ?? null;
  let got;
  try {
    got = evaluate(rule, data, { now: FIXED_NOW });
  } catch (error) {
    if (!(error instanceof LogicError)) throw error;
    if (item.error === undefined) return [`${show(rule)}: raised ${error.message}`];
    if (error.errorValue?.type === item.error?.type) return [];
    return [`${show(rule)}: raised ${show(error.errorValue)}, want ${show(item.error)}`];
  }
  if (item.error !== undefined) return [`${show(rule)}: got ${show(got)}, want an error`];
  const tolerance = item.decimal || !Number.isInteger(got) ? 1e-9 : 0;
  if (jsonEqual(got, item.result ?? null, tolerance)) return [];
  return [`${show(rule)} with ${show(data)}: got ${show(got)}, want ${show(item.result)}`];
}

describe("compat tables (jsonlogic/compat-tables)", () => {
  let total = 0;
  test("the tables are present and complete", () => {
    assert.ok(suites.length > 0, `compat tables not found under ${CONFORMANCE}`);
    assert.equal(total, COMPAT_CASES);
  });

  for (const suite of suites) {
    const items = readJson("compat-tables", suite) ?? [];
    const cases = items.filter((item) => item && typeof item === "object" && !Array.isArray(item));
    total += cases.length;
    test(suite, () => {
      assert.deepEqual(cases.flatMap(compatFailures), []);
    });
  }
});

// -- values and operators ----------------------------------------------------------------------

describe("values", () => {
  test("truthiness", () => {
    for (const value of [0, "", [], null, false]) expect({ "!!": [{ preserve: value }] }, 0, false);
    for (const value of ["0", {}, [0], -1, " "]) expect({ "!!": [{ preserve: value }] }, 0, true);
    expect({ "!": { var: "tags" } }, { tags: [""] }, false); // a list value is never spread
  });

  test("loose equality follows the compat tables, not JavaScript", () => {
    expect({ "==": [null, 0] }, null, true);
    expect({ "==": [null, ""] }, null, true);
    expect({ "==": [null, false] }, null, true);
    expect({ "==": [" 2 ", 2] }, null, true);
    expect({ "==": ["1", "1.0"] }, null, false);
    expect({ "==": ["abc", true] }, null, false);
    raises({ "==": [1, "A"] }, null, NotANumber, "NotANumber");
    raises({ "==": [{ preserve: [] }, { preserve: [] }] }, null, NotANumber);
  });

  test("strict equality is deep and type aware", () => {
    const value = { preserve: [1, { a: null }] };
    expect({ "===": [value, value] }, null, true);
    expect({ "!==": [{ preserve: [1] }, { preserve: [true] }] }, null, true);
  });

  test("ordering", () => {
    expect({ "<": ["2024-01-01", "2024-02-01"] }, null, true);
    expect({ "<": ["10", 9] }, null, false);
    expect({ "<": ["10", "9"] }, null, true);
    expect({ "<": [null, "x"] }, null, false);
    expect({ "<=": [1, 2, 2] }, null, true);
    raises({ ">": [1, "one"] }, null, NotANumber);
    // Code point order, as in Python (UTF-16 order would say the opposite).
    expect({ "<": ["\uffff", "\u{1F600}"] }, null, true);
  });

  test("arithmetic coerces like Number() and refuses non-numbers", () => {
    expect({ "+": ["1", 2.5, true, null, "", " 4 ", "1e2", "0x10"] }, null, 124.5);
    expect({ "/": [6, 3] }, null, 2);
    expect({ "%": [-8, 3] }, null, -2);
    expect({ "-": "5" }, null, -5);
    expect({ "*": [-1, 0] }, null, 0); // deepStrictEqual: not -0
    expect({ max: [] }, null, null);
    expect({ min: { var: "xs" } }, { xs: [3, "1", 2] }, 1);
    for (const rule of [{ "/": [1, 0] }, { "%": [5, 0] }, { "+": ["x"] }, { "*": [1e308, 10] }]) {
      raises(rule, null, NotANumber);
    }
    // Python's strip(), not JavaScript's trim(): U+001F is space there, U+FEFF is not.
    expect({ "+": ["\u001f1"] }, null, 1);
    raises({ "+": ["\ufeff1"] }, null, NotANumber);
  });

  test("cat writes numbers like the server", () => {
    const parts = [1.0, 0.5, 1e21, 1e-7, null, false, { preserve: [1, [2]] }, { preserve: {} }];
    expect({ cat: parts }, null, "10.51e+211e-7false1,2[object Object]");
    expect({ cat: [{ "/": [1, 3] }] }, null, "0.3333333333333333");
  });

  test("substr counts code points", () => {
    expect({ substr: ["héllo wörld", -5] }, null, "wörld");
    expect({ substr: ["abcdef", 1, -2] }, null, "bcd");
    expect({ substr: ["a😀b", 1, 1] }, null, "😀");
    expect({ substr: ["abcdef", "2", "2.9"] }, null, "cd");
  });

  test("in and merge", () => {
    expect({ in: [1, [1.0, 2]] }, null, true);
    expect({ in: [1, [true]] }, null, false);
    expect({ in: [null, "abc"] }, null, false);
    expect({ in: ["", "abc"] }, null, true);
    raises({ in: ["a", 5] }, null, InvalidArguments, "InvalidArguments");
    expect({ merge: [1, [2, [3]], null] }, null, [1, 2, [3], null]);
  });
});

describe("data access and scopes", () => {
  const data = { a: { b: [10, { c: "deep" }] }, n: null, zero: 0, "a.b": 1 };

  test("var", () => {
    expect({ var: "a.b.1.c" }, data, "deep");
    expect({ var: "a.b.5" }, data, null);
    expect({ var: ["n", "fallback"] }, data, "fallback"); // null counts as missing
    expect({ var: ["zero", 9] }, data, 0);
    expect({ var: "" }, data, data);
    expect({ var: 1 }, ["x", "y"], "y");
    expect({ var: "constructor" }, {}, null);
    raises({ var: { preserve: { a: 1 } } }, data, InvalidArguments);
    raises({ var: true }, data, InvalidArguments);
  });

  test("val and exists take literal keys", () => {
    expect({ val: "a.b" }, data, 1);
    expect({ val: ["a", "b", 1] }, data, { c: "deep" });
    expect({ exists: "n" }, data, true);
    expect({ exists: ["a", "c"] }, data, false);
    expect({ exists: "toString" }, {}, false);
  });

  test("iterators see the element and can climb to the record", () => {
    const record = { rate: 2, rows: [{ qty: 1 }, { qty: 4 }] };
    const price = { "*": [{ var: "qty" }, { val: [[2], "rate"] }] };
    expect({ map: [{ var: "rows" }, price] }, record, [2, 8]);
    expect({ map: [{ var: "rows" }, { val: [[1], "index"] }] }, record, [0, 1]);
    expect({ map: [[1], { val: [[9], "x"] }] }, null, [null]);
    expect({ map: [[1], { val: [[false], "x"] }] }, null, [null]);
    raises({ map: [[1], { val: [["1"], "x"] }] }, null, InvalidArguments);
  });

  test("reduce, quantifiers and missing arrays", () => {
    const product = { "*": [{ var: "accumulator" }, { var: "current" }] };
    expect({ reduce: [[1, 2, 3], product] }, null, 6);
    expect({ reduce: [[], { var: "current" }] }, null, null);
    expect({ map: [{ var: "rows" }, 1] }, {}, []);
    raises({ some: [{ var: "rows" }, true] }, {}, InvalidArguments);
    raises({ map: [null, 1] }, null, InvalidArguments);
    expect({ some: [{ var: ["rows", []] }, true] }, {}, false);
    expect({ all: [[], true] }, null, false);
    expect({ none: [[], true] }, null, true);
  });

  test("missing and missing_some", () => {
    const record = { a: 1, b: "", c: null };
    expect({ missing: ["a", "b", "c", "d"] }, record, ["b", "c", "d"]);
    expect({ missing_some: [1, ["a", "d"]] }, record, []);
    raises({ missing_some: [1, "a"] }, record, InvalidArguments);
  });
});

describe("errors, throw and try", () => {
  test("error classes carry the server's codes and kinds", () => {
    const cases = [
      [{ frobnicate: [1] }, UnknownOperator, "UnknownOperator", { type: "Unknown Operator" }],
      [{ if: { var: "x" } }, InvalidArguments, "InvalidArguments", { type: "Invalid Arguments" }],
      [{ "/": [1, 0] }, NotANumber, "NotANumber", { type: "NaN" }],
      [{ throw: "Overdue" }, ThrownError, "ThrownError", { type: "Overdue" }],
    ];
    for (const [rule, ErrorClass, code, value] of cases) {
      assert.throws(
        () => evaluate(rule),
        (error) => {
          assert.ok(error instanceof ErrorClass && error instanceof LogicError);
          assert.ok(error instanceof Error);
          assert.equal(error.code, code);
          assert.equal(error.name, code);
          assert.deepEqual(error.errorValue, value);
          assert.equal(error.kind, value.type);
          return true;
        },
      );
    }
    assert.throws(() => evaluate({ frob: [] }), (error) => error.operator === "frob");
  });

  test("throw and try", () => {
    expect({ try: [{ "/": [1, 0] }, { cat: ["caught ", { var: "type" }] }] }, null, "caught NaN");
    const thrown = { throw: { preserve: { type: "X", code: 7 } } };
    expect({ try: [thrown, { var: "code" }] }, null, 7);
    expect({ try: [{ frob: [] }, { var: "type" }] }, null, "Unknown Operator");
    expect({ try: [{ throw: "a" }, { val: [[2], "x"] }] }, { x: 5 }, 5);
    expect({ try: [] }, null, null);
    const twice = { try: [{ throw: "a" }, { throw: "b" }] };
    assert.throws(() => evaluate(twice), (error) => error.kind === "b");
    assert.throws(
      () => evaluate({ throw: 7 }),
      (error) => error.kind === "Error" && error.value.type === 7,
    );
  });

  test("coalesce, preserve, log", () => {
    expect({ "??": [{ var: "a" }, { var: "b" }, 3] }, { b: 0 }, 0);
    expect({ "??": { var: "xs" } }, { xs: [null, "x"] }, "x");
    expect({ preserve: { var: "x" } }, { x: 1 }, { var: "x" });
    const log = console.log;
    const seen = [];
    console.log = (...args) => seen.push(args);
    try {
      expect({ log: "hi" }, null, "hi");
    } finally {
      console.log = log;
    }
    assert.equal(seen.length, 1);
    raises({ log: [1, 2] }, null, InvalidArguments);
  });

  test("only LogicErrors escape, even for deep nesting", () => {
    let rule = 1;
    for (let i = 0; i < 200_000; i++) rule = { "!": [rule] };
    raises(rule, null, LogicError, "LogicError");
  });
});

// -- Formloom extensions -----------------------------------------------------------------------

describe("dates", () => {
  test("now and today", () => {
    expect({ now: [] }, null, "2024-01-15T12:00:30Z", "2024-01-15T12:00:30.999999Z");
    const shanghai = "2024-03-01T00:30:00+08:00";
    expect({ today: [] }, null, "2024-03-01", shanghai);
    expect({ now: [] }, null, "2024-02-29T16:30:00Z", shanghai);
    expect({ today: [] }, null, "2024-02-29", new Date(Date.UTC(2024, 1, 29, 16, 30)));
    expect({ now: [] }, null, "2024-01-01T23:00:00Z", "2024-01-01T23:00:00"); // naive: UTC
    const [first, second] = evaluate([{ now: [] }, { now: [] }]);
    assert.equal(first, second);
    assert.match(first, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    raises({ now: ["x"] }, null, InvalidArguments);
    assert.throws(() => evaluate({ now: [] }, null, { now: "yesterday" }), TypeError);
  });

  test("date_add", () => {
    const cases = [
      ["2024-01-31", 1, "month", "2024-02-29"],
      ["2023-01-31", 1, "month", "2023-02-28"],
      ["2024-03-31", -1, "month", "2024-02-29"],
      ["2024-02-29", 1, "year", "2025-02-28"],
      ["2024-02-29", 4, "years", "2028-02-29"],
      ["2024-01-15", -13, "month", "2022-12-15"],
      ["2023-02-28", 1, "day", "2023-03-01"],
      ["2024-01-01", 2, "week", "2024-01-15"],
      ["2024-01-01", "3", "day", "2024-01-04"],
      ["2024-01-31T10:15:00Z", 1, "month", "2024-02-29T10:15:00Z"],
      ["2024-03-10T01:30:00Z", 90, "minute", "2024-03-10T03:00:00Z"],
      ["2024-01-01T00:00:00+08:00", 1, "hour", "2023-12-31T17:00:00Z"],
      ["2024-01-01T12:00:00", 1.5, "day", "2024-01-03T00:00:00Z"],
      ["2024-12-31T23:59:59Z", 1, "second", "2025-01-01T00:00:00Z"],
      // As Python 3.11's fromisoformat reads it, and as the server's strftime writes it:
      ["2024-01-01T10:30:00.123456abc+05:00", 0, "day", "2024-01-01T05:30:00Z"],
      ["0999-01-01T00:00:00Z", 1, "day", "999-01-02T00:00:00Z"],
    ];
    for (const [value, amount, unit, want] of cases) {
      expect({ date_add: [value, amount, unit] }, null, want);
    }
    expect({ date_add: [null, 1, "day"] }, null, null);
    for (const args of [
      ["2024-02-30", 1, "day"],
      [20240101, 1, "day"],
      ["2024-01-01", "many", "day"],
      ["2024-01-01", 1, "fortnight"],
      ["2024-01-01", 1.5, "month"],
      ["2024-01-01", 3, "hour"],
      ["9999-12-31", 1, "day"],
      ["2024-01-01", 1e9, "year"],
      ["2024-01-01", 1],
      ["2024-01-01T10:30é+05:00", 1, "day"],
    ]) {
      raises({ date_add: args }, null, InvalidArguments, "InvalidArguments");
    }
  });

  test("days_between and years_between", () => {
    expect({ days_between: ["2024-02-28", "2024-03-01"] }, null, 2);
    expect({ days_between: ["2024-01-01T23:59:00Z", "2024-01-02T00:01:00Z"] }, null, 1);
    expect({ days_between: ["2024-01-01", "2024-01-01T18:00:00+08:00"] }, null, 0);
    expect({ years_between: ["2000-02-29", "2023-02-28"] }, null, 22);
    expect({ years_between: ["2000-02-29", "2023-03-01"] }, null, 23);
    expect({ years_between: ["2024-05-20", "2000-05-21"] }, null, -23);
    expect({ years_between: ["1990-06-15T08:00:00Z", "2024-06-15"] }, null, 34);
    expect({ days_between: [{ var: "missing" }, "2024-01-01"] }, {}, null);
    raises({ years_between: ["2024-13-01", "2024-01-01"] }, null, InvalidArguments);
    const age = { ">=": [{ years_between: [{ var: "dob" }, { today: [] }] }, 18] };
    expect(age, { dob: "2006-01-15" }, true, FIXED_NOW);
    expect(age, { dob: "2006-01-16" }, false, FIXED_NOW);
  });

  test("contains and is_empty", () => {
    expect({ contains: [{ var: "tags" }, "vip"] }, { tags: ["vip", "new"] }, true);
    expect({ contains: [[1, 2], true] }, null, false);
    expect({ contains: ["hypertension", "tens"] }, null, true);
    expect({ contains: [{ var: "tags" }, "vip"] }, {}, null);
    raises({ contains: ["abc", 1] }, null, InvalidArguments);
    const values = [null, "", [], {}, 0, false, " ", [null]];
    values.forEach((value, i) => {
      const empty = i < 4;
      expect({ is_empty: [{ preserve: value }] }, null, empty);
      expect({ is_empty: { var: "x" } }, { x: value }, empty); // a list is not spread
    });
    raises({ is_empty: [1, 2] }, null, InvalidArguments);
  });
});

describe("bin_of", () => {
  // The cases of tests/engines/logic/test_bins.py: floor(value / width) in decimal.
  const cases = [
    [0.3, 0.1, 3], // 0.3 / 0.1 is 2.9999999999999996 in doubles
    [0.30000000000000004, 0.1, 3],
    [0.7, 0.1, 7],
    [-0.1, 0.1, -1],
    [-0.10000000000000001, 0.1, -1], // the same double as -0.1
    [1e-9, 0.1, 0],
    [-1e-9, 0.1, -1],
    [0.75, 0.25, 3],
    [0.74, 0.25, 2],
    [-0.25, 0.25, -1],
    [0.9, 0.3, 3],
    [0.6, 0.3, 2],
    [-0.6, 0.3, -2],
    [-0.5, 1, -1],
    [-0, 1, 0],
    [0, 0.1, 0],
    [3000000000, 1, 3000000000],
    [3e9, 0.5, 6000000000],
    [2 ** 53, 1, 2 ** 53],
    [1e15, 1e15, 1],
    [0.0999999999999, 0.1, 1], // rounded to 9 decimals of the width's units first
    [0.09999999, 0.1, 0],
    [123.456, 1e-6, 123456000],
    [5e-324, 1, 0],
    [-5e-324, 1, 0], // rounded to 9 decimals: 0, not just below it
    [-1e-10, 1, 0],
    [-1e-9, 1, -1],
  ];
  test("the bin of a number, in decimal", () => {
    for (const [value, width, want] of cases) {
      expect({ bin_of: [value, width] }, null, want);
      expect({ bin_of: [{ var: "v" }, width] }, { v: value }, want);
    }
  });

  test("null for what is not a number", () => {
    for (const value of [null, "3", "", true, false, [1], { a: 1 }]) {
      expect({ bin_of: [{ var: "v" }, 0.5] }, { v: value }, null);
    }
    expect({ bin_of: [{ var: "missing" }, 0.5] }, {}, null);
  });

  test("the width is a positive number", () => {
    for (const width of [0, -1, -0.5, null, "1", true, [1]]) {
      raises({ bin_of: [1, width] }, null, InvalidArguments, "InvalidArguments");
      raises({ bin_of: [null, width] }, null, InvalidArguments, "InvalidArguments");
    }
    raises({ bin_of: [1] }, null, InvalidArguments, "InvalidArguments");
    raises({ bin_of: [1, 1, 1] }, null, InvalidArguments, "InvalidArguments");
    raises({ bin_of: [1e308, 1e-6] }, null, NotANumber, "NotANumber"); // beyond any double
  });
});

// -- static analysis and the registry ----------------------------------------------------------

describe("variables and OPERATORS", () => {
  test("variables lists record paths", () => {
    const paths = (rule) => [...variables(rule)].sort();
    const adult = { ">=": [{ var: "age" }, 18] };
    assert.deepEqual(paths({ and: [adult, { in: ["vip", { var: "tags" }] }] }), ["age", "tags"]);
    assert.deepEqual(paths({ map: [{ var: "items" }, { var: "qty" }] }), ["items"]);
    assert.deepEqual(paths({ map: [{ var: "items" }, { val: [[2], "rate"] }] }), ["items", "rate"]);
    assert.deepEqual(paths({ var: "" }), ["*"]);
    assert.deepEqual(paths({ var: { cat: ["a", { var: "k" }] } }), ["*", "k"]);
    assert.deepEqual(paths({ missing_some: [1, ["a", "b.c"]] }), ["a", "b.c"]);
    assert.deepEqual(paths({ val: ["a", "b"] }), ["a.b"]);
    assert.deepEqual(paths({ try: [{ var: "x" }, { var: "type" }] }), ["x"]);
    assert.deepEqual(paths({ preserve: { var: "x" } }), []);
    const total = { reduce: [{ var: "rows" }, { var: "current" }, { var: "start" }] };
    assert.deepEqual(paths(total), ["rows", "start"]);
  });

  test("OPERATORS names every operator and is read-only", () => {
    const names = ["var", "val", "exists", "??", "try", "throw", "preserve", "substr", "log"];
    const extensions = ["now", "today", "date_add", "days_between", "years_between"];
    extensions.push("hour_of", "weekday_of", "bin_of");
    for (const op of [...names, ...extensions, "contains", "is_empty"]) {
      assert.ok(OPERATORS.has(op), op);
    }
    assert.equal(OPERATORS.size, 51);
    assert.throws(() => OPERATORS.add("method"), TypeError);
    assert.equal(OPERATORS.has("method"), false);
  });
});
