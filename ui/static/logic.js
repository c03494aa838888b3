// Formloom's condition language in the browser: JsonLogic plus Formloom's extensions.
//
// A plain ES module (no build step, no dependencies) that mirrors the server's evaluator,
// formloom.engines.logic (evaluator.py, coercion.py, dates.py, bins.py, errors.py,
// analysis.py), so that the designer preview and generated forms show exactly what the server
// will compute:
//
//   import { evaluate, variables, LogicError, OPERATORS } from "/static/logic.js";
//   evaluate({">=": [{"var": "age"}, 18]}, {age: 42});                 // true
//   evaluate({"today": []}, null, {now: "2024-03-01T00:30:00+08:00"});  // "2024-03-01"
//   variables({"map": [{"var": "items"}, {"var": "qty"}]});             // Set {"items"}
//
// The rules are documented in docs/jsonlogic.md; the few places where a browser cannot match
// the server (integers beyond 2^53, nesting limits) are in its "In the browser" section.
// Invariants, as on the server: evaluation is pure (the clock is read at most once, and only
// when no `now` is given), values are JSON values, and every failure is a LogicError.
// tests/ui/test_logic_js.py checks this module against the Python evaluator case by case.

// ---------------------------------------------------------------------------------------------
// Errors (errors.py)
// ---------------------------------------------------------------------------------------------

/** A rule could not be evaluated: a bad rule, bad input or a thrown error. */
export class LogicError extends Error {
  constructor(message = "cannot evaluate rule", options = undefined) {
    super(message, options);
    this.name = this.code;
  }

  /** The Python class this error mirrors ("LogicError", "InvalidArguments", ...). */
  get code() {
    return "LogicError";
  }

  /** The short error kind, as in Python's `LogicError.kind`. */
  get kind() {
    return "Error";
  }

  /** The JSON value a `try` fallback sees as its data (Python's `error_value`). */
  get errorValue() {
    return { type: this.kind };
  }
}

/** An operator was called with arguments it cannot accept (wrong shape or count). */
export class InvalidArguments extends LogicError {
  get code() {
    return "InvalidArguments";
  }

  get kind() {
    return "Invalid Arguments";
  }
}

/** Arithmetic or a comparison has no numeric answer (plain JavaScript would give NaN). */
export class NotANumber extends LogicError {
  get code() {
    return "NotANumber";
  }

  get kind() {
    return "NaN";
  }
}

/** The rule uses an operator this evaluator does not know (`operator`). */
export class UnknownOperator extends LogicError {
  constructor(operator) {
    super(`unknown operator ${describe(operator)}`);
    this.operator = operator;
  }

  get code() {
    return "UnknownOperator";
  }

  get kind() {
    return "Unknown Operator";
  }
}

/** Raised by the `throw` operator; `value` is the thrown error object. */
export class ThrownError extends LogicError {
  constructor(value) {
    const thrown = isObject(value) ? value : { type: value ?? null };
    const type = thrown.type;
    super(`rule threw ${typeof type === "string" ? type : describe(thrown)}`);
    this.value = thrown;
  }

  get code() {
    return "ThrownError";
  }

  get kind() {
    return typeof this.value.type === "string" ? this.value.type : "Error";
  }

  get errorValue() {
    return this.value;
  }
}

// ---------------------------------------------------------------------------------------------
// Values (coercion.py). JSON values only; `undefined` counts as null.
// ---------------------------------------------------------------------------------------------

const NULL = 0;
const BOOL = 1;
const NUM = 2;
const STR = 3;
const LIST = 4;
const OBJ = 5;

function kindOf(value) {
  if (value === null || value === undefined) return NULL;
  switch (typeof value) {
    case "boolean":
      return BOOL;
    case "number":
      return NUM;
    case "string":
      return STR;
    default:
      return Array.isArray(value) ? LIST : OBJ;
  }
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** JsonLogic truthiness: `{}` is truthy; `[]`, `""`, `0` and `null` are not. */
export function truthy(value) {
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object" && value !== null) return true;
  return Boolean(value);
}

function describe(value) {
  let text;
  try {
    text = typeof value === "string" ? `"${value}"` : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

// Python's str.strip() whitespace: JavaScript's trim() differs (it strips U+FEFF, keeps
// U+001C..U+001F and U+0085), and "\u001f12" must not be a number on one side only.
const PY_SPACE =
  "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "g");

function pyStrip(text) {
  return text.replace(PY_STRIP, "");
}

// eslint-disable-next-line no-control-regex -- ASCII is U+0000 to U+007F, NUL included
const ASCII = /^[\x00-\x7f]*$/;
const DIGITS = /^[0-9]+$/;
const DECIMAL = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const PREFIXED = /^0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)$/;

/** `Number(text)` as JavaScript computes it, or null where JavaScript gives NaN/Infinity. */
function parseNumber(text) {
  const s = pyStrip(text);
  if (s === "") return 0;
  if (!ASCII.test(s) || s.includes("_")) return null;
  const digits = s[0] === "+" || s[0] === "-" ? s.slice(1) : s;
  if (digits.length < 400 && DIGITS.test(digits)) {
    return Number(s) + 0; // Python parses an int here: no negative zero
  }
  if (DECIMAL.test(s)) {
    const value = Number(s);
    return Number.isFinite(value) ? value : null;
  }
  if (PREFIXED.test(s)) return Number(s);
  return null;
}

function toNumber(value, operator) {
  switch (kindOf(value)) {
    case NUM:
      return value;
    case BOOL:
      return value ? 1 : 0;
    case NULL:
      return 0;
    case STR: {
      const number = parseNumber(value);
      if (number !== null) return number;
    }
  }
  throw new NotANumber(`'${operator}': ${describe(value)} is not a number`);
}

/** An arithmetic result: non-finite results raise (JSON has no NaN or Infinity). */
function tidy(value, operator) {
  if (!Number.isFinite(value)) {
    throw new NotANumber(`'${operator}': the result is not a finite number`);
  }
  return value === 0 ? 0 : value; // no negative zero, like Python's int results
}

/** A value as text, the way `cat` joins it: `null` -> "", `1.0` -> "1", lists comma-joined. */
function toText(value) {
  switch (kindOf(value)) {
    case STR:
      return value;
    case NULL:
      return "";
    case BOOL:
      return value ? "true" : "false";
    case NUM:
      return String(value);
    case LIST:
      return value.map(toText).join(",");
    default:
      return "[object Object]";
  }
}

/** JSON identity: same type and value (deep); `1 === 1.0` but `1 !== true`. */
function strictEqual(a, b) {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka !== kb) return false;
  if (ka === LIST) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!strictEqual(a[i], b[i])) return false;
    return true;
  }
  if (ka === OBJ) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    for (const key of keys) {
      if (!Object.hasOwn(b, key) || !strictEqual(a[key], b[key])) return false;
    }
    return true;
  }
  return ka === NULL || a === b;
}

