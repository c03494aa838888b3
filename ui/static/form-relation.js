// The link-to-record control: a search-as-you-type combobox over a target form's records,
// named by its title field, with a second line that tells namesakes apart (the target's
// summary fields: those its definition lists, else phone, then date, then select; never a
// field hidden from the caller; platform/records/picker.py). Matches come from the list's quick search (`q`: exact, then
// prefix, then contains). Keyboard: nothing is highlighted until ↓ (first option), ↑, Enter
// picks the highlighted option (the best match when none is), Esc closes. Once picked, the box
// shows the record's title and the second line under it. Used by generated forms (form.js),
// the list's filter bar (runtime-list.js), dashboards and the rule editor.

import { api } from "/static/api.js";
import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { isEmpty, showDateTime } from "/static/form-values.js";

const TEXTLIKE = new Set(["text", "textarea", "email", "phone", "url"]);
// The kinds of field a second line is made of, preferred in this order, and how many it shows
// (the same rule as platform/records/picker.py, for pages that pass only the app's key).
const SUMMARY_TYPES = ["phone", "date", "select"];
const SUMMARY_SIZE = 2;

function optionLabel(label, value) {
  if (typeof label === "string") return label;
  if (label && typeof label === "object") {
    const lang = document.documentElement.lang || "en";
    return label[lang] ?? label.en ?? Object.values(label)[0] ?? value;
  }
  return value;
}

// The summary fields of a form definition (hidden fields are already left out of it): those
// it lists in `summary`, else its phone, then date, then select fields.
function summaryOf(form, titleKey) {
  const listed = Array.isArray(form.summary);
  const fields = form.fields.filter((f) => (listed ? form.summary.includes(f.key) : f.key !== titleKey));
  const chosen = listed
    ? form.summary.map((key) => fields.find((f) => f.key === key)).filter(Boolean)
    : SUMMARY_TYPES.flatMap((type) => fields.filter((f) => f.type === type)).slice(0, SUMMARY_SIZE);
  return chosen.map((f) => ({
      key: f.key,
      type: f.type,
      ...(f.type === "select" ? { options: Object.fromEntries((f.options ?? []).map((o) => [o.value, optionLabel(o.label, o.value)])) } : {}),
    }));
}

// Which field names a record of a form (the app's forms as the page has them, else asked once).
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
          return { label: form.label, title_field: titleKey, title_type: titleField?.type ?? null, summary: summaryOf(form, titleKey) };
        })
        .catch(() => ({ label: target, title_field: null, title_type: null, summary: [] })),
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

// The second line of an option: the record's summary values joined by " · " ("" without any).
function secondLineOf(info, record) {
  return (info.summary ?? [])
    .map((field) => {
      const value = record.data?.[field.key];
      if (isEmpty(value)) return null;
      if (field.type === "select") return field.options?.[value] ?? String(value);
      if (field.type === "datetime") return showDateTime(value);
      return String(value);
    })
    .filter(Boolean)
    .join(" · ");
}

// The title and the second line as an option or the chosen record shows them.
function twoLines(title, second) {
  return [el("span", { class: "fl-option-title", text: title }), ...(second ? [el("small", { class: "fl-option-sub muted", text: second })] : [])];
}

/**
 * A search-as-you-type picker of a record of `target` (a combobox over the record API).
 * Returns {element, input (hidden, holds the id), get(), set(id, title), setDisabled(bool),
 * focus()}.
 */
