// The rule editor's model (ui/static/rule-editor-model.js): what is saved is the rule as the
// app's JSON writes it, defaults left out; JSON pointers address the rule's parts; typed values
// read as JSON when they are JSON. Run with `node --test tests/ui/` (test_logic_js.py).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  compact,
  getAt,
  keyProblem,
  newAction,
  newTrigger,
  parseValue,
  pointer,
  setAt,
  showValue,
  splitPointer,
  triggerKind,
  variables,
} from "../../ui/static/rule-editor-model.js";

describe("compact: the rule as saved", () => {
  test("defaults the format fills in are left out", () => {
    const rule = {
      key: "r",
      enabled: true,
      priority: 0,
      if: true,
      label: "",
      on: { form: "visit", field: "seen", offset: "P0D", late: "run", every_year: false },
      then: [{ type: "webhook", url: "https://x", method: "POST", headers: {}, after: "" }],
    };
    assert.deepEqual(compact(rule), {
      key: "r",
      on: { form: "visit", field: "seen" },
      then: [{ type: "webhook", url: "https://x" }],
    });
  });

  test("values that differ from the defaults stay, key order aside", () => {
    const rule = {
      key: "r",
      enabled: false,
      priority: 10,
      on: { form: "visit", event: "updated", fields: ["pain"], to: null },
      if: { ">=": [{ var: "record.pain" }, 7] },
      then: [{ type: "webhook", url: "https://x", method: "PUT" }],
    };
    assert.deepEqual(compact(rule), rule);
  });

  test("`to` goes with `fields` and without them means nothing", () => {
    assert.deepEqual(compact({ on: { form: "v", event: "created", fields: [], to: 3 } }).on, { form: "v", event: "created" });
  });
});

describe("JSON pointers", () => {
  test("escape and split round-trip", () => {
    const path = pointer("then", 0, "template", "a/b~c");
    assert.equal(path, "/then/0/template/a~1b~0c");
    assert.deepEqual(splitPointer(path), ["then", "0", "template", "a/b~c"]);
  });

  test("set creates objects on the way; undefined removes", () => {
    const rule = { then: [{ type: "set" }] };
    setAt(rule, "/then/0/values/flag", "urgent");
    assert.equal(getAt(rule, "/then/0/values/flag"), "urgent");
    setAt(rule, "/then/0/values/flag", undefined);
    assert.deepEqual(rule.then[0].values, {});
    setAt(rule, "/then/0", undefined);
    assert.deepEqual(rule.then, []);
    assert.equal(getAt(rule, "/on/form"), undefined);
  });
});

describe("typed values", () => {
  test("JSON when it is JSON, else the text", () => {
    assert.equal(parseValue("7"), 7);
    assert.equal(parseValue("true"), true);
    assert.deepEqual(parseValue('{"var": "record.id"}'), { var: "record.id" });
    assert.equal(parseValue("urgent"), "urgent");
    assert.equal(parseValue("  "), "");
    assert.equal(showValue({ var: "x" }), '{"var":"x"}');
    assert.equal(showValue("text"), "text");
    assert.equal(showValue(undefined), "");
  });

  test("keys follow the format's pattern", () => {
    assert.equal(keyProblem("pain_alert"), null);
    assert.equal(keyProblem(""), "required");
    assert.equal(keyProblem("Pain"), "pattern");
    assert.equal(keyProblem("1x"), "pattern");
  });
});

describe("triggers, actions and variables", () => {
  test("the kind follows from the keys", () => {
    assert.equal(triggerKind({ form: "v", event: "created" }), "record");
    assert.equal(triggerKind({ form: "v", field: "d" }), "date");
    assert.equal(triggerKind({ form: "v", at: "09:00" }), "schedule");
  });

  test("a new date trigger takes the form's first date field", () => {
    const fields = [{ key: "name", type: "text" }, { key: "seen", type: "datetime" }];
    assert.deepEqual(newTrigger("date", "visit", fields), { form: "visit", field: "seen" });
    assert.deepEqual(newTrigger("record", "visit", fields), { form: "visit", event: "created" });
  });

  test("a new notify is in the app's locales, to its first role", () => {
    const action = newAction("notify", { locales: ["en", "zh-CN"], form: "visit", roles: [{ key: "doctor" }] });
    assert.deepEqual(action, {
      type: "notify",
      channel: "in_app",
      recipients: [{ role: "doctor" }],
      template: { en: "", "zh-CN": "" },
    });
  });

  test("variables: the form's fields and one hop through its relations", () => {
    const forms = [
      { key: "visit", fields: [{ key: "pain", label: "Pain", type: "integer" }, { key: "patient", label: "Patient", type: "relation", target: "patient" }] },
      { key: "patient", fields: [{ key: "name", label: "Name", type: "text" }, { key: "doctor", label: "Doctor", type: "relation", target: "staff" }] },
    ];
    assert.deepEqual(
      variables(forms, "visit").map((v) => v.name),
      ["record.id", "record.pain", "record.patient", "record.patient.name"],
    );
    assert.deepEqual(variables(forms, "nope"), []);
  });
});
