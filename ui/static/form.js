// The form renderer: a form definition (JSON, as in the app definition) becomes a live,
// accessible HTML form. Used by the generated create/edit pages and by the designer's
// preview. Plain ES module, no build step.
//
//   import { renderForm } from "/static/form.js";
//   const handle = renderForm(container, form, {values, access, app, mode, now});
//   handle.values();          // the data to send (writable, visible fields only)
//   handle.setErrors([{path: "/phone", message: "..."}, {path: "/items/0/qty", ...}]);
//   handle.clearErrors(); handle.destroy();
//
// options: values (record data), access (field key -> "hidden" | "read" | "write"; absent is
// write), app (the app key, or {key, forms: {form: {label, title_field, title_type}}}),
// mode ("create" | "edit" | "preview"), now (ISO instant for `today`/`now`), plus optional
// titles ({record id: title} for relation values already set), recordId (the record being
// edited: its files are downloaded through it) and onChange(values).
//
// Conditions (`visible_if`) and computed fields use the same JsonLogic evaluator as the
// server (/static/logic.js) and follow the server's rules (docs/forms.md, "Visibility"):
// fields are walked in order, a hidden field's value is dropped before later rules look at
// it, passes repeat until nothing changes, and a rule that cannot be evaluated counts as
// visible. The server is still the judge: it validates and computes again on save.

import { evaluate, truthy } from "/static/logic.js";
import { label, t } from "/static/i18n.js";
import { api, cookie } from "/static/api.js";
import { el } from "/static/dom.js";

const TEXT_INPUT = { text: "text", email: "email", phone: "tel", url: "url" };
const TEXTLIKE = new Set(["text", "textarea", "email", "phone", "url"]);
let uid = 0;

function humanize(key) {
  const words = String(key).replace(/_+/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : key;
}

export function fieldLabel(field) {
  return label(field.label, humanize(field.key));
}

function isEmpty(value) {
  return value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length);
}

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

