// The header's task badge on every signed-in page: how many open tasks are mine or my
// roles' to claim, with the overdue ones shown apart; it links to the inbox. One call to the
// inbox API (its counts: three COUNT queries, whatever the inbox holds), after the page is
// shown, and again when a page says the tasks changed (a claim).

import { api } from "/static/api.js";
import { t } from "/static/i18n.js";

const badge = document.querySelector("[data-testid=inbox-badge]");

async function refresh() {
  let counts;
  try {
    ({ data: { counts } } = await api("/api/tasks?limit=1"));
  } catch {
    return; // no inbox for this caller: the link alone stays
  }
  const open = counts.assigned + counts.claimable;
  const number = badge.querySelector("[data-open]");
  const late = badge.querySelector("[data-overdue]");
  number.textContent = String(open);
  number.hidden = false;
  badge.dataset.open = String(open);
  badge.dataset.overdue = String(counts.overdue);
  late.textContent = counts.overdue ? t("{n} overdue", { n: counts.overdue }) : "";
  late.hidden = !counts.overdue;
  const words = [t("My tasks"), t("{n} open", { n: open })];
  if (counts.overdue) words.push(t("{n} overdue", { n: counts.overdue }));
  badge.setAttribute("aria-label", words.join(", "));
}

if (badge) {
  refresh();
  document.addEventListener("formloom:tasks-changed", refresh);
}
