// The link-to-record control: a search-as-you-type combobox over a target form's records,
// named by its title field (keyboard: ↓ ↑ Enter Esc). Used by generated forms (form.js) and
// the list's filter bar (runtime-list.js).

import { api } from "/static/api.js";
import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { isEmpty, showDateTime } from "/static/form-values.js";

const TEXTLIKE = new Set(["text", "textarea", "email", "phone", "url"]);

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
    let found;
    try {
      const { data } = await api(`/api/records/${appKey}/${target}?${params}`);
      found = data.items.map((record) => ({ id: record.id, title: titleOf(info, record) }));
    } catch {
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
