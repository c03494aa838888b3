// The designer's properties panel: the selected field's attributes (or the form's own when
// no field is selected), the options editor and the visibility condition builder.
//
// Typing changes the model and redraws the edited card only; the panel itself is rebuilt
// when the selection changes or its shape does (a new option row, another type).
// `designer` is the handle designer.js gives: `designer.state` (designer-state.js) and the
// actions that change it (`commit`, `select`, `move`, ...).

import { t, label } from "/static/i18n.js";
import * as model from "/static/designer-model.js";
import { peopleGroup } from "/static/designer-people.js";
import { el } from "/static/dom.js";
import { VISIBILITY, buildCondition, literal, needsValue, parseCondition } from "/static/conditions.js";
import { FUNCTIONS, compile as compileFormula, decompile as decompileFormula, suggest } from "/static/formula.js";

// "Label (English)"; in Chinese "英文标签" (the language's name in the reader's language)
function inLocale(text, locale) {
  const language = { en: t("English"), "zh-CN": t("Chinese") }[locale] || locale;
  return t("{text} ({language})", { text, language });
}
let counter = 0;

function errorSlot(designer, owner, name) {
  const messages = designer.state.errors.get(owner)?.[name] || [];
  return el("p", {
    class: "prop-error",
    role: "alert",
    "data-testid": `prop-${name}-error`,
    hidden: messages.length ? null : true,
    text: messages.join(" "),
  });
}

function setError(slot, message) {
  slot.textContent = message;
  slot.hidden = !message;
}

// A labelled control: <div class=prop><label/>control<hint/><error/></div>
function prop(designer, owner, name, text, control, hint) {
  counter += 1;
  const id = `prop-${counter}`;
  control.id = id;
  control.dataset.testid ||= `prop-${name}`;
  if (hint) control.setAttribute("aria-describedby", `${id}-hint`);
  return el(
    "div",
    { class: "prop", "data-prop": name },
    el("label", { for: id, text }),
    control,
    hint ? el("small", { id: `${id}-hint`, class: "hint", text: hint }) : null,
    errorSlot(designer, owner, name),
  );
}

function check(designer, owner, name, text, checked, onchange, hint) {
  const input = el("input", { type: "checkbox", "data-testid": `prop-${name}`, checked, onchange });
  return el(
    "div",
    { class: "prop check", "data-prop": name },
    el("label", {}, input, el("span", { text })),
    hint ? el("small", { class: "hint", text: hint }) : null,
    errorSlot(designer, owner, name),
  );
}

function section(title, ...children) {
  return el("fieldset", { class: "prop-group" }, el("legend", { text: title }), ...children);
}

// Where the app is read in Chinese too, a label with text but none in Chinese is marked at
// its Chinese input (and on the canvas, and counted next to Save: designer.js).
const CHECKED_LOCALE = "zh-CN";

function missingMark(designer, testid, value) {
  const mark = el("small", { class: "missing-locale", "data-testid": testid, text: t("No Chinese text yet.") });
  const refresh = (next) => (mark.hidden = !model.lacksLocale(next, designer.state.appLocales, CHECKED_LOCALE));
  refresh(value);
  return { mark, refresh };
}

// Inputs for one label per locale: prop-{name} (first locale), prop-{name}-{locale} (others).
function labelInputs(designer, owner, name, title, value, onchange, { multiline = false } = {}) {
  const texts = model.labelTexts(value, designer.state.editLocales);
  const missing = designer.state.appLocales.includes(CHECKED_LOCALE) ? missingMark(designer, `prop-${name}-missing`, value) : null;
  const rows = designer.state.editLocales.map((locale, position) => {
    const control = el(multiline ? "textarea" : "input", {
      type: multiline ? null : "text",
      value: texts[locale],
      lang: locale,
      rows: multiline ? 2 : null,
      "data-testid": position === 0 ? `prop-${name}` : `prop-${name}-${locale}`,
      placeholder: position > 0 && texts[designer.state.editLocales[0]] ? texts[designer.state.editLocales[0]] : null,
      oninput: (event) => {
        texts[locale] = event.target.value;
        onchange(model.labelValue(texts), texts);
        missing?.refresh(model.labelValue(texts));
      },
    });
    const row = prop(designer, owner, position === 0 ? name : `${name}-${locale}`, inLocale(title, locale), control);
    if (missing && locale === CHECKED_LOCALE) row.querySelector("label").after(missing.mark);
    return row;
  });
  return el("div", { class: "label-set" }, ...rows);
}

// How much of a row the field takes in the form (`width`, quarters of a row: docs/forms.md);
// unset, the form decides by the type. Not for sections and table columns.
function widthProp(designer, found, edit) {
  const field = found.field;
  if (field.type === "section" || found.table) return null;
  const choices = [
    ["", t("Automatic")],
    ["1", t("A quarter of a row")],
    ["2", t("Half a row")],
    ["3", t("Three quarters of a row")],
    ["4", t("The whole row")],
  ];
  const select = el("select", {
    onchange: (event) => edit(() => setOrDelete(field, "width", event.target.value ? Number(event.target.value) : null), "width"),
  }, ...choices.map(([value, text]) => el("option", { value, text })));
  select.value = field.width ? String(field.width) : "";
  return prop(designer, field._uid, "width", t("Width"), select, t("On a phone every field takes the whole row."));
}

function setOrDelete(target, name, value) {
  if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) delete target[name];
  else target[name] = value;
}

// -- the panel ---------------------------------------------------------------------------

export function renderProperties(designer) {
  const panel = document.querySelector("[data-testid=properties]");
  const found = designer.state.selected ? designer.find(designer.state.selected) : null;
  panel.replaceChildren(found ? fieldPanel(designer, found) : formPanel(designer));
  const options = panel.querySelector("[data-testid=prop-options]");
  if (options) {
    const pane = panel.closest(".side-pane");
    const box = options.closest("fieldset").getBoundingClientRect();
    const view = pane.getBoundingClientRect();
    if (box.bottom > view.bottom) pane.scrollTop += Math.min(box.bottom - view.bottom + 8, box.top - view.top - 8);
  }
}