export function humanSize(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

// Stored datetimes are UTC "YYYY-MM-DDTHH:MM:SSZ"; a datetime-local input shows local time.
function toLocalInput(value) {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function fromLocalInput(value) {
  if (!value) return null;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function showDateTime(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value ?? "");
  return date.toLocaleString(document.documentElement.lang || undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

function roundHalfEven(number) {
  const floor = Math.floor(number);
  const diff = number - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// The stored form of a computed result (engines/forms/fields.py ComputedField.coerce).
function coerce(field, result) {
  if (result === null || result === undefined || result === "") return null;
  const kind = field.result_type || "text";
  if (kind === "boolean") return truthy(result);
  if (kind === "text") {
    if (typeof result === "string") return result;
    if (typeof result === "boolean") return result ? "true" : "false";
    return typeof result === "number" ? String(result) : JSON.stringify(result);
  }
  if (kind === "date") return typeof result === "string" ? result.slice(0, 10) : null;
  const number = typeof result === "number" ? result : Number(String(result).trim());
  if (typeof result === "boolean" || !Number.isFinite(number)) return null;
  return kind === "integer" ? roundHalfEven(number) : number;
}

function showComputed(field, value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    return value.toLocaleString(document.documentElement.lang || undefined, { maximumFractionDigits: 2 });
  }
  if (typeof value === "boolean") return value ? t("Yes") : t("No");
  return String(value);
}

// -- the app: which field names a record of a form ---------------------------------------

const formInfo = new Map();

async function targetInfo(app, target) {
  const key = typeof app === "string" ? app : app?.key;
  const known = typeof app === "object" && app?.forms?.[target];
  if (known) return known;
  const cacheKey = `${key}/${target}`;
  if (!formInfo.has(cacheKey)) {
    formInfo.set(
      cacheKey,
      api(`/api/apps/${encodeURIComponent(key)}/forms/${encodeURIComponent(target)}`)
        .then(({ data }) => {
          const form = data.form;
          const titleKey = form.title_field || form.fields.find((f) => f.type === "text")?.key || null;
          const titleField = form.fields.find((f) => f.key === titleKey);
          return { label: form.label, title_field: titleKey, title_type: titleField?.type ?? null };
        })
        .catch(() => ({ label: target, title_field: null, title_type: null })),
    );
  }
  return formInfo.get(cacheKey);
}

function titleOf(info, record) {
  const value = info.title_field ? record.data?.[info.title_field] : null;
  if (isEmpty(value)) return `#${record.id.slice(-6)}`;
  if (info.title_type === "datetime") return showDateTime(value);
  return String(value);
}

/**
 * A search-as-you-type picker of a record of `target` (a combobox over the record API).
 * Returns {element, input (hidden, holds the id), get(), set(id, title), setDisabled(bool),
 * focus()}.
 */
export function relationPicker({ app, target, name, id, value = null, title = null, onChange = () => {} }) {
  const appKey = typeof app === "string" ? app : app?.key;
  const listId = `${id}-list`;
  const hidden = el("input", { type: "hidden", name, value: value ?? "" });
  const search = el("input", {
    id,
    type: "search",
    role: "combobox",
    autocomplete: "off",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
    placeholder: t("Search…"),
    "data-testid": `relation-${name}`,
    class: "fl-relation-search",
  });
  const list = el("ul", { id: listId, role: "listbox", class: "fl-options", hidden: true });
  const clear = el("button", { type: "button", class: "icon-button fl-clear", "aria-label": t("Clear"), text: "×" });
  const chosen = el("a", { class: "fl-relation-chosen", "data-testid": `relation-${name}-chosen` });
  const element = el("div", { class: "fl-relation" }, el("div", { class: "fl-relation-row" }, search, clear), chosen, list, hidden);
  let items = [];
  let active = -1;
  let timer = null;
  let requestNo = 0;

  function showChosen(recordId, text) {
    if (recordId) {
      chosen.textContent = text || `#${recordId.slice(-6)}`;
      chosen.href = `/apps/${appKey}/forms/${target}/${recordId}`;
      chosen.hidden = false;
      search.value = "";
      search.placeholder = t("Change…");
    } else {
      chosen.hidden = true;
      chosen.removeAttribute("href");
      search.placeholder = t("Search…");
    }
    clear.hidden = !recordId;
  }

  function close() {
    list.hidden = true;
    search.setAttribute("aria-expanded", "false");
    search.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function choose(index) {
    const item = items[index];
    if (!item) return;
    clearTimeout(timer);
    requestNo++; // answers still on their way are for the old text

    hidden.value = item.id;
    showChosen(item.id, item.title);
    close();
    onChange(item.id);
  }

  function highlight(index) {
    active = index;
    [...list.children].forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    if (list.children[index]) search.setAttribute("aria-activedescendant", list.children[index].id);
  }

  async function lookup() {
    const query = search.value.trim();
    const mine = ++requestNo;
    const info = await targetInfo(app, target);
    const params = new URLSearchParams({ limit: "20", sort: "-id" });
    const textual = info.title_field && TEXTLIKE.has(info.title_type);
    if (query && textual) {
      const variants = [...new Set([query, query.toLowerCase(), query[0].toUpperCase() + query.slice(1)])];
      const parts = variants.map((v) => ({ in: [v, { var: info.title_field }] }));
      params.set("filter", JSON.stringify(parts.length > 1 ? { or: parts } : parts[0]));
    }
    if (info.title_field) params.set("fields", info.title_field);
    let found = [];
    try {
      const { data } = await api(`/api/records/${appKey}/${target}?${params}`);
      found = data.items.map((record) => ({ id: record.id, title: titleOf(info, record) }));
    } catch (problem) {
      found = [];
    }
    if (mine !== requestNo || document.activeElement !== search) return;
    if (query && !textual) found = found.filter((item) => item.title.toLowerCase().includes(query.toLowerCase()));
    items = found.slice(0, 10);
    list.replaceChildren(
      ...(items.length
        ? items.map((item, i) =>
            el("li", {
              id: `${listId}-${i}`,
              role: "option",
              "aria-selected": "false",
              text: item.title,
              onmousedown: (event) => {
                event.preventDefault();
                choose(i);
              },
            }),
          )
        : [el("li", { class: "fl-none", text: t("No matches") })]),
    );
    list.hidden = false;
    search.setAttribute("aria-expanded", "true");
    highlight(items.length ? 0 : -1);
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(lookup, 180);
  });
  search.addEventListener("focus", () => {
    if (!hidden.value && !search.value) lookup();
  });
  search.addEventListener("blur", () => setTimeout(close, 150));
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (list.hidden) lookup();
      else highlight(Math.min(active + 1, items.length - 1));
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (event.key === "Enter" && !list.hidden && active >= 0) {
      event.preventDefault();
      choose(active);
    } else if (event.key === "Escape") {
      close();
    }
  });
  clear.addEventListener("click", () => {
    hidden.value = "";
    showChosen(null);
    onChange(null);
    search.focus();
  });

  showChosen(value, title);
  if (value && !title) {
    targetInfo(app, target).then((info) =>
      api(`/api/records/${appKey}/${target}/${value}`)
        .then(({ data }) => showChosen(hidden.value, titleOf(info, data)))
        .catch(() => {}),
    );
  }
  return {
    element,
    input: hidden,
    focusTarget: search,
    get: () => hidden.value || null,
    set(recordId, text) {
      hidden.value = recordId ?? "";
      showChosen(recordId, text);
    },
    setDisabled(disabled) {
      search.disabled = disabled;
      search.hidden = disabled;
      clear.hidden = disabled || !hidden.value;
    },
  };
}

// -- controls: one per field type ------------------------------------------------------------

function acceptList(field) {
  const accept = field.accept ?? (field.type === "image" ? ["image/*"] : []);
  return accept.join(",");
}

function fileControl(field, ctx) {
  const { id, name, value } = ctx;
  const multiple = Boolean(field.multiple);
  let files = Array.isArray(value) ? clone(value) : value ? [clone(value)] : [];
  const previews = new Map(); // file id -> object URL of the local file just uploaded
  const input = el("input", {
    id,
    type: "file",
    accept: acceptList(field) || undefined,
    multiple: multiple || undefined,
    "data-testid": `file-${name}`,
    class: "fl-file-input",
  });
  const list = el("ul", { class: "fl-files" });
  const status = el("p", { class: "fl-file-status muted", "aria-live": "polite" });
  const element = el("div", { class: "fl-file" }, input, status, list);
  let disabled = false;

  function href(file) {
    const record = ctx.recordId ? `?record=${encodeURIComponent(ctx.recordId)}` : "";
    return `/api/files/${file.id}${record}`;
  }

  function draw() {
    list.replaceChildren(
      ...files.map((file, index) => {
        const image = String(file.content_type || "").startsWith("image/");
        const source = previews.get(file.id) || href(file);
        return el(
          "li",
          { class: "fl-file-item", "data-file": file.id },
          image ? el("img", { src: source, alt: file.name, class: "fl-preview", "data-testid": "file-preview" }) : null,
          el("a", { href: href(file), target: "_blank", rel: "noopener", text: file.name }),
          el("span", { class: "muted small", text: humanSize(file.size || 0) }),
          disabled
            ? null
            : el("button", {
                type: "button",
                class: "icon-button",
                "aria-label": t("Remove {name}", { name: file.name }),
                text: "×",
                onclick: () => {
                  files.splice(index, 1);
                  draw();
                  ctx.changed();
                },
              }),
        );
      }),
    );
  }

  async function upload(file) {
    const body = new FormData();
    body.append("file", file, file.name);
    const path = encodeURIComponent(ctx.filePath);
    const answer = await fetch(`/api/files/${encodeURIComponent(ctx.appKey)}/${encodeURIComponent(ctx.formKey)}/${path}`, {
      method: "POST",
      body,
      headers: { "X-CSRF-Token": cookie("formloom_csrf"), accept: "application/json" },
    });
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(data.errors?.[0]?.message || data.detail || `HTTP ${answer.status}`);
    return data;
  }

  input.addEventListener("change", async () => {
    const chosen = [...input.files];
    if (!chosen.length) return;
    ctx.pending(+1);
    status.textContent = t("Uploading…");
    ctx.setError(null);
    try {
      for (const file of chosen) {
        const ref = await upload(file);
        if (file.type.startsWith("image/")) previews.set(ref.id, URL.createObjectURL(file));
        files = multiple ? [...files, ref] : [ref];
      }
      status.textContent = "";
    } catch (error) {
      status.textContent = "";
      ctx.setError(error.message);
    } finally {
      input.value = "";
      ctx.pending(-1);
      draw();
      ctx.changed();
    }
  });
  draw();
  return {
    element,
    focusTarget: input,
    get: () => (multiple ? (files.length ? clone(files) : null) : files[0] ? clone(files[0]) : null),
    set(next) {
      files = Array.isArray(next) ? clone(next) : next ? [clone(next)] : [];
      draw();
    },
    setDisabled(value) {
      disabled = value;
      input.hidden = value;
      draw();
    },
    destroy() {
      for (const url of previews.values()) URL.revokeObjectURL(url);
    },
  };
}

function choiceControl(field, ctx) {
  const { id, name, value } = ctx;
  const options = field.options || [];
  if (field.type === "multiselect") {
    const chosen = new Set(Array.isArray(value) ? value : []);
    const boxes = options.map((option) =>
      el("input", { type: "checkbox", name, value: option.value, checked: chosen.has(option.value) || undefined }),
    );
    const element = el(
      "div",
      { class: "fl-tags", role: "group", id, "aria-label": fieldLabel(field) },
      options.map((option, i) => el("label", { class: "tag-choice" }, boxes[i], el("span", { text: label(option.label, option.value) }))),
    );
    element.addEventListener("change", ctx.changed);
    return {
      element,
      focusTarget: boxes[0],
      get: () => {
        const values = boxes.filter((box) => box.checked).map((box) => box.value);
        return values.length ? values : null;
      },
      set: (next) => boxes.forEach((box) => (box.checked = Array.isArray(next) && next.includes(box.value))),
      setDisabled: (disabled) => boxes.forEach((box) => (box.disabled = disabled)),
    };
  }
  if (options.length <= 4 && !ctx.inTable) {
    const radios = options.map((option) =>
      el("input", { type: "radio", name, value: option.value, checked: value === option.value || undefined }),
    );
    const element = el(
      "div",
      { class: "fl-radios", role: "radiogroup", id, "aria-label": fieldLabel(field) },
      options.map((option, i) => el("label", { class: "radio-choice" }, radios[i], el("span", { text: label(option.label, option.value) }))),
    );
    element.addEventListener("change", ctx.changed);
    return {
      element,
      focusTarget: radios[0],
      get: () => radios.find((radio) => radio.checked)?.value ?? null,
      set: (next) => radios.forEach((radio) => (radio.checked = radio.value === next)),
      setDisabled: (disabled) => radios.forEach((radio) => (radio.disabled = disabled)),
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
      Object.assign(attrs, { type: "datetime-local" });
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

function makeControl(field, ctx) {
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
    default:
      return inputControl(field, ctx);
  }
}

// -- the renderer -------------------------------------------------------------------------------

export function renderForm(container, form, options = {}) {
  const { access = {}, app = null, mode = "create", now = undefined, titles = {}, recordId = null, onChange = null } = options;
  const appKey = typeof app === "string" ? app : app?.key ?? "";
  const prefix = `fl${++uid}`;
  const initial = clone(options.values || {});
  const fields = (form.fields || []).filter((field) => access[field.key] !== "hidden");
  const entries = new Map(); // field key -> {field, wrapper, control, error, section}
  const tables = new Map(); // table key -> table handle
  let pendingUploads = 0;
  let waiters = [];
  const root = el("div", { class: "fl-form", "data-form": form.key });

  const evalOpts = now ? { now } : {};

  // defaults for a new record: literals, and expressions over what is filled in
  const data = clone(initial);
  if (mode !== "edit") {
    for (const field of fields) {
      if (field.type === "section" || field.type === "computed" || field.key in data) continue;
      if (field.default !== undefined && field.default !== null) data[field.key] = clone(field.default);
      else if (field.default_expr) {
        try {
          data[field.key] = evaluate(field.default_expr, data, evalOpts);
        } catch {
          /* the server reports a failing default */
        }
      }
    }
  }

  function pending(delta) {
    pendingUploads += delta;
    if (pendingUploads === 0) {
      waiters.forEach((resolve) => resolve());
      waiters = [];
    }
  }

  function readOnly(field) {
    return mode === "view" || access[field.key] === "read" || Boolean(field.read_only);
  }

  function makeWrapper(field, control, { required }) {
    const errorId = `${prefix}-${field.key}-error`;
    const helpId = `${prefix}-${field.key}-help`;
    const help = field.help ? el("p", { class: "fl-help", id: helpId, text: label(field.help) }) : null;
    const error = el("p", { class: "fl-error", id: errorId, hidden: true, role: "alert" });
    const groupLike = control.element.matches?.(".fl-tags, .fl-radios");
    const heading = groupLike
      ? el("span", { class: "fl-label", id: `${prefix}-${field.key}-label` }, fieldLabel(field), required ? el("span", { class: "fl-required", "aria-hidden": "true", text: " *" }) : null)
      : el("label", { class: "fl-label", for: `${prefix}-${field.key}` }, fieldLabel(field), required ? el("span", { class: "fl-required", "aria-hidden": "true", text: " *" }) : null);
    if (groupLike) {
      control.element.removeAttribute("aria-label");
      control.element.setAttribute("aria-labelledby", heading.id);
    }
    const target = control.focusTarget;
    if (target && target.setAttribute) {
      target.setAttribute("aria-describedby", [help ? helpId : null, errorId].filter(Boolean).join(" "));
      if (required) target.setAttribute("aria-required", "true");
    }
    const wide = ["textarea", "table", "multiselect", "file", "image"].includes(field.type);
    return {
      wrapper: el("div", { class: `fl-field fl-${field.type}${wide ? " wide" : ""}`, "data-field": field.key }, heading, control.element, help, error),
      error,
    };
  }

  // -- tables: editable rows ------------------------------------------------------------
  function tableControl(field, value, locked) {
    const columns = (field.fields || []).filter((column) => access[`${field.key}.${column.key}`] !== "hidden");
    const body = el("tbody");
    const rows = []; // [{row element, controls: Map(col -> control), errors: Map}]
    const addButton = el("button", { type: "button", class: "quiet small", "data-testid": `add-row-${field.key}`, text: `+ ${t("Add row")}` });
    const element = el(
      "div",
      { class: "fl-table", id: `${prefix}-${field.key}`, role: "group", "aria-label": fieldLabel(field) },
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
      const values = rowValue ? clone(rowValue) : {};
      if (!rowValue) {
        for (const column of columns) {
          if (column.default !== undefined && column.default !== null) values[column.key] = clone(column.default);
        }
      }
      const index = rows.length;
      const controls = new Map();
      const errors = new Map();
      const cells = columns.map((column) => {
        const name = `${field.key}.${index}.${column.key}`;
        const control = makeControl(column, {
          id: `${prefix}-${field.key}-${uid++}-${column.key}`,
          name,
          value: values[column.key],
          app,
          appKey,
          formKey: form.key,
          filePath: `${field.key}.${column.key}`,
          titles,
          recordId,
          inTable: true,
          changed: update,
          pending,
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
      const element = el("tr", {}, el("td", { class: "row-no" }), cells, el("td", { class: "row-actions" }, locked ? null : [up, down, remove]));
      const row = { element, controls, errors, up, down };
      rows.push(row);
      body.append(element);
      up.addEventListener("click", () => move(row, -1));
      down.addEventListener("click", () => move(row, +1));
      remove.addEventListener("click", () => {
        rows.splice(rows.indexOf(row), 1);
        element.remove();
        renumber();
        update();
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
      update();
      (delta < 0 ? row.up : row.down).focus();
    }

    addButton.addEventListener("click", () => {
      addRow(null, true);
      update();
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
              let shown = true;
              try {
                shown = truthy(evaluate(column.visible_if, scope, evalOpts));
              } catch {
                shown = true;
              }
              cell.classList.toggle("fl-off", !shown);
              control.setDisabled(!shown || locked);
            }
            if (column.type === "computed") {
              let result = null;
              try {
                result = coerce(column, evaluate(column.formula, scope, evalOpts));
              } catch {
                result = null;
              }
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

  function showCellError(error, control, message) {
    if (!error) return;
    error.textContent = message || "";
    error.hidden = !message;
    const target = control?.focusTarget;
    if (target?.setAttribute) {
      if (message) target.setAttribute("aria-invalid", "true");
      else target.removeAttribute("aria-invalid");
    }
  }

  // -- build the fields, grouped under their sections ---------------------------------------
  let holder = el("div", { class: "fl-section fl-section-lead" });
  root.append(holder);
  let currentSection = null;
  for (const field of fields) {
    if (field.type === "section") {
      const heading = el("h2", { class: "fl-section-title", text: fieldLabel(field) });
      holder = el("section", { class: "fl-section", "data-section": field.key }, heading, field.help ? el("p", { class: "fl-help", text: label(field.help) }) : null);
      root.append(holder);
      currentSection = field.key;
      entries.set(field.key, { field, wrapper: holder, control: null, section: null });
      continue;
    }
    const locked = readOnly(field);
    const id = `${prefix}-${field.key}`;
    let entry;
    const ctx = {
      id,
      name: field.key,
      value: data[field.key],
      app,
      appKey,
      formKey: form.key,
      filePath: field.key,
      titles,
      recordId,
      changed: () => update(),
      pending,
      setError: (message) => showError(field.key, message),
    };
    const control = field.type === "table" ? tableControl(field, data[field.key], locked) : makeControl(field, ctx);
    if (field.type === "table") tables.set(field.key, control);
    if (locked && field.type !== "table") control.setDisabled(true);
    const required = Boolean(field.required) && !locked && field.type !== "computed";
    const { wrapper, error } = makeWrapper(field, control, { required });
    if (locked) wrapper.classList.add("fl-locked");
    entry = { field, wrapper, control, error, section: currentSection, locked };
    entries.set(field.key, entry);
    holder.append(wrapper);
  }
  root.querySelectorAll(".fl-section").forEach((section) => {
    if (!section.querySelector(".fl-field") && section.classList.contains("fl-section-lead")) section.remove();
  });
  container.replaceChildren(root);

  // -- live evaluation: read, hide, compute -------------------------------------------------------
  function read() {
    const out = {};
    for (const [key, entry] of entries) {
      if (!entry.control || entry.field.type === "computed") continue;
      if (entry.locked) {
        if (!isEmpty(initial[key])) out[key] = clone(initial[key]);
        continue;
      }
      const value = entry.control.get();
      if (!isEmpty(value)) out[key] = value;
    }
    return out;
  }

  let hiddenKeys = new Set();

  function evaluateForm() {
    const raw = read();
    const ruleFields = [...entries.values()].map((entry) => entry.field);
    const computed = ruleFields.filter((field) => field.type === "computed");
    let hidden = new Set();
    let visibleData = raw;
    const passes = Math.max(1, ruleFields.length);
    for (let pass = 0; pass < passes; pass++) {
      const scope = { ...raw };
      const nowHidden = new Set();
      let sectionHidden = false;
      for (const field of ruleFields) {
        if (field.type === "section") {
          sectionHidden = false;
        }
        let shown = !sectionHidden;
        if (shown && field.visible_if !== undefined && field.visible_if !== null) {
          try {
            shown = truthy(evaluate(field.visible_if, scope, evalOpts));
          } catch {
            shown = true;
          }
        }
        if (field.type === "section") {
          sectionHidden = !shown;
          if (!shown) nowHidden.add(field.key);
          continue;
        }
        if (!shown) {
          nowHidden.add(field.key);
          delete scope[field.key];
        }
        if (field.type === "computed") {
          let result = null;
          if (shown) {
            try {
              result = coerce(field, evaluate(field.formula, scope, evalOpts));
            } catch {
              result = null;
            }
          }
          if (isEmpty(result)) delete scope[field.key];
          else scope[field.key] = result;
        }
      }
      // computed fields may be read by earlier rules: fill them in for the next pass
      for (const field of computed) {
        if (nowHidden.has(field.key)) continue;
        try {
          const result = coerce(field, evaluate(field.formula, scope, evalOpts));
          if (isEmpty(result)) delete scope[field.key];
          else scope[field.key] = result;
        } catch {
          delete scope[field.key];
        }
      }
      const same = nowHidden.size === hidden.size && [...nowHidden].every((key) => hidden.has(key));
      hidden = nowHidden;
      visibleData = scope;
      Object.assign(raw, Object.fromEntries(computed.map((field) => [field.key, scope[field.key]]).filter(([, v]) => v !== undefined)));
      if (same && pass > 0) break;
    }
    return { hidden, data: visibleData };
  }

  function update() {
    const { hidden, data: current } = evaluateForm();
    hiddenKeys = hidden;
    for (const [key, entry] of entries) {
      entry.wrapper.hidden = hidden.has(key);
      if (entry.field.type === "computed") entry.control.set(current[key] ?? null);
    }
    for (const [key, table] of tables) if (!hidden.has(key)) table.refresh(current);
    if (onChange) onChange(values());
  }

  function values() {
    const out = {};
    const current = read();
    for (const [key, entry] of entries) {
      if (!entry.control || entry.locked || entry.field.type === "computed") continue;
      if (hiddenKeys.has(key) || (entry.section && hiddenKeys.has(entry.section))) continue;
      out[key] = current[key] ?? null;
    }
    return out;
  }

  // -- errors at their fields ----------------------------------------------------------------------
  function showError(key, message) {
    const entry = entries.get(key);
    if (!entry || !entry.error) return false;
    entry.error.textContent = message || "";
    entry.error.hidden = !message;
    entry.wrapper.classList.toggle("fl-invalid", Boolean(message));
    const target = entry.control.focusTarget;
    const targets = entry.control.element.matches?.(".fl-tags, .fl-radios")
      ? [entry.control.element]
      : [target];
    for (const node of targets) {
      if (!node?.setAttribute) continue;
      if (message) node.setAttribute("aria-invalid", "true");
      else node.removeAttribute("aria-invalid");
    }
    return true;
  }

  function clearErrors() {
    for (const [key, entry] of entries) {
      if (entry.error) showError(key, null);
    }
    for (const table of tables.values()) {
      table.rows.forEach((row) => {
        for (const [key, error] of row.errors) showCellError(error, row.controls.get(key), null);
      });
    }
  }

  function setErrors(errors = []) {
    clearErrors();
    const unplaced = [];
    let first = null;
    const byField = new Map();
    for (const error of errors) {
      const path = String(error.path || "").replace(/^\/data(?=\/|$)/, "");
      const parts = path.split("/").filter(Boolean);
      const key = parts[0] || error.field;
      const entry = entries.get(key);
      if (!entry || !entry.control || entry.wrapper.hidden) {
        unplaced.push(error);
        continue;
      }
      if (parts.length >= 3 && tables.has(key)) {
        const at = tables.get(key).errorAt(Number(parts[1]), parts[2]);
        if (at?.error) {
          showCellError(at.error, at.control, error.message);
          first = first || at.control.focusTarget;
          continue;
        }
      }
      byField.set(key, [...(byField.get(key) || []), error.message]);
      first = first || entry.control.focusTarget;
    }
    for (const [key, messages] of byField) showError(key, messages.join(" "));
    if (first?.focus) first.focus();
    return unplaced;
  }

  update();

  return {
    values,
    setErrors,
    clearErrors,
    /** Resolves when no upload is in flight. */
    ready: () => (pendingUploads === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
    /** Every readable value as shown (computed ones included), for previews. */
    data: () => evaluateForm().data,
    destroy() {
      for (const entry of entries.values()) entry.control?.destroy?.();
      for (const table of tables.values()) table.rows.forEach((row) => row.controls.forEach((c) => c.destroy?.()));
      root.remove();
    },
  };
}