function equalsNull(value, kind) {
  if (kind === BOOL) return !value;
  if (kind === STR) return value === "";
  return value === 0;
}

/** JsonLogic `==` (compat-tables semantics, not JavaScript's; see docs/jsonlogic.md). */
function looseEqual(a, b) {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka === LIST || ka === OBJ || kb === LIST || kb === OBJ) {
    throw new NotANumber("'==': lists and objects cannot be compared with ==");
  }
  if (ka === kb) return ka === NULL || a === b;
  if (ka === NULL) return equalsNull(b, kb);
  if (kb === NULL) return equalsNull(a, ka);
  if (ka === STR && kb === BOOL) {
    const number = parseNumber(a);
    return number !== null && number === (b ? 1 : 0);
  }
  if (kb === STR && ka === BOOL) {
    const number = parseNumber(b);
    return number !== null && number === (a ? 1 : 0);
  }
  return toNumber(a, "==") === toNumber(b, "==");
}

// Python orders strings by code point, JavaScript by UTF-16 unit; they differ only when
// U+E000..U+FFFF meets a character beyond U+FFFF. Remapping the first differing unit fixes it.
function unitRank(unit) {
  if (unit < 0xd800) return unit;
  return unit <= 0xdfff ? unit + 0x2000 : unit - 0x800;
}

function compareText(a, b) {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitRank(x) < unitRank(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

/**
 * Compare `a` and `b` for `<` and friends: -1, 0 or 1, or null when the answer is simply false.
 * Two strings compare as text, anything else as numbers; lists, objects and a number against
 * a non-numeric string raise NotANumber.
 */
function order(a, b, operator) {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka === NUM && kb === NUM) return a < b ? -1 : a > b ? 1 : 0;
  if (ka === STR && kb === STR) return compareText(a, b);
  if (ka === LIST || ka === OBJ || kb === LIST || kb === OBJ) {
    throw new NotANumber(`'${operator}': lists and objects cannot be ordered`);
  }
  const x = ka === STR ? parseNumber(a) : toNumber(a, operator);
  const y = kb === STR ? parseNumber(b) : toNumber(b, operator);
  if (x === null || y === null) {
    if (ka === NUM || kb === NUM) {
      throw new NotANumber(`'${operator}': ${describe(x === null ? a : b)} is not a number`);
    }
    return null;
  }
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Dates (dates.py). Dates are ordinals (1 = 0001-01-01, as Python's date.toordinal());
// datetimes are BigInt microseconds since 0001-01-01T00:00 in their own offset, plus the offset.
// ---------------------------------------------------------------------------------------------

const DAY_US = 86_400_000_000n;
const MAX_ORDINAL = 3_652_059; // 9999-12-31
const MAX_LOCAL_US = BigInt(MAX_ORDINAL) * DAY_US;
const UNIX_EPOCH_US = 719_162n * DAY_US; // 1970-01-01T00:00 from 0001-01-01T00:00
const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DAYS_BEFORE_MONTH = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
const UNITS = ["second", "minute", "hour", "day", "week", "month", "year"];
const SECONDS = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800 };

function isLeap(year) {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysInMonth(year, month) {
  return month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month];
}

function toOrdinal(year, month, day) {
  const y = year - 1;
  const before = y * 365 + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400);
  return before + DAYS_BEFORE_MONTH[month] + (month > 2 && isLeap(year) ? 1 : 0) + day;
}

/** [year, month, day] of an ordinal (Python's _ord2ymd). */
function fromOrdinal(ordinal) {
  let n = ordinal - 1;
  const n400 = Math.floor(n / 146_097);
  n -= n400 * 146_097;
  const n100 = Math.floor(n / 36_524);
  n -= n100 * 36_524;
  const n4 = Math.floor(n / 1_461);
  n -= n4 * 1_461;
  const n1 = Math.floor(n / 365);
  n -= n1 * 365;
  const year = n400 * 400 + 1 + n100 * 100 + n4 * 4 + n1;
  if (n1 === 4 || n100 === 4) return [year - 1, 12, 31];
  const leap = n1 === 3 && (n4 !== 24 || n100 === 3);
  let month = (n + 50) >> 5;
  let preceding = DAYS_BEFORE_MONTH[month] + (month > 2 && leap ? 1 : 0);
  if (preceding > n) {
    month -= 1;
    preceding -= DAYS_IN_MONTH[month] + (month === 2 && leap ? 1 : 0);
  }
  return [year, month, n - preceding + 1];
}

function pad(number, width) {
  return String(number).padStart(width, "0");
}

function isoDate(ordinal) {
  const [year, month, day] = fromOrdinal(ordinal);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

function dateOf(moment) {
  return Number(moment.local / DAY_US) + 1;
}

/** The stored datetime format: UTC, whole seconds, "Z" (Python's strftime, see below). */
function formatDatetime(moment, fail) {
  const utc = moment.local - moment.offset;
  if (utc < 0n || utc >= MAX_LOCAL_US) fail();
  const [year, month, day] = fromOrdinal(Number(utc / DAY_US) + 1);
  const seconds = Number((utc % DAY_US) / 1_000_000n);
  const hh = Math.floor(seconds / 3600);
  const mm = Math.floor(seconds / 60) % 60;
  // glibc's %Y does not pad years before 1000, and the server formats with strftime.
  const time = `${pad(hh, 2)}:${pad(mm, 2)}:${pad(seconds % 60, 2)}`;
  return `${year}-${pad(month, 2)}-${pad(day, 2)}T${time}Z`;
}

// --- Python 3.11's datetime.fromisoformat (the C implementation), byte for byte. ------------

const ENCODER = new TextEncoder();
const ISO_DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

// Python cannot encode a lone surrogate as UTF-8, so such a string is never a datetime.
function hasLoneSurrogate(text) {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i += 1;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return true;
    }
  }
  return false;
}

function byteAt(bytes, i) {
  return i < bytes.length ? bytes[i] : 0; // C strings end with NUL
}

function isDigitByte(c) {
  return c >= 48 && c <= 57;
}

