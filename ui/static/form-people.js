// The controls of the people fields of generated forms (docs/forms.md, "People and numbers"):
// a member picker for a user field (one person, or several shown as chips), a department
// choice for a department field, and the read-only number of an auto-number field.
//
// The member picker is a search-as-you-type combobox over the app's directory
// (GET /api/apps/{app}/people?q=): each option is a person's display name with the username
// as its second line; ↓/↑ move, Enter picks (the best match when nothing is highlighted), Esc
// closes. The page names the people a record already holds (ctx.titles: user id -> display
// name, from the server), so a form never shows a raw id. The departments come from
// GET /api/apps/{app}/departments; a stored department no longer in that list is kept as an
// option so that editing a record does not lose it.

import { api } from "/static/api.js";
import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { fieldLabel } from "/static/form-values.js";

function appKeyOf(ctx) {
  return ctx.appKey ?? (typeof ctx.app === "string" ? ctx.app : ctx.app?.key);
}

// People the page has named already (id -> display name), shared by every picker of the page.
const knownNames = new Map();

function nameOf(ctx, userId) {
  return knownNames.get(userId) ?? ctx.titles?.[userId] ?? null;
}

export function userControl(field, ctx) {
  const appKey = appKeyOf(ctx);
  const multiple = Boolean(field.multiple);
  const listId = `${ctx.id}-list`;
  let chosen = [];
  let items = [];
  let active = -1;
  let timer = null;
  let requestNo = 0;

  const search = el("input", {
    id: ctx.id,
    type: "search",
    role: "combobox",
    autocomplete: "off",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
    placeholder: field.default_current ? t("Empty: you, when saved") : t("Type a name…"),
    "data-testid": `user-${ctx.name}`,
    class: "fl-relation-search",
  });
  const list = el("ul", { id: listId, role: "listbox", class: "fl-options", hidden: true });
  const chips = el("div", { class: "fl-people-chosen", "data-testid": `user-${ctx.name}-chosen` });
  const element = el("div", { class: "fl-relation fl-people" }, chips, el("div", { class: "fl-relation-row" }, search), list);

  function render() {
    chips.replaceChildren(
      ...chosen.map((person) =>
        el(
          "span",
          { class: "tag fl-person", "data-user": person.id },
          el("span", { text: person.name }),
          el("button", {
            type: "button",
            class: "icon-button fl-clear",
            "aria-label": t("Remove {name}", { name: person.name }),
            text: "×",
            onclick: () => {
              chosen = chosen.filter((other) => other.id !== person.id);
              render();
              ctx.changed();
              search.focus();
            },
          }),
        ),
      ),
    );
    chips.hidden = chosen.length === 0;
  }

  function close() {
    list.hidden = true;
    search.setAttribute("aria-expanded", "false");
    search.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    active = index;
    [...list.children].forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    if (list.children[index]) search.setAttribute("aria-activedescendant", list.children[index].id);
    else search.removeAttribute("aria-activedescendant");
  }

  function choose(index) {
    const person = items[index];
    if (!person) return;
    clearTimeout(timer);
    requestNo++;
    knownNames.set(person.id, person.display_name);
    const picked = { id: person.id, name: person.display_name };
    if (multiple) {
      if (!chosen.some((other) => other.id === person.id)) chosen = [...chosen, picked];
    } else chosen = [picked];
    search.value = "";
    close();
    render();
    ctx.changed();
  }

  async function lookup() {
    const query = search.value.trim();
    const mine = ++requestNo;
    let found;
    try {
      const params = new URLSearchParams({ q: query, limit: "10" });
      const { data } = await api(`/api/apps/${encodeURIComponent(appKey)}/people?${params}`);
      found = data.items;
    } catch {
      found = [];
    }
    if (mine !== requestNo || document.activeElement !== search) return;
    items = found;
    list.replaceChildren(
      ...(items.length
        ? items.map((person, i) =>
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
              el("span", { class: "fl-option-title", text: person.display_name }),
              el("small", { class: "fl-option-sub muted", text: person.username }),
            ),
          )
        : [el("li", { class: "fl-none", text: t("No matches") })]),
    );
    list.hidden = false;
    search.setAttribute("aria-expanded", "true");
    highlight(-1);
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(lookup, 180);
  });
  search.addEventListener("focus", () => {
    if (!search.value) lookup();
  });
  search.addEventListener("blur", () => setTimeout(close, 150));
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

  function set(next) {
    const ids = Array.isArray(next) ? next : next ? [next] : [];
    chosen = ids.map((id) => ({ id, name: nameOf(ctx, id) ?? t("Someone else") }));
    render();
    const unnamed = ids.filter((id) => !nameOf(ctx, id));
    if (unnamed.length && appKey) {
      // people the page did not name (a default filled in by the browser's own copy)
      api(`/api/apps/${encodeURIComponent(appKey)}/people?ids=${encodeURIComponent(unnamed.join(","))}`)
        .then(({ data }) => {
          data.items.forEach((person) => knownNames.set(person.id, person.display_name));
          chosen = chosen.map((person) => ({ ...person, name: nameOf(ctx, person.id) ?? person.name }));
          render();
        })
        .catch(() => {});
    }
  }

  set(ctx.value);
  return {
    element,
    focusTarget: search,
    get: () => (multiple ? (chosen.length ? chosen.map((person) => person.id) : null) : chosen[0]?.id ?? null),
    set,
    setDisabled(disabled) {
      search.disabled = disabled;
      search.hidden = disabled;
      chips.querySelectorAll("button").forEach((button) => (button.hidden = disabled));
    },
  };
}

export function departmentControl(field, ctx) {
  const appKey = appKeyOf(ctx);
  const select = el("select", { id: ctx.id, name: ctx.name, "data-testid": `department-${ctx.name}`, "aria-label": fieldLabel(field) });
  let value = ctx.value ?? null;
  let known = [];

  function fill() {
    const names = [...known];
    if (value && !names.includes(value)) names.push(value);
    select.replaceChildren(
      el("option", { value: "", text: field.default_current ? t("Empty: your department, when saved") : "—" }),
      ...names.map((name) => el("option", { value: name, text: name, selected: name === value || undefined })),
    );
  }

  select.addEventListener("change", () => {
    value = select.value || null;
    ctx.changed();
  });
  fill();
  if (appKey) {
    api(`/api/apps/${encodeURIComponent(appKey)}/departments`)
      .then(({ data }) => {
        known = data.items;
        fill();
      })
      .catch(() => {});
  }
  return {
    element: select,
    focusTarget: select,
    get: () => value,
    set(next) {
      value = next ?? null;
      fill();
    },
    setDisabled: (disabled) => (select.disabled = disabled),
  };
}

export function autonumberControl(field, ctx) {
  const show = (value) => (value ? String(value) : t("Given when saved"));
  const output = el("output", { id: ctx.id, name: ctx.name, class: "fl-output fl-autonumber", "data-testid": `autonumber-${ctx.name}`, text: show(ctx.value) });
  return {
    element: output,
    focusTarget: output,
    get: () => null,
    set: (next) => (output.textContent = show(next)),
    setDisabled() {},
  };
}
