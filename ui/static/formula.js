// Formulas in spreadsheet words, to and from the JsonLogic the engines run (docs/forms.md,
// "Formulas in the designer"). Pure: no DOM, no i18n; the designer gives it the fields.
//
//   import { compile, decompile, FUNCTIONS } from "/static/formula.js";
//   const fields = [{key: "pain", name: "Pain score"}, {key: "dob", name: "Birth date"}];
//   compile('IF({Pain score} >= 7, "High", "Low")', fields)
//     // {ok: true, logic: {"if": [{">=": [{"var": "pain"}, 7]}, "High", "Low"]}}
//   decompile({"years_between": [{"var": "dob"}, {"today": []}]}, fields)
//     // 'DATEDIF({Birth date}, TODAY(), "Y")'
//
// The words: numbers and "strings" (JSON syntax), TRUE, FALSE, BLANK(), {field} (a field's
// name as `fields` gives it, else its key), + - * / % (binary, left to right, * / % before
// + -), unary -, comparisons = <> < <= > >= (one per level: a chain needs parentheses), and
// the functions in FUNCTIONS. Each form maps to exactly one JsonLogic form, so
//
//   compile(decompile(logic)) == logic   whenever decompile(logic) is not null,
//
// and decompile gives null for JsonLogic these words cannot say exactly (other operators,
// `var` with a default or an unknown path, lists, strict comparisons, ...); the designer then
// keeps the expression as JSON under "Advanced". A SUM of two values is shown as `a + b`
// (the same JsonLogic), so a formula may come back in equivalent, not identical, words.

/** Function name -> what it compiles to: the JsonLogic operator, or a special form. */
export const FUNCTIONS = {
  IF: { op: "if", args: "condition, then, else", min: 1 },
  SUM: { op: "+", args: "value, value, …", min: 1 },
  CONCAT: { op: "cat", args: "text, text, …", min: 0 },
  TODAY: { op: "today", args: "", min: 0, max: 0 },
  NOW: { op: "now", args: "", min: 0, max: 0 },
  DATEDIF: { special: "datedif", args: 'start, end, "Y" or "D"', min: 3, max: 3 },
  DATEADD: { op: "date_add", args: 'date, amount, "day"', min: 3, max: 3 },
  AND: { op: "and", args: "condition, condition, …", min: 1 },
  OR: { op: "or", args: "condition, condition, …", min: 1 },
  NOT: { op: "!", args: "condition", min: 1, max: 1 },
  MIN: { op: "min", args: "value, value, …", min: 1 },
  MAX: { op: "max", args: "value, value, …", min: 1 },
  ISBLANK: { op: "is_empty", args: "value", min: 1, max: 1 },
  CONTAINS: { op: "contains", args: "text or list, value", min: 2, max: 2 },
  BLANK: { special: "blank", args: "", min: 0, max: 0 },
};

const DATEDIF_UNITS = { Y: "years_between", D: "days_between" };
const BINARY = { "+": 2, "-": 2, "*": 3, "/": 3, "%": 3 }; // operator -> precedence
const COMPARISONS = { "=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=" };
const COMPARISON_WORDS = Object.fromEntries(Object.entries(COMPARISONS).map(([word, op]) => [op, word]));
const OPERATOR_OF_FUNCTION = new Map(
  Object.entries(FUNCTIONS).filter(([, spec]) => spec.op).map(([name, spec]) => [spec.op, name]),
);

/** A formula that cannot be read: `template` with `values` says why (English; pages
 * translate the template), `at` is the character offset. */
export class FormulaError extends Error {
  constructor(template, at, values = {}) {
    super(template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole)));
    this.template = template;
    this.values = values;
    this.at = at;
  }
}

// -- reading ------------------------------------------------------------------------------