function parseDigits(bytes, p, count) {
  let value = 0;
  for (let i = 0; i < count; i++) {
    const c = byteAt(bytes, p + i);
    if (!isDigitByte(c)) return null;
    value = value * 10 + (c - 48);
  }
  return value;
}

const FRACTION_SCALE = [0, 100000, 10000, 1000, 100, 10, 1];

// HH[:?MM[:?SS[{.,}ffffff...]]] between p and end; rv < 0 on error, 1 if text follows.
function parseClock(bytes, p, end) {
  const values = [0, 0, 0, 0];
  let separated = true;
  let i = 0;
  for (; i < 3; i++) {
    const value = parseDigits(bytes, p, 2);
    if (value === null) return { rv: -3 };
    values[i] = value;
    p += 2;
    const c = byteAt(bytes, p);
    p += 1;
    if (i === 0) separated = c === 58; // ':'
    if (p >= end) return { rv: c !== 0 ? 1 : 0, values };
    if (separated && c === 58) continue;
    if (c === 46 || c === 44) break; // '.' or ','
    if (!separated) {
      p -= 1;
    } else {
      return { rv: -4 };
    }
  }
  const remaining = end - p;
  const count = Math.min(remaining, 6);
  const fraction = parseDigits(bytes, p, count);
  if (fraction === null) return { rv: -3 };
  values[3] = fraction * FRACTION_SCALE[count];
  p += count;
  while (isDigitByte(byteAt(bytes, p))) p += 1;
  return { rv: byteAt(bytes, p) !== 0 ? 1 : 0, values };
}

function parseTime(bytes, start) {
  const end = bytes.length;
  let tz = start;
  do {
    const c = byteAt(bytes, tz);
    if (c === 90 || c === 43 || c === 45) break; // 'Z' '+' '-'
  } while (++tz < end);
  const clock = parseClock(bytes, start, tz);
  if (clock.rv < 0) return null;
  if (tz === end) return clock.rv === 1 ? null : { clock: clock.values, offset: 0n };
  if (byteAt(bytes, tz) === 90) {
    return byteAt(bytes, tz + 1) !== 0 ? null : { clock: clock.values, offset: 0n };
  }
  const sign = byteAt(bytes, tz) === 45 ? -1n : 1n;
  const zone = parseClock(bytes, tz + 1, end);
  if (zone.rv !== 0) return null;
  const [h, m, s, us] = zone.values;
  const seconds = BigInt(h * 3600 + m * 60 + s);
  // Python: a zero-second offset is UTC whatever its microseconds; others lie within ±24h.
  const offset = seconds === 0n ? 0n : sign * (seconds * 1_000_000n + BigInt(us));
  if (offset <= -DAY_US || offset >= DAY_US) return null;
  return { clock: clock.values, offset };
}

function validDate(year, month, day) {
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

function isDateText(text) {
  return text.length === 10 && text[4] === "-" && text[7] === "-";
}

function invalidTemporal(value, operator) {
  return new InvalidArguments(
    `'${operator}': ${describe(value)} is not an ISO date (YYYY-MM-DD) ` +
      "or datetime (YYYY-MM-DDTHH:MM:SSZ)",
  );
}

/** A date ({ordinal}) or a datetime ({local, offset}) from its ISO text; null if malformed. */
function parseTemporalText(value) {
  if (isDateText(value)) {
    if (!ISO_DATE.test(value)) return null;
    const [year, month, day] = value.split("-").map(Number);
    return validDate(year, month, day) ? { ordinal: toOrdinal(year, month, day) } : null;
  }
  if (!(value.length > 10 && isDateText(value.slice(0, 10)) && "Tt ".includes(value[10]))) {
    return null;
  }
  const head = value.slice(0, 10);
  if (!ISO_DATE.test(head) || hasLoneSurrogate(value)) return null;
  const [year, month, day] = head.split("-").map(Number);
  const time = parseTime(ENCODER.encode(value), 11);
  if (time === null || !validDate(year, month, day)) return null;
  const [hh, mm, ss, us] = time.clock;
  if (hh > 23 || mm > 59 || ss > 59) return null;
  const local =
    BigInt(toOrdinal(year, month, day) - 1) * DAY_US +
    BigInt((hh * 60 + mm) * 60 + ss) * 1_000_000n +
    BigInt(us);
  return { local, offset: time.offset };
}

function parseTemporal(value, operator) {
  if (typeof value !== "string") {
    throw new InvalidArguments(
      `'${operator}': expected an ISO date or datetime string, got ${describe(value)}`,
    );
  }
  const moment = parseTemporalText(value);
  if (moment === null) throw invalidTemporal(value, operator);
  return moment;
}

function calendarDate(value, operator) {
  const moment = parseTemporal(value, operator);
  return moment.ordinal ?? dateOf(moment);
}

function amountOf(value, operator) {
  if (typeof value === "number") return value;
  if (typeof value === "string") {
    const number = parseNumber(value);
    if (number !== null) return number;
  }
  throw new InvalidArguments(`'${operator}': the amount ${describe(value)} is not a number`);
}

function unitOf(value, operator) {
  if (typeof value === "string") {
    let unit = pyStrip(value).toLowerCase();
    if (unit.endsWith("s") && UNITS.includes(unit.slice(0, -1))) unit = unit.slice(0, -1);
    if (UNITS.includes(unit)) return unit;
  }
  throw new InvalidArguments(
    `'${operator}': unit must be one of ${UNITS.join(", ")}; got ${describe(value)}`,
  );
}

function outOfRange() {
  throw new InvalidArguments("'date_add': the result is outside years 1-9999");
}

/** [year, month, day] moved by whole months, clamped to the target month's last day. */
function addMonths([year, month, day], months) {
  const index = year * 12 + (month - 1) + months;
  const newYear = Math.floor(index / 12);
  if (!(newYear >= 1 && newYear <= 9999)) outOfRange();
  const newMonth = index - newYear * 12 + 1;
  return toOrdinal(newYear, newMonth, Math.min(day, daysInMonth(newYear, newMonth)));
}

// Python's round(): half away from zero.
function roundHalfAway(x) {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** timedelta(seconds=x) in microseconds, rounded the way CPython's constructor rounds. */
function secondsToMicros(x) {
  if (!Number.isFinite(x)) outOfRange();
  const whole = Math.trunc(x);
  let total = BigInt(whole) * 1_000_000n;
  const fraction = x - whole;
  if (fraction === 0) return total;
  const scaled = fraction * 1e6;
  const micros = Math.trunc(scaled);
  total += BigInt(micros);
  const leftover = scaled - micros;
  if (leftover !== 0) {
    let rounded = roundHalfAway(leftover);
    if (Math.abs(rounded - leftover) === 0.5) {
      const odd = Number(total & 1n);
      rounded = 2 * roundHalfAway((leftover + odd) * 0.5) - odd;
    }
    total += BigInt(rounded);
  }
  return total;
}

function dateAdd(value, amount, unit) {
  if (value == null || amount == null || unit == null) return null;
  const op = "date_add";
  const moment = parseTemporal(value, op);
  const count = amountOf(amount, op);
  const name = unitOf(unit, op);
  const whole = Number.isInteger(count);
  if (name === "month" || name === "year") {
    if (!whole) throw new InvalidArguments(`'${op}': cannot add a fraction of a ${name}`);
    const months = count * (name === "year" ? 12 : 1);
    if (moment.ordinal !== undefined) {
      return isoDate(addMonths(fromOrdinal(moment.ordinal), months));
    }
    const ordinal = addMonths(fromOrdinal(dateOf(moment)), months);
    const local = BigInt(ordinal - 1) * DAY_US + (moment.local % DAY_US);
    return formatDatetime({ local, offset: moment.offset }, outOfRange);
  }
  if (moment.ordinal === undefined) {
    const local = moment.local + secondsToMicros(count * SECONDS[name]);
    if (local < 0n || local >= MAX_LOCAL_US) outOfRange();
    return formatDatetime({ local, offset: moment.offset }, outOfRange);
  }
  if ((name !== "day" && name !== "week") || !whole) {
    throw new InvalidArguments(
      `'${op}': ${describe(value)} is a date; adding ${describe(count)} ${name}(s) ` +
        "needs a datetime (or whole days/weeks)",
    );
  }
  const ordinal = moment.ordinal + count * (name === "week" ? 7 : 1);
  if (!(ordinal >= 1 && ordinal <= MAX_ORDINAL)) outOfRange();
  return isoDate(ordinal);
}

function daysBetween(a, b) {
  if (a == null || b == null) return null;
  const end = calendarDate(b, "days_between");
  return end - calendarDate(a, "days_between");
}

function wholeYears(start, end) {
  const [y1, m1, d1] = fromOrdinal(start);
  const [y2, m2, d2] = fromOrdinal(end);
  return y2 - y1 - (m2 < m1 || (m2 === m1 && d2 < d1) ? 1 : 0);
}

function yearsBetween(a, b) {
  if (a == null || b == null) return null;
  const start = calendarDate(a, "years_between");
  const end = calendarDate(b, "years_between");
  return end < start ? -wholeYears(end, start) : wholeYears(start, end);
}

// hour_of / weekday_of: an instant's wall clock in an IANA zone, read with Intl (the browser's
// copy of the zone database, as zoneinfo is the server's). A date is midnight: hour 0.
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;
const CLOCKS = new Map();
const ISO_WEEKDAYS = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

function clockOf(zone, operator) {
  let clock = typeof zone === "string" ? CLOCKS.get(zone) : undefined;
  if (clock === undefined && typeof zone === "string" && ZONE_NAME.test(zone)) {
    try {
      clock = new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        hour: "2-digit",
        weekday: "short",
      });
      // zoneinfo names are case-sensitive; Intl would take "asia/shanghai" too.
      const resolved = clock.resolvedOptions().timeZone;
      if (resolved !== zone && resolved.toLowerCase() === zone.toLowerCase()) clock = null;
    } catch {
      clock = null;
    }
    CLOCKS.set(zone, clock);
  }
  if (!clock) {
    throw new InvalidArguments(
      `'${operator}': ${describe(zone)} is not a time zone name (such as 'Asia/Shanghai')`,
    );
  }
  return clock;
}