export function relationPicker({ app, target, name, id, value = null, title = null, onChange = () => {} }) {
  const appKey = typeof app === "string" ? app : app?.key;
  const listId = `${id}-list`;
  const subId = `${id}-sub`;
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
  const chosenSub = el("small", { id: subId, class: "fl-relation-sub muted", "data-testid": `relation-${name}-sub`, hidden: true });
  const element = el(
    "div",
    { class: "fl-relation" },
    el("div", { class: "fl-relation-row" }, search, clear),
    el("div", { class: "fl-relation-picked" }, chosen, chosenSub),
    list,
    hidden,
  );
  let items = [];
  let active = -1;
  let timer = null;
  let requestNo = 0;
  let chosenTitle = "";

  // The picked record: its title in the box and as a link under it, its second line below.
  function showChosen(recordId, text, second = "") {
    if (recordId) {
      chosenTitle = text || `#${recordId.slice(-6)}`;
      chosen.textContent = chosenTitle;
      chosen.href = `/apps/${appKey}/forms/${target}/${recordId}`;
      chosen.hidden = false;
      chosenSub.textContent = second;
      chosenSub.hidden = !second;
      if (document.activeElement !== search) search.value = chosenTitle;
      search.setAttribute("aria-describedby", subId);
      search.placeholder = t("Search…");
    } else {
      chosenTitle = "";
      chosen.hidden = true;
      chosen.removeAttribute("href");
      chosenSub.textContent = "";
      chosenSub.hidden = true;
      search.removeAttribute("aria-describedby");
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
    search.value = item.title;
    showChosen(item.id, item.title, item.second);
    close();
    onChange(item.id);
  }

  function highlight(index) {
    active = index;
    [...list.children].forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    if (list.children[index]) {
      search.setAttribute("aria-activedescendant", list.children[index].id);
      list.children[index].scrollIntoView?.({ block: "nearest" });
    } else search.removeAttribute("aria-activedescendant");
  }

  async function lookup() {
    // the box holding the picked record's title searches afresh, not for that title
    const query = hidden.value && search.value === chosenTitle ? "" : search.value.trim();
    const mine = ++requestNo;
    const info = await targetInfo(app, target);
    const params = new URLSearchParams({ limit: "20", sort: "-id" });
    const textual = info.title_field && TEXTLIKE.has(info.title_type);
    if (query && textual) params.set("q", query);
    const wanted = [info.title_field, ...(info.summary ?? []).map((f) => f.key)].filter(Boolean);
    if (wanted.length) params.set("fields", wanted.join(","));
    let found;
    try {
      const { data } = await api(`/api/records/${appKey}/${target}?${params}`);
      found = data.items.map((record) => ({ id: record.id, title: titleOf(info, record), second: secondLineOf(info, record) }));
    } catch {
      found = [];
    }
    if (mine !== requestNo || document.activeElement !== search) return;
    if (query && !textual) found = found.filter((item) => item.title.toLowerCase().includes(query.toLowerCase()));
    items = found.slice(0, 10);
    list.replaceChildren(
      ...(items.length
        ? items.map((item, i) =>
            el(
              "li",
              {
                id: `${listId}-${i}`,
                role: "option",
                "aria-selected": "false",
                onmousedown: (event) => {
                  event.preventDefault();
                  choose(i);
                },
              },
              ...twoLines(item.title, item.second),
            ),
          )
        : [el("li", { class: "fl-none", text: t("No matches") })]),
    );
    list.hidden = false;
    search.setAttribute("aria-expanded", "true");
    highlight(-1); // nothing is highlighted until ↓
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(lookup, 180);
  });
  search.addEventListener("focus", () => {
    if (hidden.value && search.value === chosenTitle) search.select();
    else if (!hidden.value && !search.value) lookup();
  });
  search.addEventListener("blur", () =>
    setTimeout(() => {
      close();
      if (document.activeElement !== search) search.value = chosenTitle;
    }, 150),
  );
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (list.hidden) lookup();
      else if (items.length) highlight(Math.min(active + 1, items.length - 1));
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      if (!list.hidden && items.length) highlight(Math.max(active - 1, 0));
    } else if (event.key === "Enter" && !list.hidden) {
      event.preventDefault();
      choose(active >= 0 ? active : 0);
    } else if (event.key === "Escape" && !list.hidden) {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });
  clear.addEventListener("click", () => {
    hidden.value = "";
    search.value = "";
    showChosen(null);
    onChange(null);
    search.focus();
  });

  showChosen(value, title);
  if (value) {
    // the second line (and the title when the page did not give it) come from the record
    targetInfo(app, target).then((info) =>
      api(`/api/records/${appKey}/${target}/${value}`)
        .then(({ data }) => {
          if (hidden.value === value) showChosen(value, title || titleOf(info, data), secondLineOf(info, data));
        })
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
      if (!recordId) search.value = "";
      showChosen(recordId, text);
    },
    setDisabled(disabled) {
      search.disabled = disabled;
      search.hidden = disabled;
      clear.hidden = disabled || !hidden.value;
    },
  };
}
