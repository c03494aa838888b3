// The controls of generated forms, one per field type (docs/ui.md, "Generated forms"). Each
// control is {element, focusTarget, get(), set(value), setDisabled(bool), destroy()?}; `ctx`
// is {id, name, value, app, appKey, formKey, filePath, titles, recordId, inTable, changed(),
// pending(delta), setError(message)} from the renderer (form.js) or a table (form-table.js).

import { el } from "/static/dom.js";
import { label, t } from "/static/i18n.js";
import { fileControl } from "/static/form-file.js";
import { autonumberControl, departmentControl, userControl } from "/static/form-people.js";
import { ratingControl } from "/static/form-rating.js";
import { relationPicker } from "/static/form-relation.js";
import { richTextControl } from "/static/form-richtext.js";
import { signatureControl } from "/static/form-signature.js";
import { clinicZone, fieldLabel, fromLocalInput, showComputed, toLocalInput } from "/static/form-values.js";

const TEXT_INPUT = { text: "text", email: "email", phone: "tel", url: "url" };

// Options as a group of real inputs (keyboard and screen readers as usual): checkboxes shown
// as tags for a multiple choice, radio buttons for a short dropdown.
function optionGroup(field, ctx, { type, groupClass, role, choiceClass, checked }) {
  const options = field.options || [];
  const inputs = options.map((option) =>
    el("input", { type, name: ctx.name, value: option.value, checked: checked(option.value) || undefined }),
  );
  const element = el(
    "div",
    { class: groupClass, role, id: ctx.id, "aria-label": fieldLabel(field) },
    options.map((option, i) => el("label", { class: choiceClass }, inputs[i], el("span", { text: label(option.label, option.value) }))),
  );
  element.addEventListener("change", ctx.changed);
  return {
    element,
    inputs,
    focusTarget: inputs[0],
    setDisabled: (disabled) => inputs.forEach((input) => (input.disabled = disabled)),
  };
}

function choiceControl(field, ctx) {
  const { id, name, value } = ctx;
  const options = field.options || [];
  if (field.type === "multiselect") {
    const chosen = new Set(Array.isArray(value) ? value : []);
    const { inputs: boxes, ...group } = optionGroup(field, ctx, {
      type: "checkbox", groupClass: "fl-tags", role: "group", choiceClass: "tag-choice", checked: (option) => chosen.has(option),
    });
    return {
      ...group,
      get: () => {
        const values = boxes.filter((box) => box.checked).map((box) => box.value);
        return values.length ? values : null;
      },
      set: (next) => boxes.forEach((box) => (box.checked = Array.isArray(next) && next.includes(box.value))),
    };
  }
  if (options.length <= 4 && !ctx.inTable) {
    const { inputs: radios, ...group } = optionGroup(field, ctx, {
      type: "radio", groupClass: "fl-radios", role: "radiogroup", choiceClass: "radio-choice", checked: (option) => value === option,
    });
    return {
      ...group,
      get: () => radios.find((radio) => radio.checked)?.value ?? null,
      set: (next) => radios.forEach((radio) => (radio.checked = radio.value === next)),
    };
  }
  const select = el(
    "select",
    { id, name },
    el("option", { value: "", text: "—" }),
    options.map((option) => el("option", { value: option.value, text: label(option.label, option.value), selected: value === option.value || undefined })),
  );
  select.addEventListener("change", ctx.changed);
  return {
    element: select,
    focusTarget: select,
    get: () => select.value || null,
    set: (next) => (select.value = next ?? ""),
    setDisabled: (disabled) => (select.disabled = disabled),
  };
}

function inputControl(field, ctx) {
  const { id, name, value } = ctx;
  const type = field.type;
  let input;
  if (type === "textarea") {
    input = el("textarea", { id, name, rows: 3, maxlength: field.max_length });
    input.value = value ?? "";
  } else if (type === "boolean") {
    input = el("input", { id, name, type: "checkbox", checked: value === true || undefined });
    const box = el("label", { class: "fl-switch" }, input, el("span", { text: t("Yes") }));
    input.addEventListener("change", ctx.changed);
    return {
      element: box,
      focusTarget: input,
      get: () => input.checked,
      set: (next) => (input.checked = next === true),
      setDisabled: (disabled) => (input.disabled = disabled),
    };
  } else {
    const attrs = { id, name };
    if (type === "number" || type === "integer") {
      Object.assign(attrs, { type: "number", step: type === "integer" ? "1" : "any", min: field.min, max: field.max, inputmode: type === "integer" ? "numeric" : "decimal" });
    } else if (type === "date") {
      Object.assign(attrs, { type: "date", min: field.min, max: field.max });
    } else if (type === "time") {
      Object.assign(attrs, { type: "time", min: field.min, max: field.max, step: "60" });
    } else if (type === "datetime") {
      // typed and shown on the clinic's clock (form-values.js); the tooltip names the zone
      Object.assign(attrs, { type: "datetime-local", title: t("{zone} time", { zone: clinicZone() }), "data-zone": clinicZone() });
    } else {
      Object.assign(attrs, { type: TEXT_INPUT[type] || "text", maxlength: field.max_length, autocomplete: type === "email" ? "email" : type === "phone" ? "tel" : undefined });
    }
    input = el("input", attrs);
    input.value = type === "datetime" ? toLocalInput(value) : value ?? "";
  }
  input.addEventListener("input", ctx.changed);
  input.addEventListener("change", ctx.changed);
  return {
    element: input,
    focusTarget: input,
    get() {
      const raw = input.value;
      if (raw === "") return null;
      if (type === "number" || type === "integer") {
        const number = Number(raw);
        return Number.isFinite(number) ? number : raw;
      }
      if (type === "datetime") return fromLocalInput(raw);
      return raw;
    },
    set(next) {
      input.value = type === "datetime" ? toLocalInput(next) : next ?? "";
    },
    setDisabled(disabled) {
      input.readOnly = disabled;
      input.setAttribute("aria-readonly", String(disabled));
    },
  };
}

function computedControl(field, ctx) {
  const output = el("output", { id: ctx.id, name: ctx.name, class: "fl-output", "aria-live": "polite", text: showComputed(field, ctx.value) });
  return {
    element: output,
    focusTarget: output,
    get: () => null,
    set(next) {
      output.textContent = showComputed(field, next);
      output.dataset.value = next === null || next === undefined ? "" : JSON.stringify(next);
    },
    setDisabled() {},
  };
}

export function makeControl(field, ctx) {
  switch (field.type) {
    case "select":
    case "multiselect":
      return choiceControl(field, ctx);
    case "relation": {
      const picker = relationPicker({
        app: ctx.app,
        target: field.target,
        name: ctx.name,
        id: ctx.id,
        value: ctx.value ?? null,
        title: ctx.titles?.[ctx.value] ?? null,
        onChange: ctx.changed,
      });
      return picker;
    }
    case "file":
    case "image":
      return fileControl(field, ctx);
    case "computed":
      return computedControl(field, ctx);
    case "user":
      return userControl(field, ctx);
    case "department":
      return departmentControl(field, ctx);
    case "autonumber":
      return autonumberControl(field, ctx);
    case "rating":
      return ratingControl(field, ctx);
    case "signature":
      return signatureControl(field, ctx);
    case "richtext":
      return richTextControl(field, ctx);
    default:
      return inputControl(field, ctx);
  }
}
