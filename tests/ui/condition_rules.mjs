// Every rule the condition builder (ui/static/conditions.js) writes, as JSON on stdout, for
// tests/ui/test_conditions_js.py: per place (the designer's visibility, the list's filter),
// per field type and operator, alone and joined.
import { FILTER, VISIBILITY, buildCondition, needsValue } from "../../ui/static/conditions.js";

const SAMPLES = {
  text: "Qin", textarea: "note", email: "a@b.cn", phone: "138", url: "https://x.cn", number: 1.5,
  integer: 7, boolean: true, date: "2024-05-01", datetime: "2024-05-01T08:00:00Z", time: "09:30",
  select: "a", multiselect: "a", relation: "0190a0b0c0d0e0f0", computed: 3, file: "x", image: "x", table: "x",
};

const rules = [];
for (const [place, profile] of [["visibility", VISIBILITY], ["filter", FILTER]]) {
  for (const [type, sample] of Object.entries(SAMPLES)) {
    const ops = profile.operators(type);
    const rows = ops.map((op) => ({ field: "f", op, value: needsValue(op) ? sample : null }));
    for (const row of rows) rules.push({ place, type, rule: buildCondition({ join: "all", rows: [row] }) });
    rules.push({ place, type, rule: buildCondition({ join: "any", rows }) });
  }
}
process.stdout.write(JSON.stringify(rules));