function wallClock(value, zone, operator) {
  if (value == null || zone == null) return null;
  const moment = parseTemporal(value, operator);
  const clock = clockOf(zone, operator);
  if (moment.ordinal !== undefined) return { hour: 0, weekday: ((moment.ordinal - 1) % 7) + 1 };
  const micros = moment.local - moment.offset - UNIX_EPOCH_US;
  let millis = micros / 1000n;
  if (micros % 1000n < 0n) millis -= 1n; // floor, not toward zero
  const parts = clock.formatToParts(new Date(Number(millis)));
  const part = (type) => parts.find((p) => p.type === type).value;
  return { hour: Number(part("hour")), weekday: ISO_WEEKDAYS[part("weekday")] };
}

function zoned(op, args) {
  if (args.length < 1 || args.length > 2) {
    throw new InvalidArguments(`'${op}' takes 1 or 2 arguments, got ${args.length}`);
  }
  return args.length === 1 ? [args[0], "UTC"] : args;
}

function hourOf(args) {
  const [value, zone] = zoned("hour_of", args);
  return wallClock(value, zone, "hour_of")?.hour ?? null;
}

function weekdayOf(args) {
  const [value, zone] = zoned("weekday_of", args);
  return wallClock(value, zone, "weekday_of")?.weekday ?? null;
}

// bin_of (bins.py): the bin of a width a number falls in, floor(value / width), in decimal.
// Each number is read as the decimal its shortest text writes (String(x) has the digits of
// Python's repr), the width as whole units of its last digit (0.25: 25 of 1/100), the value
// counted in those units and rounded to 9 decimals half away from zero, then floored: all in
// BigInt, so 0.3 of width 0.1 is bin 3 (0.3 / 0.1 is 2.9999999999999996 in doubles).
const BIN_PLACES = 9n;
const LARGEST = BigInt(Number.MAX_VALUE);
const SHORTEST = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/;

/** [coefficient, exponent] (BigInt, Number) with number = coefficient * 10 ** exponent. */
function decimalOf(number) {
  const [, sign, whole, fraction = "", exponent = "0"] = SHORTEST.exec(String(number));
  const coefficient = BigInt(whole + fraction);
  return [sign ? -coefficient : coefficient, Number(exponent) - fraction.length];
}

function widthScale(width) {
  if (typeof width !== "number" || !Number.isFinite(width) || width <= 0) {
    throw new InvalidArguments(
      `'bin_of': the width must be a positive number, not ${describe(width)}`,
    );
  }
  const [coefficient, exponent] = decimalOf(width);
  const places = Math.max(0, -exponent);
  return [10n ** BigInt(places), coefficient * 10n ** BigInt(exponent + places)];
}