const TOKEN = new RegExp(
  [
    String.raw`(?<space>\s+)`,
    String.raw`(?<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)`,
    String.raw`(?<string>"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")`,
    String.raw`(?<field>\{[^{}]*\})`,
    String.raw`(?<name>[A-Za-z_][A-Za-z0-9_]*)`,
    String.raw`(?<op><=|>=|<>|==|!=|[-+*/%=<>(),])`,
  ].join("|"),
  "y",
);

function tokenize(text) {
  const tokens = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (!match) {
      if (text[at] === '"') throw new FormulaError("A text in quotes is not closed.", at);
      if (text[at] === "{") throw new FormulaError("A field name in { } is not closed.", at);
      throw new FormulaError("“{token}” cannot be used here.", at, { token: text[at] });
    }
    const [kind, value] = Object.entries(match.groups).find(([, v]) => v !== undefined);
    if (kind !== "space") tokens.push({ kind, value, at });
  }
  tokens.push({ kind: "end", value: "", at: text.length });
  return tokens;
}

/** Find a field by the name written in braces: its name, then its key, then ignoring case. */
function resolveField(written, fields, at) {
  const wanted = written.trim();
  const exact = fields.find((f) => f.name === wanted) || fields.find((f) => f.key === wanted);
  if (exact) return exact.key;
  const lower = wanted.toLowerCase();
  const loose = fields.filter((f) => String(f.name).toLowerCase() === lower || (f.names || []).some((n) => n.toLowerCase() === lower));
  if (loose.length === 1) return loose[0].key;
  throw new FormulaError("There is no field named “{name}”.", at, { name: wanted });
}

function parser(text, fields) {
  const tokens = tokenize(text);
  let position = 0;
  const peek = () => tokens[position];
  const next = () => tokens[position++];
  const expect = (value, template, values) => {
    const token = next();
    if (token.value !== value || token.kind === "string") throw new FormulaError(template, token.at, values);
    return token;
  };

  function comparison() {
    const left = additive();
    const token = peek();
    if (token.kind === "op" && (token.value in COMPARISONS || token.value === "==" || token.value === "!=")) {
      next();
      const right = additive();
      const op = token.value === "==" ? "==" : token.value === "!=" ? "!=" : COMPARISONS[token.value];
      const after = peek();
      if (after.kind === "op" && (after.value in COMPARISONS || after.value === "==" || after.value === "!=")) {
        throw new FormulaError("Use parentheses to compare a comparison.", after.at);
      }
      return { [op]: [left, right] };
    }
    return left;
  }

  function binary(level, operand) {
    let left = operand();
    for (;;) {
      const token = peek();
      if (token.kind !== "op" || BINARY[token.value] !== level) return left;
      next();
      left = { [token.value]: [left, operand()] };
    }
  }

  const additive = () => binary(2, multiplicative);
  const multiplicative = () => binary(3, unary);

  function unary() {
    const token = peek();
    if (token.kind === "op" && token.value === "-") {
      next();
      const after = peek();
      if (after.kind === "number") {
        next();
        return -Number(after.value);
      }
      return { "-": [unary()] };
    }
    return primary();
  }

  function call(name, at) {
    const spec = FUNCTIONS[name.toUpperCase()];
    if (!spec) throw new FormulaError("There is no function named {name}.", at, { name });
    expect("(", "Expected “(” after {name}.", { name: name.toUpperCase() });
    const args = [];
    if (!(peek().kind === "op" && peek().value === ")")) {
      for (;;) {
        args.push(comparison());
        const token = peek();
        if (token.kind === "op" && token.value === ",") {
          next();
          continue;
        }
        break;
      }
    }
    expect(")", "Expected “)” or “,”.");
    const upper = name.toUpperCase();
    if (args.length < spec.min || (spec.max !== undefined && args.length > spec.max)) {
      if (!spec.args) throw new FormulaError("{name} takes nothing between its parentheses.", at, { name: upper });
      throw new FormulaError("{name} takes ({args}).", at, { name: upper, args: spec.args });
    }
    if (spec.special === "blank") return null;
    if (spec.special === "datedif") {
      const unit = args[2];
      if (typeof unit !== "string" || !(unit.toUpperCase() in DATEDIF_UNITS)) {
        throw new FormulaError('DATEDIF counts "Y" (whole years) or "D" (days).', at);
      }
      return { [DATEDIF_UNITS[unit.toUpperCase()]]: [args[0], args[1]] };
    }
    return { [spec.op]: args };
  }

  function primary() {
    const token = next();
    if (token.kind === "number") return Number(token.value);
    if (token.kind === "string") return JSON.parse(token.value);
    if (token.kind === "field") return { var: resolveField(token.value.slice(1, -1), fields, token.at) };
    if (token.kind === "name") {
      const upper = token.value.toUpperCase();
      if ((upper === "TRUE" || upper === "FALSE") && !(peek().kind === "op" && peek().value === "(")) return upper === "TRUE";
      return call(token.value, token.at);
    }
    if (token.kind === "op" && token.value === "(") {
      const inner = comparison();
      expect(")", "Expected “)”.");
      return inner;
    }
    if (token.kind === "end") throw new FormulaError("The formula ends too soon.", token.at);
    throw new FormulaError("“{token}” cannot be used here.", token.at, { token: token.value });
  }

  return {
    formula() {
      const result = comparison();
      const rest = peek();
      if (rest.kind !== "end") throw new FormulaError("“{token}” cannot follow here.", rest.at, { token: rest.value });
      return result;
    },
  };
}

