// The header's search box on an app's pages: a term searched in every form of the app the
// caller may read (GET /api/records/{app}?q=, the lists' quick search: docs/filters.md),
// shown as a menu of matches grouped by form, best first, each linking to its record, and
// "All matches" to the form's list searched for the same term. Keyboard: ↓ from the box
// enters the menu, ↑ ↓ move, Esc closes it and returns to the box.

import { api } from "/static/api.js";
import { t } from "/static/i18n.js";
import { el } from "/static/dom.js";

const form = document.querySelector("[data-testid=app-search]");
if (form) {
  const input = form.querySelector("input[name=q]");
  const menu = form.querySelector("[data-testid=app-search-results]");
  const app = form.dataset.app;
  let timer = null;
  let asked = 0;

  const links = () => [...menu.querySelectorAll("a")];
  const close = () => {
    menu.hidden = true;
    input.setAttribute("aria-expanded", "false");
  };

  function show(answer) {
    const groups = answer.groups.map((group) =>
      el(
        "section",
        { class: "app-search-group", "data-testid": "app-search-group", "data-form": group.form },
        el("h2", { text: group.label }),
        el(
          "ul",
          {},
          group.items.map((item) => el("li", {}, el("a", { href: item.href, "data-testid": "app-search-hit", text: item.title }))),
        ),
        group.more ? el("a", { class: "all", href: group.list_href, "data-testid": "app-search-all", text: t("All matches in {form}", { form: group.label }) }) : null,
      ),
    );
    menu.replaceChildren(...(groups.length ? groups : [el("p", { class: "muted", role: "status", text: t("Nothing found for “{q}”.", { q: answer.q }) })]));
    menu.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  async function run() {
    const q = input.value.trim();
    const mine = ++asked;
    if (!q) {
      close();
      return;
    }
    try {
      const { data } = await api(`/api/records/${encodeURIComponent(app)}?${new URLSearchParams({ q, limit: "5" })}`);
      if (mine === asked) show(data);
    } catch (error) {
      if (mine !== asked) return;
      menu.replaceChildren(el("p", { class: "error", role: "alert", text: error.message }));
      menu.hidden = false;
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, 200);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    run();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && !menu.hidden && links().length) {
      event.preventDefault();
      links()[0].focus();
    } else if (event.key === "Escape") {
      close();
    }
  });
  menu.addEventListener("keydown", (event) => {
    const all = links();
    const at = all.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = at + (event.key === "ArrowDown" ? 1 : -1);
      if (next < 0) input.focus();
      else all[Math.min(next, all.length - 1)].focus();
    } else if (event.key === "Escape") {
      close();
      input.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!form.contains(event.target)) close();
  });
}