function formPanel(designer) {
  const form = designer.state.form;
  const owner = "form";
  const keySlot = errorSlot(designer, owner, "form-key");
  const keyInput = el("input", {
    type: "text",
    value: form.key,
    "data-testid": "prop-form-key",
    readonly: designer.state.isNew ? null : true,
    spellcheck: "false",
    autocomplete: "off",
    oninput: (event) => {
      designer.state.formKeyTouched = true;
      const key = event.target.value.trim();
      designer.commit(() => (form.key = key), { coalesce: "form:key", structure: false });
      setError(keySlot, formKeyProblem(designer, key));
    },
  });
  const keyProp = el(
    "div",
    { class: "prop", "data-prop": "form-key" },
    el("label", { for: "prop-form-key", text: t("Form key") }),
    keyInput,
    el("small", {
      class: "hint",
      text: designer.state.isNew ? t("Used in addresses and the API. It cannot change once the form is saved.") : t("Fixed once the form is saved."),
    }),
    keySlot,
  );
  keyInput.id = "prop-form-key";
  if (designer.state.isNew) setError(keySlot, form.key ? formKeyProblem(designer, form.key) : "");
  const titleChoices = [el("option", { value: "", text: t("(the first text field)") })];
  for (const field of form.fields) {
    if (["multiselect", "table", "file", "image", "section"].includes(field.type)) continue;
    titleChoices.push(el("option", { value: field.key, text: `${label(field.label, "") || field.key} (${field.key})` }));
  }
  const titleSelect = el("select", {
    onchange: (event) => designer.commit(() => setOrDelete(form, "title_field", event.target.value), { structure: false }),
  }, ...titleChoices);
  titleSelect.value = form.title_field || "";
  return el(
    "div",
    { class: "props-body", "data-owner": "form" },
    el("div", { class: "props-head" }, el("h2", { text: t("Form settings") })),
    el("p", { class: "muted small", text: t("Select a field on the canvas to change it, or add one from the palette.") }),
    errorSlot(designer, owner, "form"),
    section(
      t("Form"),
      labelInputs(designer, owner, "form-label", t("Name"), form.label, (value, texts) => {
        designer.commit(() => {
          if (value === undefined) form.label = "";
          else form.label = value;
          if (designer.state.isNew && !designer.state.formKeyTouched) {
            const taken = new Set(designer.state.app.forms.map((f) => f.key));
            form.key = model.deriveKey(texts.en || Object.values(texts).find(Boolean) || "", taken, "form");
            keyInput.value = form.key;
            setError(keySlot, formKeyProblem(designer, form.key));
          }
        }, { coalesce: "form:label", structure: false });
      }),
      keyProp,
      labelInputs(designer, owner, "form-description", t("Description"), form.description, (value) => {
        designer.commit(() => setOrDelete(form, "description", value), { coalesce: "form:description", structure: false });
      }, { multiline: true }),
      prop(designer, owner, "form-title_field", t("Records are named by"), titleSelect),
      check(designer, owner, "form-sensitive", t("Holds sensitive data (reads are audited)"), form.sensitive, (event) => {
        designer.commit(() => setOrDelete(form, "sensitive", event.target.checked || undefined), { structure: false });
      }),
      check(designer, owner, "layout", t("Show each section as a tab"), form.layout === "tabs", (event) => {
        designer.setTabs(event.target.checked);
      }, t("Fields before the first section stay above the tabs.")),
    ),
  );
}

export function formKeyProblem(designer, key) {
  const others = new Set(designer.state.app.forms.map((f) => f.key));
  if (!designer.state.isNew) others.delete(key);
  if (!key) return t("A key is required.");
  if (!model.KEY_PATTERN.test(key)) return t("Use lower-case letters, digits and _, starting with a letter (at most 63).");
  if (designer.state.isNew && others.has(key)) return t("The app already has a form with the key “{key}”.", { key });
  return "";
}

function fieldPanel(designer, found) {
  const field = found.field;
  const uid = field._uid;
  const info = model.TYPES[field.type] || {};
  const inTable = Boolean(found.table);
  const edit = (mutate, name, structure = false) =>
    designer.commit(mutate, { coalesce: `${uid}:${name}`, structure, uid });

  // key, derived from the label while untouched
  const keySlot = errorSlot(designer, uid, "key");
  const keyInput = el("input", {
    type: "text",
    value: field.key,
    spellcheck: "false",
    autocomplete: "off",
    oninput: (event) => {
      const key = event.target.value.trim();
      edit(() => {
        field.key = key;
        field._kt = true;
      }, "key");
      setError(keySlot, model.keyProblem(key, designer.siblingKeys(uid)));
    },
  });
  const keyProp = prop(designer, uid, "key", t("Key"), keyInput, t("The name of the value in records and the API."));
  keyProp.querySelector("[data-testid=prop-key-error]").replaceWith(keySlot);
  const problem = model.keyProblem(field.key, designer.siblingKeys(uid));
  if (problem) setError(keySlot, problem);
  keyInput.setAttribute("aria-invalid", problem ? "true" : "false");

  const labelSet = labelInputs(designer, uid, "label", t("Label"), field.label, (value, texts) => {
    edit(() => {
      setOrDelete(field, "label", value);
      if (!field._kt) {
        const base = field.type === "section" ? "section" : inTable ? "column" : "field";
        field.key = model.deriveKey(texts.en || Object.values(texts).find(Boolean) || "", designer.siblingKeys(uid), base);
        keyInput.value = field.key;
        setError(keySlot, model.keyProblem(field.key, designer.siblingKeys(uid)));
      }
    }, "label");
  });

  const body = el("div", { class: "props-body", "data-owner": uid });
  body.append(
    el(
      "div",
      { class: "props-head" },
      el("h2", {}, el("span", { class: "type-icon", "aria-hidden": "true", text: info.icon || "?" }), ` ${model.typeName(field.type)}`),
      toolbar(designer, uid),
    ),
    errorSlot(designer, uid, "field"),
    section(t("General"), labelSet, typeProp(designer, field, inTable)),
  );
  // choices come right after the name: what people pick from is the point of the field
  if (info.options) {
    body.append(optionsEditor(designer, field));
    // Enter after the name goes on to the first empty option (or "Add an option")
    labelSet.querySelector("[data-testid=prop-label]")?.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.isComposing) return;
      event.preventDefault();
      const at = (field.options || []).findIndex((option) => !label(option.label, ""));
      body.querySelector(`[data-testid="${at >= 0 ? `option-${at}-label` : "option-add"}"]`)?.focus();
    });
  }
  const place = placeProp(designer, found);
  const width = widthProp(designer, found, edit);
  if (place || width) body.append(section(t("Layout"), place, width));
  body.append(section(t("Help text"), labelInputs(designer, uid, "help", t("Help text"), field.help, (value) => edit(() => setOrDelete(field, "help", value), "help"), { multiline: true })));
  if (info.input || info.indexable) body.append(behaviour(designer, found, edit));
  const validation = validationGroup(designer, field, edit);
  if (validation) body.append(validation);
  if (info.relation) body.append(relationGroup(designer, field, edit));
  if (info.people) body.append(peopleGroup(designer, field, edit, { prop, check, section }));
  if (info.computed) body.append(formulaGroup(designer, field, edit));
  body.append(conditionBuilder(designer, found));
  body.append(advancedGroup(designer, found, edit, keyProp));
  return body;
}