function binOf(args) {
  const [value, width] = exactly("bin_of", args, 2);
  const [scale, whole] = widthScale(width);
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  const [coefficient, exponent] = decimalOf(value);
  const units = coefficient * scale;
  const shift = BigInt(exponent) + BIN_PLACES;
  let count;
  if (shift >= 0n) {
    count = units * 10n ** shift;
  } else {
    const unit = 10n ** -shift;
    const size = units < 0n ? -units : units;
    let quotient = size / unit;
    if (2n * (size % unit) >= unit) quotient += 1n;
    count = units < 0n ? -quotient : quotient;
  }
  const divisor = whole * 10n ** BIN_PLACES;
  let bin = count / divisor; // BigInt division truncates toward zero: floor it
  if (count % divisor !== 0n && count < 0n) bin -= 1n;
  if (bin > LARGEST || bin < -LARGEST) {
    throw new NotANumber("'bin_of': the result is too large to be a number");
  }
  return Number(bin);
}

/** The evaluation instant from the caller's `now`: a Date (UTC) or an ISO datetime string. */
function instant(now) {
  if (now instanceof Date) {
    const ms = now.getTime();
    if (Number.isNaN(ms)) throw new TypeError("evaluate: `now` is an invalid Date");
    return { local: UNIX_EPOCH_US + BigInt(ms) * 1000n, offset: 0n };
  }
  if (typeof now === "string") {
    const moment = parseTemporalText(now);
    if (moment !== null && moment.local !== undefined) return moment;
  }
  throw new TypeError("evaluate: `now` must be a Date or an ISO datetime string with an offset");
}

// ---------------------------------------------------------------------------------------------
// The evaluator (evaluator.py)
// ---------------------------------------------------------------------------------------------

// Scopes: iterators evaluate their body with the element as data; the levels above are a
// chain of frames (meta, data, up) ending in the root, which holds the run's clock. `meta` is
// the iteration index, or null inside a `try` fallback.
class Frame {
  constructor(meta, data, up) {
    this.meta = meta;
    this.data = data;
    this.up = up;
  }
}

class Root {
  constructor(now) {
    this.now = now;
  }
}

const MISSING = Symbol("missing");

/**
 * Evaluate a JsonLogic `rule` against `data` (JSON values).
 *
 * `now` is the instant `now`/`today` see: a Date (taken as UTC, like the server's default), or
 * an ISO datetime string whose offset also fixes `today`'s calendar ("2024-03-01T00:30+08:00");
 * omitted, the clock is read once, on first use. Throws a LogicError for anything that cannot
 * be evaluated. The result may share structure with `rule` and `data`.
 */
export function evaluate(rule, data = null, { now } = {}) {
  const root = new Root(now === undefined || now === null ? null : instant(now));
  try {
    return normalise(ev(rule, data ?? null, root));
  } catch (error) {
    if (error instanceof LogicError) throw error;
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw new LogicError("the rule is nested too deeply to evaluate", { cause: error });
    }
    throw new LogicError(`cannot evaluate rule: ${error?.message ?? error}`, { cause: error });
  }
}

function normalise(value) {
  return value === undefined ? null : value;
}

function ev(rule, data, above) {
  if (rule === null || typeof rule !== "object") return rule === undefined ? null : rule;
  if (Array.isArray(rule)) {
    const values = new Array(rule.length);
    for (let i = 0; i < rule.length; i++) values[i] = ev(rule[i], data, above);
    return values;
  }
  let op;
  let count = 0;
  for (const key in rule) {
    if (Object.hasOwn(rule, key)) {
      op = key;
      if (++count > 1) return rule;
    }
  }
  if (count !== 1) return rule;
  const args = rule[op];
  if (op === "var" && typeof args === "string") {
    // The hottest node of all, {"var": "field"}, without building an argument list.
    if (isObject(data) && args !== "" && !args.includes(".")) {
      const value = Object.hasOwn(data, args) ? data[args] : null;
      return value === undefined ? null : value;
    }
    return varPath(data, args, null);
  }
  const eager = EAGER.get(op);
  if (eager !== undefined) {
    if (Array.isArray(args)) {
      const values = new Array(args.length);
      for (let i = 0; i < args.length; i++) values[i] = ev(args[i], data, above);
      return eager(values, data, above);
    }
    if (isObject(args)) {
      const value = ev(args, data, above);
      return eager(Array.isArray(value) ? value : [value], data, above);
    }
    return eager([args ?? null], data, above);
  }
  const lazy = LAZY.get(op);
  if (lazy === undefined) throw new UnknownOperator(op);
  return lazy(args === undefined ? null : args, data, above);
}

function rootOf(above) {
  while (above instanceof Frame) above = above.up;
  return above;
}

function nowOf(above) {
  const root = rootOf(above);
  if (root.now === null) root.now = instant(new Date());
  return root.now;
}

// --- data access: var, val, exists, missing, missing_some ------------------------------------

function member(object, key) {
  if (!Object.hasOwn(object, key)) return MISSING;
  const value = object[key];
  return value === undefined ? MISSING : value;
}

const INDEX = /^[0-9]{1,19}$/;

/** One step of a path: an object key or a list index; MISSING when there is none. */
function step(current, key) {
  if (isObject(current)) return member(current, typeof key === "string" ? key : toText(key));
  if (Array.isArray(current)) {
    let index;
    if (typeof key === "string") {
      if (!INDEX.test(key)) return MISSING;
      index = Number(key);
    } else if (typeof key === "number" && Number.isInteger(key)) {
      index = key;
    } else {
      return MISSING;
    }
    if (index >= 0 && index < current.length) return current[index] ?? null;
  }
  return MISSING;
}

function opVar(args, data) {
  if (args.length === 0) return data;
  return varPath(data, args[0], args.length > 1 ? args[1] : null);
}

/** {"var": [path, default]}: a dotted path (or an index) into `data`. */
function varPath(data, path, fallback) {
  const kind = kindOf(path);
  if (kind === NULL || path === "" || (kind === LIST && path.length === 0)) return data;
  let value;
  if (kind === STR) {
    value = data;
    for (const key of path.split(".")) {
      value = isObject(value) ? member(value, key) : step(value, key);
      if (value === MISSING) break;
    }
  } else if (kind === NUM) {
    value = step(data, toText(path));
  } else {
    throw new InvalidArguments(
      `'var': the path must be a string or a number, got ${describe(path)}`,
    );
  }
  // A missing value and an explicit null both mean "no value" in records: use the default.
  return value === MISSING || value === null ? fallback : value;
}