/**
 * The JsonLogic of a formula over `fields` ([{key, name, names?}]: `name` as written in braces,
 * `names` other accepted spellings such as the label in another language).
 * {ok: true, logic} (logic undefined for an empty formula) or {ok: false, message, template,
 * values, at} (`message` is `template` filled with `values`).
 */
export function compile(text, fields = []) {
  if (!String(text ?? "").trim()) return { ok: true, logic: undefined };
  try {
    return { ok: true, logic: parser(String(text), fields).formula() };
  } catch (error) {
    if (error instanceof FormulaError) {
      return { ok: false, message: error.message, template: error.template, values: error.values, at: error.at };
    }
    throw error;
  }
}

// -- writing back -------------------------------------------------------------------------

class Unsayable extends Error {}

function operation(node) {
  if (node === null || typeof node !== "object" || Array.isArray(node)) return null;
  const keys = Object.keys(node);
  if (keys.length !== 1) throw new Unsayable();
  return [keys[0], node[keys[0]]];
}

function fieldWords(key, fields) {
  if (typeof key !== "string") throw new Unsayable();
  const byKey = fields.find((f) => f.key === key);
  if (!byKey) throw new Unsayable();
  const name = String(byKey.name ?? "");
  // a name that another field also has (or that is another field's key) is written as the key
  const clash = fields.some((f) => f !== byKey && (f.name === name || f.key === name));
  const usable = name && !clash && !/[{}]/.test(name) && name.trim() === name;
  if (usable) return `{${name}}`;
  // the key, unless another field goes by that name (the words would mean that one)
  if (fields.some((f) => f !== byKey && f.name === key) || /[{}]/.test(key)) throw new Unsayable();
  return `{${key}}`;
}