// Technical settings, folded away: the key, the index, the pattern, formulas as JsonLogic and
// option keys. Whether it is open is kept while the panel is rebuilt (designer.state).
function advancedGroup(designer, found, edit, keyProp) {
  const field = found.field;
  const uid = field._uid;
  const info = model.TYPES[field.type] || {};
  const parts = [keyProp];
  if ((info.indexable || info.indexOnly) && !found.table) {
    parts.push(check(designer, uid, "indexed", t("Indexed (fast filters and sorting)"), field.indexed, (event) => edit(() => setOrDelete(field, "indexed", event.target.checked || undefined), "indexed")));
  }
  if (info.input) {
    parts.push(jsonArea(designer, uid, "default_expr", t("Default formula (JsonLogic)"), field.default_expr, (value) => edit(() => setOrDelete(field, "default_expr", value), "default_expr"), t('Instead of a default value, e.g. {"today": []}.')));
  }
  if (info.text) {
    parts.push(
      prop(designer, uid, "pattern", t("Pattern (regular expression)"), el("input", {
        type: "text",
        value: field.pattern ?? "",
        spellcheck: "false",
        placeholder: "[0-9]{6}",
        oninput: (event) => edit(() => setOrDelete(field, "pattern", event.target.value), "pattern"),
      }), t("The whole value must match.")),
      labelInputs(designer, uid, "pattern_message", t("Message when the pattern does not match"), field.pattern_message, (value) => edit(() => setOrDelete(field, "pattern_message", value), "pattern_message")),
    );
  }
  if (info.options) parts.push(optionKeys(designer, field));
  if (info.computed) parts.push(...formulaAdvanced(designer, field, edit));
  const details = el("details", {
    class: "prop-group advanced",
    "data-testid": "prop-advanced",
    open: designer.state.advancedOpen || hasAdvancedError(designer, uid) ? true : null,
  }, el("summary", { "data-testid": "prop-advanced-toggle", text: t("Advanced") }), ...parts);
  details.addEventListener("toggle", () => (designer.state.advancedOpen = details.open));
  return details;
}

const ADVANCED_PROPS = ["key", "indexed", "default_expr", "pattern", "pattern_message", "formula_json"];

function hasAdvancedError(designer, uid) {
  const errors = designer.state.errors.get(uid) || {};
  return ADVANCED_PROPS.some((name) => errors[name]?.length) || Object.keys(errors).some((name) => name.startsWith("option-"));
}

// The keys records store for the options (derived from the labels until typed here).
function optionKeys(designer, field) {
  const uid = field._uid;
  const edit = (mutate, name) => designer.commit(mutate, { coalesce: `${uid}:${name}`, structure: false, uid });
  const rows = (field.options || []).map((option, position) =>
    el("li", {},
      el("input", {
        type: "text",
        value: option.value,
        "aria-label": t("Value of option {n}", { n: position + 1 }),
        "data-testid": `option-${position}-value`,
        spellcheck: "false",
        oninput: (event) => edit(() => {
          option.value = event.target.value;
          option._vt = true;
        }, `option-${position}-value`),
      }),
      el("span", { class: "muted small", text: ` ${label(option.label, "")}` }),
    ));
  return el("div", { class: "prop", "data-prop": "option-keys" },
    el("span", { class: "prop-title", text: t("Option keys") }),
    el("small", { class: "hint", text: t("What records store for each option; they follow the labels until you change them.") }),
    el("ol", { class: "option-keys" }, ...rows));
}

function toolbar(designer, uid) {
  const button = (testid, text, shortcut, onclick) =>
    el("button", { type: "button", class: "quiet small", "data-testid": testid, title: shortcut ? `${text} (${shortcut})` : text, "aria-keyshortcuts": shortcut ? shortcut.replace("Alt+↑", "Alt+ArrowUp").replace("Alt+↓", "Alt+ArrowDown") : null, onclick }, text);
  return el(
    "div",
    { class: "props-tools", role: "toolbar", "aria-label": t("Field actions") },
    button("designer-move-up", t("Move up"), "Alt+↑", () => designer.move(uid, -1)),
    button("designer-move-down", t("Move down"), "Alt+↓", () => designer.move(uid, 1)),
    button("designer-duplicate", t("Duplicate"), null, () => designer.duplicate(uid)),
    button("designer-delete", t("Delete"), "Delete", () => designer.remove(uid)),
  );
}

