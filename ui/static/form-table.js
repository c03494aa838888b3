// The table field of generated forms: editable rows (add, remove, move up and down) of the
// column controls (form-controls.js), cells named `{table}.{row}.{column}`; column conditions
// and formulas are evaluated per row over the row and the record.

import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { makeControl } from "/static/form-controls.js";
import { computeField, isShown } from "/static/form-rules.js";
import { clone, fieldLabel, isEmpty, nextId } from "/static/form-values.js";

export function tableControl(field, value, { id, locked, access, base, evalOpts }) {
  const columns = (field.fields || []).filter((column) => access[`${field.key}.${column.key}`] !== "hidden");
  const body = el("tbody");
  const rows = []; // [{row element, controls: Map(col -> control), errors: Map}]
  const addButton = el("button", { type: "button", class: "quiet small", "data-testid": `add-row-${field.key}`, text: `+ ${t("Add row")}` });
  const element = el(
    "div",
    { class: "fl-table", id, role: "group", "aria-label": fieldLabel(field) },
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { class: "subtable editable" },
        el("thead", {}, el("tr", {}, el("th", { class: "row-no", text: "#" }), columns.map((column) => el("th", { scope: "col" }, fieldLabel(column), column.required ? el("span", { class: "fl-required", "aria-hidden": "true", text: " *" }) : null)), el("th", { class: "row-actions" }, el("span", { class: "visually-hidden", text: t("Actions") })))),
        body,
      ),
    ),
    addButton,
  );

  function renumber() {
    rows.forEach((row, index) => {
      row.element.querySelector(".row-no").textContent = String(index + 1);
      row.element.dataset.row = String(index);
      for (const [key, control] of row.controls) {
        const name = `${field.key}.${index}.${key}`;
        for (const node of control.element.querySelectorAll ? [control.element, ...control.element.querySelectorAll("[name]")] : [control.element]) {
          if (node.getAttribute && node.hasAttribute("name")) node.setAttribute("name", name);
        }
        control.path = `${field.key}.${key}`;
      }
      row.up.disabled = locked || index === 0;
      row.down.disabled = locked || index === rows.length - 1;
    });
  }

  function addRow(rowValue = null, focus = false) {
    const rowData = rowValue ? clone(rowValue) : {};
    if (!rowValue) {
      for (const column of columns) {
        if (column.default !== undefined && column.default !== null) rowData[column.key] = clone(column.default);
      }
    }
    const index = rows.length;
    const controls = new Map();
    const errors = new Map();
    const cells = columns.map((column) => {
      const name = `${field.key}.${index}.${column.key}`;
      const control = makeControl(column, {
        ...base,
        id: `${id}-${nextId()}-${column.key}`,
        name,
        value: rowData[column.key],
        filePath: `${field.key}.${column.key}`,
        inTable: true,
        setError: (message) => showCellError(errors.get(column.key), control, message),
      });
      control.focusTarget?.setAttribute?.("aria-label", `${fieldLabel(column)} ${index + 1}`);
      const lockedCell = locked || access[`${field.key}.${column.key}`] === "read" || column.read_only;
      if (lockedCell) control.setDisabled(true);
      controls.set(column.key, control);
      const error = el("p", { class: "fl-error", hidden: true, role: "alert" });
      errors.set(column.key, error);
      return el("td", { "data-col": column.key }, control.element, error);
    });
    const up = el("button", { type: "button", class: "icon-button", "aria-label": t("Move row up"), text: "↑" });
    const down = el("button", { type: "button", class: "icon-button", "aria-label": t("Move row down"), text: "↓" });
    const remove = el("button", { type: "button", class: "icon-button", "aria-label": t("Remove row"), "data-testid": "remove-row", text: "×" });
    const tr = el("tr", {}, el("td", { class: "row-no" }), cells, el("td", { class: "row-actions" }, locked ? null : [up, down, remove]));
    const row = { element: tr, controls, errors, up, down };
    rows.push(row);
    body.append(tr);
    up.addEventListener("click", () => move(row, -1));
    down.addEventListener("click", () => move(row, +1));
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      tr.remove();
      renumber();
      base.changed();
    });
    renumber();
    if (focus) controls.values().next().value?.focusTarget?.focus();
    return row;
  }

  function move(row, delta) {
    const from = rows.indexOf(row);
    const to = from + delta;
    if (to < 0 || to >= rows.length) return;
    rows.splice(from, 1);
    rows.splice(to, 0, row);
    body.replaceChildren(...rows.map((r) => r.element));
    renumber();
    base.changed();
    (delta < 0 ? row.up : row.down).focus();
  }

  addButton.addEventListener("click", () => {
    addRow(null, true);
    base.changed();
  });
  if (locked) addButton.hidden = true;
  for (const rowValue of Array.isArray(value) ? value : []) addRow(rowValue);

  return {
    element,
    focusTarget: addButton,
    columns,
    rows,
    get() {
      const out = rows.map((row) => {
        const values = {};
        for (const column of columns) {
          if (column.type === "computed") continue;
          const cell = row.controls.get(column.key);
          if (cell.element.closest("td")?.classList.contains("fl-off")) continue;
          const v = cell.get();
          if (!isEmpty(v)) values[column.key] = v;
        }
        return values;
      });
      return out.length ? out : null;
    },
    set(next) {
      rows.splice(0).forEach((row) => row.element.remove());
      for (const rowValue of Array.isArray(next) ? next : []) addRow(rowValue);
    },
    setDisabled() {},
    // computed columns and column visibility, per row, over the row and the record
    refresh(record) {
      rows.forEach((row) => {
        const scope = { ...record };
        for (const column of columns) {
          if (column.type === "computed") continue;
          const v = row.controls.get(column.key).get();
          if (!isEmpty(v)) scope[column.key] = v;
          else delete scope[column.key];
        }
        for (const column of columns) {
          const control = row.controls.get(column.key);
          const cell = control.element.closest("td");
          if (column.visible_if !== undefined && column.visible_if !== null) {
            const shown = isShown(column.visible_if, scope, evalOpts);
            cell.classList.toggle("fl-off", !shown);
            control.setDisabled(!shown || locked);
          }
          if (column.type === "computed") {
            const result = computeField(column, scope, evalOpts);
            control.set(result);
            if (!isEmpty(result)) scope[column.key] = result;
          }
        }
      });
    },
    errorAt(rowIndex, key) {
      const row = rows[rowIndex];
      if (!row) return null;
      return { control: row.controls.get(key), error: row.errors.get(key) };
    },
  };
}

export function showCellError(error, control, message) {
  if (!error) return;
  error.textContent = message || "";
  error.hidden = !message;
  const target = control?.focusTarget;
  if (target?.setAttribute) {
    if (message) target.setAttribute("aria-invalid", "true");
    else target.removeAttribute("aria-invalid");
  }
}
