// JSON equality as formloom.engines.logic.compat.json_equal defines it: a boolean is never a
// number, JSON has one number type (1 equals 1.0, and -0 equals 0), objects compare by keys.

export function jsonEqual(got, want, tolerance = 0) {
  if (typeof got === "boolean" || typeof want === "boolean") return got === want;
  if (typeof got === "number" && typeof want === "number") {
    if (got === want) return true;
    const scale = Math.max(Math.abs(got), Math.abs(want));
    return tolerance > 0 && Math.abs(got - want) <= Math.max(tolerance * scale, tolerance);
  }
  if (got === null || want === null || typeof got !== "object" || typeof want !== "object") {
    return got === want;
  }
  if (Array.isArray(got) !== Array.isArray(want)) return false;
  if (Array.isArray(got)) {
    if (got.length !== want.length) return false;
    return got.every((item, i) => jsonEqual(item, want[i], tolerance));
  }
  const keys = Object.keys(got);
  return (
    keys.length === Object.keys(want).length &&
    keys.every((key) => Object.hasOwn(want, key) && jsonEqual(got[key], want[key], tolerance))
  );
}