function typeProp(designer, field, inTable) {
  const choices = Object.keys(model.TYPES).filter((type) => {
    if (field.type === "section" || type === "section") return type === field.type;
    if (inTable && !model.TYPES[type].column) return false;
    return true;
  });
  const select = el("select", { onchange: (event) => designer.setType(field._uid, event.target.value) },
    ...choices.map((type) => el("option", { value: type, text: model.typeName(type) })));
  select.value = field.type;
  return prop(designer, field._uid, "type", t("Type"), select, t("Changing the type of a saved field may need its records migrated."));
}

// Where the field sits: before the sections, in a section, or in a table (as a column).
function placeProp(designer, found) {
  const field = found.field;
  if (field.type === "section") return null;
  const sections = designer.state.form.fields.filter((f) => f.type === "section");
  const tables = model.TYPES[field.type]?.column ? designer.state.form.fields.filter((f) => f.type === "table" && f !== field) : [];
  if (!sections.length && !tables.length && !found.table) return null;
  const current = found.table ? found.table._uid : designer.sectionOf(field._uid)?._uid || "top";
  const tabbed = designer.state.form.layout === "tabs";
  const options = [el("option", { value: "top", text: sections.length ? (tabbed ? t("Above the tabs") : t("Top of the form (before the sections)")) : t("The form itself") })];
  for (const s of sections) {
    const words = { name: label(s.label, "") || s.key };
    options.push(el("option", { value: s._uid, text: tabbed ? t("Tab: {name}", words) : t("Section: {name}", words) }));
  }
  for (const table of tables) options.push(el("option", { value: table._uid, text: t("Table: {name} (as a column)", { name: label(table.label, "") || table.key }) }));
  const select = el("select", {
    onchange: (event) => {
      designer.placeIn(field._uid, event.target.value);
      designer.select(field._uid, { focusProp: "parent" });
    },
  }, ...options);
  select.value = current;
  return prop(designer, field._uid, "parent", t("Place in"), select);
}

function parseTyped(type, text) {
  if (text === "") return { value: undefined };
  if (type === "number") {
    const value = Number(text);
    return Number.isFinite(value) ? { value } : { error: t("Enter a number.") };
  }
  if (type === "integer" || type === "rating") {
    const value = Number(text);
    return Number.isInteger(value) ? { value } : { error: t("Enter a whole number.") };
  }
  return { value: text };
}

function typedInput(type) {
  if (type === "number") return { type: "number", step: "any" };
  if (type === "integer") return { type: "number", step: "1" };
  if (type === "rating") return { type: "number", step: "1", min: "1" };
  if (type === "date") return { type: "date" };
  if (type === "time") return { type: "time", step: "1" };
  if (type === "datetime") return { type: "text", placeholder: "2025-01-31T09:00:00+08:00" };
  return { type: "text" };
}

function defaultProp(designer, field, edit) {
  const uid = field._uid;
  const type = field.type;
  if (["table", "file", "image", "relation", "signature", "richtext", "user", "department"].includes(type)) return null;
  let control;
  if (type === "boolean") {
    control = el("select", {
      onchange: (event) => edit(() => setOrDelete(field, "default", event.target.value === "" ? undefined : event.target.value === "true"), "default"),
    }, el("option", { value: "", text: t("(none)") }), el("option", { value: "true", text: t("Yes") }), el("option", { value: "false", text: t("No") }));
    control.value = field.default === undefined || field.default === null ? "" : String(field.default);
  } else if (type === "select") {
    control = el("select", {
      onchange: (event) => edit(() => setOrDelete(field, "default", event.target.value), "default"),
    }, el("option", { value: "", text: t("(none)") }), ...(field.options || []).map((o) => el("option", { value: o.value, text: label(o.label, "") || o.value })));
    control.value = field.default ?? "";
  } else if (type === "multiselect") {
    const chosen = new Set(Array.isArray(field.default) ? field.default : []);
    control = el("div", { class: "choices", role: "group" }, ...(field.options || []).map((o) =>
      el("label", { class: "inline" }, el("input", {
        type: "checkbox",
        checked: chosen.has(o.value),
        onchange: (event) => {
          if (event.target.checked) chosen.add(o.value);
          else chosen.delete(o.value);
          edit(() => setOrDelete(field, "default", field.options.map((x) => x.value).filter((v) => chosen.has(v))), "default");
        },
      }), ` ${label(o.label, "") || o.value}`)));
  } else {
    const slot = { current: null };
    control = el("input", {
      ...typedInput(type),
      value: field.default ?? "",
      oninput: (event) => {
        const parsed = parseTyped(type, event.target.value);
        setError(slot.current, parsed.error || "");
        if (!parsed.error) edit(() => setOrDelete(field, "default", parsed.value), "default");
      },
    });
    const wrapper = prop(designer, uid, "default", t("Default value"), control, t("Given to new records that leave the field empty."));
    slot.current = wrapper.querySelector(".prop-error");
    return wrapper;
  }
  return prop(designer, uid, "default", t("Default value"), control, t("Given to new records that leave the field empty."));
}

function behaviour(designer, found, edit) {
  const field = found.field;
  const uid = field._uid;
  const info = model.TYPES[field.type];
  const group = section(t("Behaviour"));
  if (info.input) {
    group.append(
      check(designer, uid, "required", t("Required"), field.required, (event) => edit(() => setOrDelete(field, "required", event.target.checked || undefined), "required")),
      defaultProp(designer, field, edit) || "",
      check(designer, uid, "read_only", t("Read-only (set by defaults or rules)"), field.read_only, (event) => edit(() => setOrDelete(field, "read_only", event.target.checked || undefined), "read_only")),
    );
  }
  if (info.indexable && !found.table) {
    group.append(
      check(designer, uid, "unique", t("Unique (no two records share a value)"), field.unique, (event) => edit(() => setOrDelete(field, "unique", event.target.checked || undefined), "unique")),
    );
  }
  return group;
}