/** The data `levels` scopes up (val's [[n], ...] form); MISSING past the top. */
function climb(above, levels) {
  if (!(typeof levels === "number" && Number.isInteger(levels))) {
    throw new InvalidArguments(
      `'val': a scope climb must be a whole number, got ${describe(levels)}`,
    );
  }
  let steps = Math.abs(levels);
  let node = above;
  while (steps > 2) {
    if (!(node instanceof Frame)) return MISSING;
    node = node.up;
    steps -= 2;
  }
  if (!(node instanceof Frame)) return MISSING;
  if (steps === 1) return node.meta === null ? null : { index: node.meta };
  return node.data;
}

function lookup(args, data, above) {
  if (args.length === 1 && !Array.isArray(args[0])) return step(data, args[0]);
  let value = data;
  let start = 0;
  if (args.length > 0 && Array.isArray(args[0])) {
    const levels = args[0];
    if (levels.length !== 1) {
      throw new InvalidArguments("'val': a scope climb is written [[n], key, ...]");
    }
    // Python's `climb[0] != 0`: false and 0.0 both equal 0 there.
    if (!(levels[0] === 0 || levels[0] === false)) value = climb(above, levels[0]);
    start = 1;
  }
  for (let i = start; i < args.length; i++) {
    if (value === MISSING) break;
    value = step(value, args[i]);
  }
  return value;
}

function opVal(args, data, above) {
  const value = lookup(args, data, above);
  return value === MISSING ? null : value;
}

function opExists(args, data, above) {
  return args.length > 0 && lookup(args, data, above) !== MISSING;
}

function opMissing(args, data) {
  const keys = args.length > 0 && Array.isArray(args[0]) ? args[0] : args;
  const missing = [];
  for (const key of keys) {
    const value = opVar([key], data);
    if (value === null || value === "") missing.push(key);
  }
  return missing;
}

function opMissingSome(args, data) {
  if (args.length !== 2 || !Array.isArray(args[1])) {
    throw new InvalidArguments("'missing_some' takes [minimum, [keys...]]");
  }
  const need = toNumber(args[0], "missing_some");
  const keys = args[1];
  const missing = opMissing([keys], data);
  return keys.length - missing.length >= need ? [] : missing;
}

// --- logic and control flow (lazy) ------------------------------------------------------------

function needList(op, args) {
  if (!Array.isArray(args)) {
    throw new InvalidArguments(`'${op}' needs a list of arguments, got ${describe(args)}`);
  }
  return args;
}

function opIf(args, data, above) {
  needList("if", args);
  const count = args.length;
  let i = 0;
  while (i < count - 1) {
    if (truthy(ev(args[i], data, above))) return ev(args[i + 1], data, above);
    i += 2;
  }
  return i === count - 1 ? ev(args[i], data, above) : null;
}

function opAnd(args, data, above) {
  needList("and", args);
  let value = false;
  for (const arg of args) {
    value = ev(arg, data, above);
    if (!truthy(value)) return value;
  }
  return value;
}

function opOr(args, data, above) {
  needList("or", args);
  let value = false;
  for (const arg of args) {
    value = ev(arg, data, above);
    if (truthy(value)) return value;
  }
  return value;
}

/** The one operand of a unary operator: {"!": [x]} and {"!": x} alike. */
function single(args, data, above) {
  if (Array.isArray(args)) return args.length > 0 ? ev(args[0], data, above) : null;
  return ev(args, data, above);
}

/** The operand of a one-argument operator that, like `!`, never spreads a list value. */
function unary(op, args, data, above) {
  if (Array.isArray(args) && args.length > 1) {
    throw new InvalidArguments(`'${op}' takes 1 argument, got ${args.length}`);
  }
  return single(args, data, above);
}

function opCoalesce(args, data, above) {
  if (!Array.isArray(args)) {
    const value = ev(args, data, above);
    if (!Array.isArray(value)) return value;
    for (const item of value) if (item !== null && item !== undefined) return item;
    return null;
  }
  for (const arg of args) {
    const value = ev(arg, data, above);
    if (value !== null) return value;
  }
  return null;
}

function opTry(args, data, above) {
  if (!Array.isArray(args)) return ev(args, data, above);
  let error = null;
  for (const arg of args) {
    try {
      if (error === null) return ev(arg, data, above);
      // A fallback sees the error as its data; [[2], ...] still reaches the try's data.
      return ev(arg, error.errorValue, new Frame(null, data, above));
    } catch (caught) {
      if (!(caught instanceof LogicError)) throw caught;
      error = caught;
    }
  }
  if (error !== null) throw error;
  return null;
}

/** A chained, short-circuiting comparison: {"<": [a, b, c]} is a < b and b < c. */
function comparison(op, test) {
  return (args, data, above) => {
    if (!Array.isArray(args) || args.length < 2) {
      throw new InvalidArguments(`'${op}' needs a list of at least two arguments`);
    }
    let previous = ev(args[0], data, above);
    for (let i = 1; i < args.length; i++) {
      const current = ev(args[i], data, above);
      if (!test(previous, current)) return false;
      previous = current;
    }
    return true;
  };
}

function ordering(op, accept) {
  return comparison(op, (a, b) => {
    const sign = order(a, b, op);
    return sign !== null && accept(sign);
  });
}

// --- iterators (lazy: the body runs once per element, in the element's scope) -----------------

function iteration(op, args, data, above, nullOk) {
  if (!Array.isArray(args) || args.length < 2) {
    throw new InvalidArguments(`'${op}' needs a list of [array, expression]`);
  }
  if (args[0] === null || args[0] === undefined) {
    throw new InvalidArguments(`'${op}': the array is null`);
  }
  const items = ev(args[0], data, above);
  if (Array.isArray(items)) return items;
  if (items === null && nullOk) return [];
  throw new InvalidArguments(`'${op}': expected an array, got ${describe(items)}`);
}

function body(op, args) {
  const expression = args[1];
  if (expression === null || expression === undefined) {
    throw new InvalidArguments(`'${op}': the expression is null`);
  }
  return expression;
}

function opMap(args, data, above) {
  const items = iteration("map", args, data, above, true);
  const expression = body("map", args);
  return items.map((item, i) => ev(expression, item ?? null, new Frame(i, data, above)));
}

function opFilter(args, data, above) {
  const items = iteration("filter", args, data, above, true);
  const expression = body("filter", args);
  return items.filter((item, i) => truthy(ev(expression, item ?? null, new Frame(i, data, above))));
}

