// Tabs for a form laid out as `"layout": "tabs"` (docs/forms.md, Tabs): each top-level
// section element form.js built becomes a tab panel, and a tab strip goes in front of the
// first one. The fields before the first section stay above the strip.
//
//   const tabs = makeTabs(root, sections, {prefix, name});
//   tabs.refresh();          // after visibility or errors changed: hide tabs, count errors
//   tabs.reveal(node);       // open the tab holding node (before focusing it)
//
// Invariants: the WAI-ARIA tabs pattern — the strip is a tablist, each tab a button with
// role=tab, aria-selected and aria-controls, each panel a tabpanel labelled by its tab; only
// the selected tab is in the Tab order (tabindex 0, the others -1); Left/Right move between
// the visible tabs (wrapping) and open them, Home/End go to the first and last. A section
// hidden by its condition keeps `hidden` (form.js owns that) and its tab is hidden with it;
// a tab that is not selected is shown as inactive by a class, never by `hidden`, so form.js
// still sees its fields as visible (they are checked and their errors placed). A tab's
// badge counts the fields in it showing an error, hidden fields never counted. Print
// stylesheets show every panel (runtime.css).

import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";

const INVALID = ".fl-field.fl-invalid, .fl-field:has([aria-invalid=true])";

export function makeTabs(root, sections, { prefix, name }) {
  const strip = el("div", { class: "fl-tabs", role: "tablist", "aria-label": name, "data-testid": "form-tabs" });
  const tabs = sections.map(({ key, label, element }) => {
    const tabId = `${prefix}-tab-${key}`;
    const panelId = element.id || `${prefix}-panel-${key}`;
    element.id = panelId;
    element.setAttribute("role", "tabpanel");
    element.setAttribute("aria-labelledby", tabId);
    element.classList.add("fl-tab-panel");
    element.dataset.testid = `tab-panel-${key}`;
    const badge = el("span", { class: "fl-tab-badge", "aria-hidden": "true", hidden: true, "data-testid": `tab-${key}-errors` });
    const button = el("button", {
      type: "button",
      role: "tab",
      id: tabId,
      class: "fl-tab",
      "aria-controls": panelId,
      "aria-selected": "false",
      tabindex: "-1",
      "data-testid": `tab-${key}`,
      onclick: () => select(tabs.indexOf(tab), false),
    }, el("span", { class: "fl-tab-name", text: label }), badge);
    const tab = { key, label, element, button, badge };
    strip.append(button);
    return tab;
  });
  let current = 0;
  root.classList.add("fl-tabbed");
  sections[0].element.before(strip);

  const visible = () => tabs.filter((tab) => !tab.element.hidden);

  function select(index, focus) {
    current = index;
    tabs.forEach((tab, position) => {
      const on = position === index;
      tab.button.setAttribute("aria-selected", String(on));
      tab.button.tabIndex = on ? 0 : -1;
      tab.element.classList.toggle("fl-tab-inactive", !on);
    });
    const button = tabs[index].button;
    if (focus) button.focus();
    button.scrollIntoView?.({ block: "nearest", inline: "nearest" });
  }

  strip.addEventListener("keydown", (event) => {
    const shown = visible();
    if (!shown.length) return;
    const at = shown.indexOf(tabs[current]);
    let next = null;
    if (event.key === "ArrowRight") next = shown[(at + 1) % shown.length];
    else if (event.key === "ArrowLeft") next = shown[(at - 1 + shown.length) % shown.length];
    else if (event.key === "Home") next = shown[0];
    else if (event.key === "End") next = shown[shown.length - 1];
    if (!next) return;
    event.preventDefault();
    select(tabs.indexOf(next), true);
  });

  function refresh() {
    for (const tab of tabs) {
      tab.button.hidden = tab.element.hidden;
      const count = tab.element.hidden ? 0 : [...tab.element.querySelectorAll(INVALID)].filter((node) => !node.closest("[hidden]")).length;
      tab.badge.hidden = !count;
      tab.badge.textContent = count ? String(count) : "";
      if (count) tab.button.setAttribute("aria-label", `${tab.label} (${t("{n} with errors", { n: count })})`);
      else tab.button.removeAttribute("aria-label");
    }
    if (tabs[current].element.hidden) {
      const first = visible()[0];
      if (first) select(tabs.indexOf(first), false);
    }
  }

  function reveal(node) {
    const index = tabs.findIndex((tab) => tab.element.contains(node));
    if (index >= 0 && index !== current) select(index, false);
  }

  select(0, false);
  return { refresh, reveal, select: (key) => select(tabs.findIndex((tab) => tab.key === key), false) };
}