function numberProp(designer, field, edit, name, text, kind = "integer", hint = null) {
  const wrapper = { slot: null };
  const control = el("input", {
    ...typedInput(kind),
    min: kind === "integer" ? "0" : null,
    value: field[name] ?? "",
    oninput: (event) => {
      const parsed = parseTyped(kind, event.target.value);
      setError(wrapper.slot, parsed.error || "");
      if (!parsed.error) edit(() => setOrDelete(field, name, parsed.value), name);
    },
  });
  const node = prop(designer, field._uid, name, text, control, hint);
  wrapper.slot = node.querySelector(".prop-error");
  return node;
}

function validationGroup(designer, field, edit) {
  const info = model.TYPES[field.type];
  const uid = field._uid;
  const group = section(t("Validation"));
  if (info.text) {
    group.append(
      numberProp(designer, field, edit, "min_length", t("Fewest characters")),
      numberProp(designer, field, edit, "max_length", t("Most characters"), "integer", field.type === "text" ? t("1000 when empty.") : t("100000 when empty.")),
    );
  } else if (info.limits) {
    const kind = info.limits;
    group.append(
      numberProp(designer, field, edit, "min", kind === "date" || kind === "time" || kind === "datetime" ? t("Earliest") : t("Smallest"), kind),
      numberProp(designer, field, edit, "max", kind === "date" || kind === "time" || kind === "datetime" ? t("Latest") : t("Largest"), kind),
    );
  } else if (info.rating) {
    group.append(numberProp(designer, field, edit, "max", t("Stars"), "integer", t("3 to 10; 5 when empty.")));
  } else if (info.richtext) {
    group.append(numberProp(designer, field, edit, "max_length", t("Most characters"), "integer", t("Of the text, not counting formatting; 10000 when empty.")));
  } else if (info.items) {
    group.append(numberProp(designer, field, edit, "min_items", t("Fewest choices")), numberProp(designer, field, edit, "max_items", t("Most choices")));
  } else if (info.table) {
    group.append(numberProp(designer, field, edit, "min_rows", t("Fewest rows")), numberProp(designer, field, edit, "max_rows", t("Most rows")));
  } else if (info.file) {
    const sizeSlot = { node: null };
    const size = el("input", {
      type: "number",
      step: "any",
      min: "0",
      value: field.max_size ? String(Math.round((field.max_size / 1048576) * 100) / 100) : "",
      oninput: (event) => {
        const text = event.target.value;
        const megabytes = Number(text);
        const bad = text !== "" && !(megabytes > 0);
        setError(sizeSlot.node, bad ? t("Enter a size above 0.") : "");
        if (!bad) edit(() => setOrDelete(field, "max_size", text === "" ? undefined : Math.max(1, Math.round(megabytes * 1048576))), "max_size");
      },
    });
    const sizeProp = prop(designer, uid, "max_size", t("Largest file (MB)"), size);
    sizeSlot.node = sizeProp.querySelector(".prop-error");
    group.append(
      prop(designer, uid, "accept", t("Accepted file types"), el("input", {
        type: "text",
        value: (field.accept || []).join(", "),
        placeholder: field.type === "image" ? "image/*" : "application/pdf, image/*",
        oninput: (event) => {
          const list = event.target.value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
          edit(() => setOrDelete(field, "accept", list), "accept");
        },
      }), t("MIME types separated by commas, e.g. image/*, application/pdf.")),
      sizeProp,
      check(designer, uid, "multiple", t("Several files"), field.multiple, (event) => edit(() => setOrDelete(field, "multiple", event.target.checked || undefined), "multiple")),
    );
  } else {
    return null;
  }
  return group;
}

function relationGroup(designer, field, edit) {
  const forms = [...designer.state.app.forms];
  if (designer.state.form.key && !forms.some((f) => f.key === designer.state.form.key)) forms.push({ key: designer.state.form.key, label: designer.state.form.label });
  const select = el("select", {
    onchange: (event) => edit(() => (field.target = event.target.value), "target"),
  }, ...forms.map((f) => el("option", { value: f.key, text: `${label(f.label, "") || f.key}${f.key === designer.state.form.key ? ` (${t("this form")})` : ""}` })));
  select.value = field.target || "";
  return section(t("Link"), prop(designer, field._uid, "target", t("Links to a record of"), select));
}

function jsonArea(designer, owner, name, text, value, onvalue, hint) {
  const node = { slot: null };
  const area = el("textarea", {
    class: "code",
    rows: 4,
    spellcheck: "false",
    value: value === undefined ? "" : JSON.stringify(value, null, 1),
    oninput: (event) => {
      const source = event.target.value.trim();
      if (!source) {
        setError(node.slot, "");
        onvalue(undefined);
        return;
      }
      try {
        const parsed = JSON.parse(source);
        setError(node.slot, "");
        event.target.setAttribute("aria-invalid", "false");
        onvalue(parsed);
      } catch (error) {
        event.target.setAttribute("aria-invalid", "true");
        setError(node.slot, t("Not valid JSON: {reason}", { reason: error.message }));
      }
    },
  });
  const wrapper = prop(designer, owner, name, text, area, hint);
  node.slot = wrapper.querySelector(".prop-error");
  return wrapper;
}

// The fields a formula may read, as the formula words name them: the label in the page's
// language (the key when there is none); labels in the other languages are read too.
function formulaFields(designer, field) {
  return designer.state.form.fields
    .filter((f) => f !== field && !["section", "table"].includes(f.type))
    .map((f) => ({ key: f.key, name: label(f.label, "") || f.key, names: Object.values(model.labelTexts(f.label, designer.state.editLocales)).filter(Boolean) }));
}

const PROMOTED_FUNCTIONS = ["IF", "SUM", "DATEDIF", "CONCAT", "TODAY"];