// precedence of what `node` is written as: 1 comparison, 2 + -, 3 * / %, 4 unary, 5 primary
function say(node, fields) {
  if (node === null) return { text: "BLANK()", level: 5 };
  if (typeof node === "boolean") return { text: node ? "TRUE" : "FALSE", level: 5 };
  if (typeof node === "number") {
    if (!Number.isFinite(node)) throw new Unsayable();
    return { text: JSON.stringify(node), level: node < 0 || Object.is(node, -0) ? 4 : 5 };
  }
  if (typeof node === "string") return { text: JSON.stringify(node), level: 5 };
  if (Array.isArray(node)) throw new Unsayable();
  const [op, args] = operation(node);
  if (op === "var") return { text: fieldWords(args, fields), level: 5 };
  if (!Array.isArray(args)) throw new Unsayable();
  const parts = (list) => list.map((arg) => say(arg, fields).text).join(", ");
  if (op in COMPARISON_WORDS && args.length === 2) {
    const [left, right] = args.map((arg) => say(arg, fields));
    const wrap = (side) => (side.level <= 1 ? `(${side.text})` : side.text);
    return { text: `${wrap(left)} ${COMPARISON_WORDS[op]} ${wrap(right)}`, level: 1 };
  }
  if (op in BINARY && args.length === 2) {
    const level = BINARY[op];
    const left = say(args[0], fields);
    const right = say(args[1], fields);
    const leftText = left.level < level ? `(${left.text})` : left.text;
    // left to right: a right operand of the same level needs parentheses; a negative number
    // after a binary operator reads as the literal (it compiles back to the literal)
    const rightText = right.level <= level ? `(${right.text})` : right.text;
    return { text: `${leftText} ${op} ${rightText}`, level };
  }
  if (op === "-" && args.length === 1) {
    const inner = say(args[0], fields);
    // -5 would read back as the literal: a negated literal keeps its parentheses
    const text = inner.level < 4 || typeof args[0] === "number" ? `-(${inner.text})` : `-${inner.text}`;
    return { text, level: 4 };
  }
  if (op === "years_between" || op === "days_between") {
    if (args.length !== 2) throw new Unsayable();
    return { text: `DATEDIF(${parts(args)}, "${op === "years_between" ? "Y" : "D"}")`, level: 5 };
  }
  const name = OPERATOR_OF_FUNCTION.get(op);
  if (!name) throw new Unsayable();
  const spec = FUNCTIONS[name];
  if (args.length < spec.min || (spec.max !== undefined && args.length > spec.max)) throw new Unsayable();
  // SUM of two is `a + b` above only when it has two; one or three and more stay SUM(...)
  return { text: `${name}(${parts(args)})`, level: 5 };
}

/** The formula's words over `fields`, or null when these words cannot say it exactly. */
export function decompile(logic, fields = []) {
  if (logic === undefined) return "";
  try {
    const text = say(logic, fields).text;
    const back = compile(text, fields);
    // the promise: the words compile back to the very same JsonLogic
    return back.ok && sameJson(back.logic, logic) ? text : null;
  } catch (error) {
    if (error instanceof Unsayable) return null;
    throw error;
  }
}

function sameJson(a, b) {
  if (a === b) return !(typeof a === "number" && Object.is(a, -0) !== Object.is(b, -0));
  if (typeof a !== typeof b || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  if (typeof a !== "object") return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && sameJson(a[key], b[key]));
}

// -- suggestions while typing --------------------------------------------------------------

/**
 * What to offer at `caret` in `text`: after an open "{", the fields whose name contains what
 * follows it; in a word, the functions it begins. {kind: "field"|"function", from, items}
 * (`from`: where the replaced text starts) or null.
 */
export function suggest(text, caret, fields) {
  const before = text.slice(0, caret);
  const open = before.lastIndexOf("{");
  if (open >= 0 && before.indexOf("}", open) < 0) {
    const typed = before.slice(open + 1).toLowerCase();
    const items = fields
      .filter((f) => String(f.name).toLowerCase().includes(typed) || f.key.includes(typed))
      .map((f) => ({ label: f.name || f.key, insert: `{${f.name || f.key}}`, key: f.key }));
    return { kind: "field", from: open, items };
  }
  const word = /[A-Za-z_]+$/.exec(before);
  if (!word || (word.index > 0 && /[A-Za-z0-9_"]/.test(before[word.index - 1]))) return null;
  const typed = word[0].toUpperCase();
  const items = Object.entries(FUNCTIONS)
    .filter(([name]) => name.startsWith(typed) && name !== typed)
    .map(([name, spec]) => ({ label: `${name}(${spec.args})`, insert: `${name}(`, key: name }));
  return items.length ? { kind: "function", from: word.index, items } : null;
}
