// Values in generated forms (form.js and its controls): labels, emptiness, copies, sizes,
// and datetimes between their stored UTC form and the clinic's local time.

import { label, t } from "/static/i18n.js";

let counter = 0;

/** A number for element ids, unique on the page. */
export function nextId() {
  counter += 1;
  return counter;
}

function humanize(key) {
  const words = String(key).replace(/_+/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : key;
}

export function fieldLabel(field) {
  return label(field.label, humanize(field.key));
}

export function isEmpty(value) {
  return value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length);
}

export function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

export function humanSize(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

// Stored datetimes are UTC "YYYY-MM-DDTHH:MM:SSZ". People read and type them on the clinic's
// clock (settings.timezone, given to the page as <html data-timezone>), never the browser's:
// a receptionist whose laptop is set to UTC still books 10:00 Shanghai time. Intl's copy of
// the zone database does the conversion, as zoneinfo does on the server.

const WALL_CLOCKS = new Map();

/** The clinic's zone: the page's data-timezone, else the browser's own (pages without one). */
export function clinicZone() {
  const given = document.documentElement.dataset.timezone;
  if (given) return given;
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function wallClockOf(zone) {
  let clock = WALL_CLOCKS.get(zone);
  if (!clock) {
    try {
      clock = new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    } catch {
      clock = wallClockOf("UTC"); // an unknown zone name: UTC, as the server falls back
    }
    WALL_CLOCKS.set(zone, clock);
  }
  return clock;
}

/** The wall clock of an instant in a zone: { year, month, day, hour, minute, second }. */
function wallClock(date, zone) {
  const found = {};
  for (const part of wallClockOf(zone).formatToParts(date)) {
    if (part.type !== "literal") found[part.type] = Number(part.value);
  }
  if (found.hour === 24) found.hour = 0; // some engines say 24:00 for midnight
  return found;
}

const pad = (n, size = 2) => String(n).padStart(size, "0");

function utcOfWall(year, month, day, hour, minute, second) {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

/** The instant's "YYYY-MM-DD HH:MM" in the zone ("T" between them: a datetime-local value). */
export function localText(value, zone = clinicZone(), separator = " ") {
  if (!value) return "";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const w = wallClock(date, zone);
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}${separator}${pad(w.hour)}:${pad(w.minute)}`;
}

export function toLocalInput(value, zone = clinicZone()) {
  return localText(value, zone, "T");
}

/** A datetime-local value ("2026-12-04T10:00", the clinic's clock) as the stored UTC
 * instant. A wall time that happens twice (clocks going back) is the first; one that never
 * happens (clocks going forward) is read with the offset before the change. */
export function fromLocalInput(value, zone = clinicZone()) {
  if (!value) return null;
  const match = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(value);
  if (!match) return value; // the server says what is wrong with it
  const [year, month, day, hour, minute, second] = match.slice(1).map((n) => Number(n || 0));
  const wanted = utcOfWall(year, month, day, hour, minute, second);
  const offsetAt = (at) => {
    const w = wallClock(new Date(at), zone);
    return utcOfWall(w.year, w.month, w.day, w.hour, w.minute, w.second) - at;
  };
  const before = offsetAt(wanted - 36 * 3600 * 1000);
  const after = offsetAt(wanted + 36 * 3600 * 1000);
  // the first of the (at most two) offsets around it that gives back this wall time
  let at = wanted - before;
  if (offsetAt(at) !== before) {
    const other = wanted - after;
    at = offsetAt(other) === after ? other : at;
  }
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return value;
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** An instant as people read it: "2026-12-04 10:00" on the clinic's clock (the server
 * writes the same text, platform/web/listing.py; its tooltip names the zone). */
export function showDateTime(value) {
  const text = localText(value);
  return text || String(value ?? "");
}

/** "2026-12-04 10:00 (Asia/Shanghai)": where a lone time could be read in another zone. */
export function showDateTimeNamed(value) {
  const text = localText(value);
  return text ? `${text} (${clinicZone()})` : String(value ?? "");
}

export function showComputed(field, value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    return value.toLocaleString(document.documentElement.lang || undefined, { maximumFractionDigits: 2 });
  }
  if (typeof value === "boolean") return value ? t("Yes") : t("No");
  return String(value);
}