// A spreadsheet-like editor: IF({Pain score} >= 7, "High", "Low") compiled to the JsonLogic
// the engines run (formula.js), with field and function suggestions as you type ({ or a
// letter), chips that insert them, and the JsonLogic itself under Advanced. A formula these
// words cannot say is shown there only; the editor says so.
function formulaGroup(designer, field, edit) {
  const uid = field._uid;
  const fields = formulaFields(designer, field);
  const select = el("select", {
    onchange: (event) => edit(() => setOrDelete(field, "result_type", event.target.value === "text" ? undefined : event.target.value), "result_type"),
  }, ...["text", "number", "integer", "boolean", "date"].map((kind) => el("option", { value: kind, text: t(kind === "boolean" ? "Yes / no" : kind === "integer" ? "Whole number" : kind[0].toUpperCase() + kind.slice(1)) })));
  select.value = field.result_type || "text";
  const words = decompileFormula(field.formula, fields);
  const listId = `formula-list-${uid}`;
  const input = el("textarea", {
    class: "code formula-input",
    rows: 2,
    spellcheck: "false",
    autocomplete: "off",
    role: "combobox",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
    readonly: words === null ? true : null,
    value: words ?? "",
    placeholder: 'IF({…} >= 7, "High", "Low")',
  });
  const wrapper = prop(designer, uid, "formula", t("Formula"), input, t("Type { for a field; functions: IF, SUM, DATEDIF, CONCAT, TODAY, AND, OR, MIN, MAX, ISBLANK. Text goes in quotes."));
  const slot = wrapper.querySelector(".prop-error");
  const list = el("ul", { class: "formula-suggestions", role: "listbox", id: listId, "data-testid": "formula-suggestions", hidden: true });
  input.after(list);
  let offered = null;
  let active = -1;

  function close() {
    offered = null;
    active = -1;
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function mark(position) {
    active = position;
    [...list.children].forEach((item, i) => item.setAttribute("aria-selected", String(i === position)));
    if (position >= 0) input.setAttribute("aria-activedescendant", list.children[position].id);
  }

  function insert(text, from = input.selectionStart, to = input.selectionEnd) {
    input.setRangeText(text, from, to, "end");
    close();
    input.focus();
    changed();
  }

  function offer() {
    const found = suggest(input.value, input.selectionStart, fields);
    if (!found || !found.items.length || input.readOnly) return close();
    offered = found;
    list.replaceChildren(...found.items.map((item, i) => el("li", {
      role: "option",
      id: `${listId}-${i}`,
      "data-testid": `formula-suggestion-${item.key}`,
      "aria-selected": "false",
      text: item.label,
      onmousedown: (event) => {
        event.preventDefault(); // keep the caret in the formula
        insert(item.insert, found.from, input.selectionStart);
      },
    })));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    mark(0);
  }

  function changed() {
    const result = compileFormula(input.value, fields);
    if (!result.ok) {
      setError(slot, t("{message} (at character {n})", { message: t(result.template, result.values), n: result.at + 1 }));
      input.setAttribute("aria-invalid", "true");
      return;
    }
    setError(slot, "");
    input.setAttribute("aria-invalid", "false");
    edit(() => setOrDelete(field, "formula", result.logic), "formula");
    const json = document.querySelector(`[data-owner="${uid}"] [data-testid=prop-formula_json]`);
    if (json) json.value = result.logic === undefined ? "" : JSON.stringify(result.logic, null, 1);
  }

  input.addEventListener("input", () => {
    changed();
    offer();
  });
  input.addEventListener("keydown", (event) => {
    if (!offered) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const size = offered.items.length;
      mark((active + (event.key === "ArrowDown" ? 1 : size - 1)) % size);
    } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
      event.preventDefault();
      insert(offered.items[active].insert, offered.from, input.selectionStart);
    } else if (event.key === "Escape") {
      event.stopPropagation();
      close();
    }
  });
  input.addEventListener("blur", close);

  const chip = (text, insertText, testid, title) =>
    el("button", { type: "button", class: "chip", "data-testid": testid, title, disabled: input.readOnly ? true : null, onclick: () => insert(insertText) }, text);
  const chips = el("div", { class: "formula-chips", role: "group", "aria-label": t("Insert into the formula") },
    ...PROMOTED_FUNCTIONS.map((name) => chip(name, `${name}(`, `formula-fn-${name}`, `${name}(${FUNCTIONS[name].args})`)),
    ...fields.map((f) => chip(f.name, `{${f.name}}`, `formula-field-${f.key}`, f.key)));
  const parts = [wrapper, chips];
  if (words === null) {
    parts.unshift(el("p", { class: "notice warn small", "data-testid": "formula-unsayable", text: t("This formula uses more than these words can show. It is kept as it is; change it under Advanced.") }));
  }
  parts.push(prop(designer, uid, "result_type", t("Result"), select));
  return section(t("Formula"), ...parts);
}

// The formula as JsonLogic (under Advanced): for what the words cannot say.
function formulaAdvanced(designer, field, edit) {
  return [jsonArea(designer, field._uid, "formula_json", t("Formula (JsonLogic)"), field.formula, (value) => {
    edit(() => setOrDelete(field, "formula", value), "formula");
    const words = document.querySelector(`[data-owner="${field._uid}"] [data-testid=prop-formula]`);
    const text = decompileFormula(value, formulaFields(designer, field));
    if (words && text !== null) {
      words.value = text;
      words.readOnly = false;
    }
  }, t('e.g. {"years_between": [{"var": "birth_date"}, {"today": []}]}'))];
}

// -- options ------------------------------------------------------------------------------

