// Evaluate a batch of cases with ui/static/logic.js, for tests/ui/test_logic_js.py.
//
//   node tests/ui/evaluate_cases.mjs CASES.json
//
// CASES.json is a list of {rule, data, now?}. Prints one JSON document:
// {"operators": [...], "results": [{variables, result} | {variables, error: {code, value}}]}.
// Anything but a LogicError escaping evaluate() is reported as {"crash": message}.

import { readFileSync } from "node:fs";

import { evaluate, LogicError, OPERATORS, variables } from "../../ui/static/logic.js";

// The `log` operator writes to the console; stdout carries the answer.
console.log = () => {};

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = cases.map(({ rule, data, now }) => {
  const outcome = { variables: [...variables(rule)] };
  try {
    outcome.result = evaluate(rule, data, now ? { now } : {});
  } catch (error) {
    if (error instanceof LogicError) outcome.error = { code: error.code, value: error.errorValue };
    else outcome.crash = String(error?.stack ?? error);
  }
  return outcome;
});
process.stdout.write(JSON.stringify({ operators: [...OPERATORS], results }));