function opReduce(args, data, above) {
  const items = iteration("reduce", args, data, above, true);
  const expression = args[1] ?? null;
  let accumulator;
  let start;
  if (args.length > 2) {
    accumulator = ev(args[2], data, above);
    start = 0;
  } else if (items.length > 0) {
    accumulator = items[0] ?? null;
    start = 1;
  } else {
    return null;
  }
  for (let i = start; i < items.length; i++) {
    const scope = { current: items[i] ?? null, accumulator };
    accumulator = ev(expression, scope, new Frame(i, data, above));
  }
  return accumulator;
}

function quantifier(op, onEmpty, stopOn) {
  // all: stop at the first falsy body (false); some/none: at the first truthy one.
  return (args, data, above) => {
    const items = iteration(op, args, data, above, false);
    if (items.length === 0) return onEmpty;
    const expression = args[1] ?? null;
    for (let i = 0; i < items.length; i++) {
      const value = truthy(ev(expression, items[i] ?? null, new Frame(i, data, above)));
      if (value === stopOn) return op === "some" ? true : false;
    }
    return op !== "some";
  };
}

// --- arithmetic (eager) -----------------------------------------------------------------------

function opAdd(args) {
  let total = 0;
  for (const arg of args) total += typeof arg === "number" ? arg : toNumber(arg, "+");
  return tidy(total, "+");
}

function opMultiply(args) {
  let product = 1;
  for (const arg of args) product *= typeof arg === "number" ? arg : toNumber(arg, "*");
  return tidy(product, "*");
}

function opSubtract(args) {
  if (args.length === 0) throw new InvalidArguments("'-' needs at least one argument");
  const first = toNumber(args[0], "-");
  if (args.length === 1) return tidy(-first, "-");
  let result = first;
  for (let i = 1; i < args.length; i++) result -= toNumber(args[i], "-");
  return tidy(result, "-");
}

function opDivide(args) {
  if (args.length === 0) throw new InvalidArguments("'/' needs at least one argument");
  const numbers = args.map((arg) => toNumber(arg, "/"));
  if (numbers.length === 1) numbers.unshift(1); // {"/": x} is 1 / x
  let result = numbers[0];
  for (let i = 1; i < numbers.length; i++) {
    if (numbers[i] === 0) throw new NotANumber("'/': division by zero");
    result /= numbers[i];
  }
  return tidy(result, "/");
}

function opModulo(args) {
  if (args.length < 2) throw new InvalidArguments("'%' needs at least two arguments");
  let result = toNumber(args[0], "%");
  for (let i = 1; i < args.length; i++) {
    const divisor = toNumber(args[i], "%");
    if (divisor === 0) throw new NotANumber("'%': division by zero");
    result %= divisor; // the dividend's sign, like Python's math.fmod
  }
  return tidy(result, "%");
}

function extreme(op, pick) {
  return (args) => {
    if (args.length === 0) return null;
    let best = toNumber(args[0], op);
    for (let i = 1; i < args.length; i++) {
      const number = toNumber(args[i], op);
      if (pick(number, best)) best = number;
    }
    return best;
  };
}

// --- strings and arrays (eager) ---------------------------------------------------------------

function opCat(args) {
  let text = "";
  for (const arg of args) text += toText(arg);
  return text;
}

function integer(value, op) {
  return Math.trunc(toNumber(value, op));
}

function opSubstr(args) {
  if (args.length === 0) throw new InvalidArguments("'substr' needs [string, start, length?]");
  // Code points, as on the server (a character beyond U+FFFF counts once).
  let chars = Array.from(toText(args[0]));
  let start = args.length > 1 ? integer(args[1], "substr") : 0;
  if (start < 0) start = Math.max(chars.length + start, 0);
  chars = chars.slice(start);
  if (args.length < 3 || args[2] === null) return chars.join("");
  const length = integer(args[2], "substr");
  if (length < 0) return chars.slice(0, Math.max(chars.length + length, 0)).join("");
  return chars.slice(0, length).join("");
}

function opIn(args) {
  const needle = args.length > 0 ? args[0] : null;
  const haystack = args.length > 1 ? args[1] : null;
  if (typeof haystack === "string") return needle !== null && haystack.includes(toText(needle));
  if (Array.isArray(haystack)) return haystack.some((item) => strictEqual(needle, item));
  if (haystack === null) return false;
  throw new InvalidArguments(`'in': cannot search in ${describe(haystack)}`);
}

function opMerge(args) {
  const merged = [];
  for (const arg of args) {
    if (Array.isArray(arg)) merged.push(...arg);
    else merged.push(arg);
  }
  return merged;
}

function opLog(args, data, above) {
  const value = unary("log", args, data, above);
  console.log("jsonlogic log:", value);
  return value;
}

function opThrow(args, data, above) {
  throw new ThrownError(unary("throw", args, data, above));
}

// --- Formloom extensions (eager): dates, contains, is_empty ----------------------------------

function noArguments(op, args) {
  if (args.length > 0 && !(args.length === 1 && args[0] === null)) {
    throw new InvalidArguments(`'${op}' takes no arguments`);
  }
}

function exactly(op, args, count) {
  if (args.length !== count) {
    throw new InvalidArguments(`'${op}' takes ${count} arguments, got ${args.length}`);
  }
  return args;
}

function opNow(args, data, above) {
  noArguments("now", args);
  return formatDatetime(nowOf(above), () => {
    throw new LogicError("cannot evaluate rule: `now` is outside years 1-9999");
  });
}

function opToday(args, data, above) {
  noArguments("today", args);
  return isoDate(dateOf(nowOf(above)));
}

function opContains(args) {
  const [haystack, needle] = exactly("contains", args, 2);
  if (haystack === null || needle === null) return null;
  if (Array.isArray(haystack)) return haystack.some((item) => strictEqual(needle, item));
  if (typeof haystack === "string") {
    if (typeof needle !== "string") {
      throw new InvalidArguments(`'contains': cannot look for ${describe(needle)} in a string`);
    }
    return haystack.includes(needle);
  }
  throw new InvalidArguments(`'contains': expected a list or a string, got ${describe(haystack)}`);
}

function opIsEmpty(args, data, above) {
  const value = unary("is_empty", args, data, above);
  switch (kindOf(value)) {
    case NULL:
      return true;
    case STR:
    case LIST:
      return value.length === 0;
    case OBJ:
      return Object.keys(value).length === 0;
    default:
      return false;
  }
}