function optionsEditor(designer, field) {
  const uid = field._uid;
  const list = el("ol", { class: "options-list", "data-testid": "prop-options" });
  const rerender = (focus) => {
    designer.renderProperties();
    if (focus) document.querySelector(`[data-testid="${focus}"]`)?.focus();
  };
  const edit = (mutate, name) => designer.commit(mutate, { coalesce: `${uid}:${name}`, structure: false, uid });
  const checkChinese = designer.state.appLocales.includes(CHECKED_LOCALE);
  (field.options || []).forEach((option, position) => {
    const texts = model.labelTexts(option.label, designer.state.editLocales);
    const missing = checkChinese ? missingMark(designer, `option-${position}-missing`, option.label) : null;
    const labels = designer.state.editLocales.map((locale, i) =>
      el("input", {
        type: "text",
        value: texts[locale],
        lang: locale,
        "aria-label": inLocale(t("Label of option {n}", { n: position + 1 }), locale),
        placeholder: inLocale(t("Label"), locale),
        "data-testid": i === 0 ? `option-${position}-label` : `option-${position}-label-${locale}`,
        oninput: (event) => edit(() => {
          texts[locale] = event.target.value;
          setOrDelete(option, "label", model.labelValue(texts));
          missing?.refresh(option.label);
          if (option._vt === false) {
            const taken = new Set(field.options.filter((o) => o !== option).map((o) => o.value));
            const source = texts.en || Object.values(texts).find((text) => text.trim()) || "";
            option.value = source.trim() ? model.deriveKey(source, taken, "option") : "";
            const keyInput = document.querySelector(`[data-testid="option-${position}-value"]`);
            if (keyInput) keyInput.value = option.value;
          }
        }, `option-${position}-label-${locale}`),
        // Enter: the next option (a new, empty one unless the next is empty already), so a
        // list of choices is typed as "Billing⏎Treatment⏎Other"
        onkeydown: (event) => {
          if (event.key !== "Enter" || event.isComposing) return;
          event.preventDefault();
          if (!event.target.value.trim()) return;
          const next = field.options[position + 1];
          if (!next || model.labelTexts(next.label, designer.state.editLocales)[locale]) {
            designer.commit(() => field.options.splice(position + 1, 0, model.emptyOption()), { structure: false, uid });
          }
          rerender(i === 0 ? `option-${position + 1}-label` : `option-${position + 1}-label-${locale}`);
        },
      }),
    );
    const move = (delta, testid) => () => {
      const target = position + delta;
      if (target < 0 || target >= field.options.length) return;
      designer.commit(() => {
        field.options.splice(position, 1);
        field.options.splice(target, 0, option);
      }, { structure: false, uid });
      rerender(`option-${target}-${testid}`);
    };
    list.append(
      el("li", { class: "option-row", "data-testid": `option-${position}` },
        el("div", { class: "option-fields" }, ...labels, missing?.mark),
        el("div", { class: "option-tools" },
          el("button", { type: "button", class: "icon-button", title: t("Move up"), "aria-label": t("Move option {n} up", { n: position + 1 }), "data-testid": `option-${position}-up`, onclick: move(-1, "up") }, "↑"),
          el("button", { type: "button", class: "icon-button", title: t("Move down"), "aria-label": t("Move option {n} down", { n: position + 1 }), "data-testid": `option-${position}-down`, onclick: move(1, "down") }, "↓"),
          el("button", {
            type: "button", class: "icon-button", title: t("Remove"), "aria-label": t("Remove option {n}", { n: position + 1 }), "data-testid": `option-${position}-remove`,
            onclick: () => {
              designer.commit(() => field.options.splice(position, 1), { structure: false, uid });
              rerender(field.options.length ? `option-${Math.min(position, field.options.length - 1)}-value` : "option-add");
            },
          }, "✕"),
        )),
    );
  });
  const add = el("button", {
    type: "button",
    class: "quiet small",
    "data-testid": "option-add",
    onclick: () => {
      designer.commit(() => {
        field.options ||= [];
        field.options.push(model.emptyOption());
      }, { structure: false, uid });
      rerender(`option-${field.options.length - 1}-label`);
    },
  }, t("Add an option"));
  const empty = field.options?.length ? null : el("p", { class: "muted small", "data-testid": "options-empty", text: t("No options yet: add the choices people pick from.") });
  return section(t("Options"), empty, list, add, errorSlot(designer, uid, "options"));
}

// -- visibility condition ------------------------------------------------------------------

function conditionFields(designer, found) {
  const self = found.field;
  const pool = [];
  if (found.table) for (const column of found.table.fields) if (column !== self) pool.push(column);
  for (const field of designer.state.form.fields) {
    if (field === self || field.type === "section" || field === found.table) continue;
    if (found.table && pool.some((c) => c.key === field.key)) continue;
    pool.push(field);
  }
  return pool;
}

// The closest field before `found` a condition is usually about: a dropdown with options, or
// a yes/no (null when there is none).
function nearestChoice(designer, found, candidates) {
  const list = found.table ? found.table.fields : designer.state.form.fields;
  const usable = new Set(candidates);
  for (let i = list.indexOf(found.field) - 1; i >= 0; i -= 1) {
    const field = list[i];
    if (!usable.has(field)) continue;
    if ((field.type === "select" && field.options?.some((o) => o.value)) || field.type === "boolean") return field;
  }
  return null;
}

function conditionBuilder(designer, found) {
  const field = found.field;
  const uid = field._uid;
  const candidates = conditionFields(designer, found);
  const byKey = new Map(candidates.map((f) => [f.key, f]));
  const parse = (rule) => parseCondition(rule, VISIBILITY, (key) => byKey.get(key)?.type);
  let state = parse(field.visible_if);
  let raw = state === null;
  state ||= { join: "all", rows: [] };
  const box = el("div", { class: "condition", "data-testid": "condition-builder" });
  const group = section(t("Show this field"), box);
  const builderErrors = errorSlot(designer, uid, "visible_if"); // the raw editor has its own

  const commit = (rule) =>
    designer.commit(() => setOrDelete(field, "visible_if", rule), { coalesce: `${uid}:visible_if`, structure: false, uid });
  const apply = () => commit(buildCondition(state));

  function valueControl(row, position) {
    const target = byKey.get(row.field);
    const type = target?.type || "text";
    const testid = `cond-${position}-value`;
    const onvalue = (text) => {
      row.value = literal(type, text);
      apply();
    };
    if ((type === "select" || type === "multiselect") && target.options?.length) {
      const select = el("select", { "data-testid": testid, "aria-label": t("Value"), onchange: (e) => onvalue(e.target.value) },
        ...target.options.map((o) => el("option", { value: o.value, text: label(o.label, "") || o.value })));
      if (row.value === undefined || row.value === null || row.value === "") row.value = target.options[0].value;
      select.value = String(row.value);
      return select;
    }
    if (type === "boolean") {
      const select = el("select", { "data-testid": testid, "aria-label": t("Value"), onchange: (e) => onvalue(e.target.value) },
        el("option", { value: "true", text: t("Yes") }), el("option", { value: "false", text: t("No") }));
      if (typeof row.value !== "boolean") row.value = true;
      select.value = String(row.value);
      return select;
    }
    return el("input", {
      ...typedInput(type === "computed" ? "text" : type),
      "data-testid": testid,
      "aria-label": t("Value"),
      value: row.value ?? "",
      oninput: (e) => onvalue(e.target.value),
    });
  }

  function draw(focus) {
    box.replaceChildren();
    if (raw) {
      const parsedOk = { ok: parse(field.visible_if) !== null };
      const back = el("button", {
        type: "button",
        class: "quiet small",
        "data-testid": "cond-raw-toggle",
        disabled: parsedOk.ok ? null : true,
        onclick: () => {
          state = parse(field.visible_if) || { join: "all", rows: [] };
          raw = false;
          draw("cond-raw-toggle");
        },
      }, t("Back to the builder"));
      const area = jsonArea(designer, uid, "visible_if", t("Condition (JsonLogic)"), field.visible_if, (value) => {
        commit(value);
        const ok = parse(value) !== null;
        back.disabled = !ok;
      }, t("Empty: always shown."));
      if (parse(field.visible_if) === null) {
        box.append(el("p", { class: "notice warn small", text: t("This condition is more than the builder can show; edit it as JsonLogic.") }));
      }
      box.append(area, back);
    } else {
      const join = el("select", {
        "data-testid": "cond-join",
        "aria-label": t("Join"),
        onchange: (e) => {
          state.join = e.target.value;
          apply();
        },
      }, el("option", { value: "all", text: t("all of these are true") }), el("option", { value: "any", text: t("any of these is true") }));
      join.value = state.join;
      box.append(el("p", { class: "cond-lead" }, state.rows.length ? el("span", { text: t("Only when") }) : el("span", { text: t("Always (no condition).") }), state.rows.length > 1 ? join : null));
      state.rows.forEach((row, position) => {
        const fieldSelect = el("select", {
          "data-testid": `cond-${position}-field`,
          "aria-label": t("Field"),
          onchange: (e) => {
            row.field = e.target.value;
            const ops = VISIBILITY.operators(byKey.get(row.field)?.type);
            if (!ops.includes(row.op)) row.op = ops[0];
            row.value = undefined;
            draw(`cond-${position}-field`);
            apply();
          },
        }, el("option", { value: "", text: t("(choose a field)") }), ...candidates.map((f) => el("option", { value: f.key, text: `${label(f.label, "") || f.key}` })));
        fieldSelect.value = row.field || "";
        const ops = VISIBILITY.operators(byKey.get(row.field)?.type);
        const opSelect = el("select", {
          "data-testid": `cond-${position}-op`,
          "aria-label": t("Comparison"),
          onchange: (e) => {
            row.op = e.target.value;
            draw(`cond-${position}-op`);
            apply();
          },
        }, ...ops.map((op) => el("option", { value: op, text: t(VISIBILITY.label(op)) })));
        if (!ops.includes(row.op)) row.op = ops[0];
        opSelect.value = row.op;
        box.append(el("div", { class: "cond-row", "data-testid": `cond-${position}` },
          fieldSelect, opSelect, needsValue(row.op) && row.field ? valueControl(row, position) : el("span"),
          el("button", {
            type: "button", class: "icon-button", "data-testid": `cond-${position}-remove`, "aria-label": t("Remove condition {n}", { n: position + 1 }),
            onclick: () => {
              state.rows.splice(position, 1);
              draw("cond-add");
              apply();
            },
          }, "✕")));
      });
      box.append(el("div", { class: "cond-tools" },
        el("button", {
          type: "button", class: "quiet small", "data-testid": "cond-add",
          disabled: candidates.length ? null : true,
          onclick: () => {
            // the first condition starts from the nearest choice field above this one (an
            // invoice number shown for one category): often only the value is left to pick
            const guess = state.rows.length ? null : nearestChoice(designer, found, candidates);
            state.rows.push({ field: guess?.key || "", op: "==", value: undefined });
            const at = state.rows.length - 1;
            draw(guess ? `cond-${at}-value` : `cond-${at}-field`);
            if (guess) apply();
          },
        }, t("Add a condition")),
        el("button", {
          type: "button", class: "quiet small", "data-testid": "cond-raw-toggle",
          onclick: () => {
            raw = true;
            draw("prop-visible_if");
          },
        }, t("Edit as JsonLogic"))), builderErrors);
    }
    if (focus) box.querySelector(`[data-testid="${focus}"]`)?.focus();
  }
  draw(null);
  return group;
}

// -- errors from a save --------------------------------------------------------------------

// `entries`: [{uid ("form" for the form itself), prop, message}], `general`: messages.
export function showPropErrors(designer, entries, general = []) {
  designer.state.errors = new Map();
  for (const { uid, prop: name, message } of entries) {
    const bucket = designer.state.errors.get(uid) || {};
    (bucket[name] ||= []).push(message);
    designer.state.errors.set(uid, bucket);
  }
  designer.state.generalErrors = general;
  designer.renderCanvas();
  const first = entries.find((entry) => entry.uid !== "form") || entries[0];
  if (first) {
    designer.select(first.uid === "form" ? null : first.uid);
    const slot = document.querySelector(`[data-testid=properties] [data-testid="prop-${first.prop}-error"]`) ||
      document.querySelector("[data-testid=properties] [data-testid=prop-field-error]");
    if (slot && slot.hidden) {
      // a property this panel has no input for: show it at the top
      const top = document.querySelector("[data-testid=properties] [data-testid=prop-field-error], [data-testid=properties] [data-testid=prop-form-error]");
      if (top) setError(top, `${first.prop}: ${first.message}`);
    }
    (slot && !slot.hidden ? slot : document.querySelector("[data-testid=properties] .prop-error:not([hidden])"))?.scrollIntoView({ block: "nearest" });
  }
}