const EAGER = new Map([
  ["var", opVar],
  ["val", opVal],
  ["exists", opExists],
  ["missing", opMissing],
  ["missing_some", opMissingSome],
  ["+", opAdd],
  ["*", opMultiply],
  ["-", opSubtract],
  ["/", opDivide],
  ["%", opModulo],
  ["max", extreme("max", (x, best) => x > best)],
  ["min", extreme("min", (x, best) => x < best)],
  ["cat", opCat],
  ["substr", opSubstr],
  ["in", opIn],
  ["merge", opMerge],
  ["now", opNow],
  ["today", opToday],
  ["date_add", (args) => dateAdd(...exactly("date_add", args, 3))],
  ["days_between", (args) => daysBetween(...exactly("days_between", args, 2))],
  ["years_between", (args) => yearsBetween(...exactly("years_between", args, 2))],
  ["hour_of", hourOf],
  ["weekday_of", weekdayOf],
  ["bin_of", binOf],
  ["contains", opContains],
]);

const LAZY = new Map([
  ["if", opIf],
  ["?:", opIf],
  ["and", opAnd],
  ["or", opOr],
  ["!", (args, data, above) => !truthy(single(args, data, above))],
  ["!!", (args, data, above) => truthy(single(args, data, above))],
  ["??", opCoalesce],
  ["try", opTry],
  ["preserve", (args) => args],
  ["log", opLog],
  ["throw", opThrow],
  ["is_empty", opIsEmpty],
  ["==", comparison("==", looseEqual)],
  ["!=", comparison("!=", (a, b) => !looseEqual(a, b))],
  ["===", comparison("===", strictEqual)],
  ["!==", comparison("!==", (a, b) => !strictEqual(a, b))],
  ["<", ordering("<", (sign) => sign < 0)],
  ["<=", ordering("<=", (sign) => sign <= 0)],
  [">", ordering(">", (sign) => sign > 0)],
  [">=", ordering(">=", (sign) => sign >= 0)],
  ["map", opMap],
  ["filter", opFilter],
  ["reduce", opReduce],
  ["all", quantifier("all", false, false)],
  ["some", quantifier("some", false, true)],
  ["none", quantifier("none", true, true)],
]);

function readOnlySet(items) {
  const set = new Set(items);
  for (const method of ["add", "delete", "clear"]) {
    Object.defineProperty(set, method, {
      value() {
        throw new TypeError("OPERATORS is read-only");
      },
    });
  }
  return Object.freeze(set);
}

/** Every operator name `evaluate` understands (a read-only Set). */
export const OPERATORS = readOnlySet([...EAGER.keys(), ...LAZY.keys()].sort());

// ---------------------------------------------------------------------------------------------
// Static analysis (analysis.py): which record paths a rule reads
// ---------------------------------------------------------------------------------------------

const ANY_PATH = "*";
const ITERATORS = new Set(["map", "filter", "reduce", "all", "some", "none"]);

function operatorOf(node) {
  if (!isObject(node)) return null;
  const keys = Object.keys(node);
  return keys.length === 1 ? [keys[0], node[keys[0]]] : null;
}

/**
 * Every record path `rule` reads through var, val, exists, missing and missing_some, as a Set
 * of dotted strings; "*" for a computed path or a read of the whole record. Paths inside an
 * iterator body or a `try` fallback are relative to the element or the error and are left out,
 * except a `val` that climbs back to the record.
 */
export function variables(rule) {
  const found = new Set();
  collect(rule, 0, found);
  return found;
}

function collect(node, depth, found) {
  if (Array.isArray(node)) {
    for (const item of node) collect(item, depth, found);
    return;
  }
  const call = operatorOf(node);
  if (call === null) return;
  const [op, args] = call;
  if (op === "preserve") return;
  const list = Array.isArray(args) ? args : [args ?? null];
  if (op === "var") {
    collectVar(list, depth, found);
  } else if (op === "val" || op === "exists") {
    collectVal(list, depth, found);
  } else if (op === "missing") {
    const first = list.length > 0 ? list[0] : null;
    collectKeys(Array.isArray(first) || operatorOf(first) ? first : list, depth, found);
  } else if (op === "missing_some") {
    if (list.length === 2) {
      collect(list[0], depth, found);
      collectKeys(list[1], depth, found);
    }
  } else if (ITERATORS.has(op)) {
    if (list.length > 0) collect(list[0], depth, found);
    // reduce's initial value (third argument) runs in the caller's scope.
    list.slice(1).forEach((item, i) => {
      collect(item, op === "reduce" && i === 1 ? depth : depth + 1, found);
    });
  } else if (op === "try") {
    if (list.length > 0) collect(list[0], depth, found);
    for (const fallback of list.slice(1)) collect(fallback, depth + 1, found);
  } else {
    collect(list, depth, found);
  }
}

function literalKey(value) {
  if (typeof value === "string") return value;
  // Python counts only ints; JSON has one number type, so a whole number written 1.0 counts
  // here too (docs/jsonlogic.md, "In the browser"). 1e21 and beyond arrive as floats.
  if (Number.isSafeInteger(value)) return String(value);
  return null;
}

function collectVar(list, depth, found) {
  for (const fallback of list.slice(1)) collect(fallback, depth, found);
  const path = list.length > 0 ? list[0] : null;
  if (operatorOf(path) !== null || Array.isArray(path)) {
    collect(path, depth, found);
    found.add(ANY_PATH);
    return;
  }
  if (depth) return;
  const key = literalKey(path);
  found.add(key ? key : ANY_PATH);
}

function collectVal(list, depth, found) {
  const keys = list.slice();
  let levels = 0;
  if (keys.length > 0 && Array.isArray(keys[0])) {
    const levelList = keys.shift();
    if (levelList.length === 1 && Number.isSafeInteger(levelList[0])) {
      levels = Math.abs(levelList[0]);
    } else {
      found.add(ANY_PATH);
      return;
    }
  }
  const dynamic = keys.filter((key) => literalKey(key) === null);
  if (dynamic.length > 0) {
    collect(dynamic, depth, found);
    found.add(ANY_PATH);
    return;
  }
  if (levels !== 2 * depth) return; // relative to an element, an iteration or an error
  found.add(keys.length > 0 ? keys.map(literalKey).join(".") : ANY_PATH);
}

function collectKeys(keys, depth, found) {
  if (!Array.isArray(keys) || keys.some((key) => literalKey(key) === null)) {
    collect(keys, depth, found);
    found.add(ANY_PATH);
    return;
  }
  if (depth === 0) for (const key of keys) found.add(literalKey(key));
}
