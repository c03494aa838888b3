// The inbox page (/tasks): rows are rendered on the server; this module adds "load more"
// (the next keyset page as HTML rows, the page after's address in X-Next-Cursor), Enter on a
// row to open it, Claim (through the inbox API; the row then opens the task), the filters
// applied as they change, and the notifications' "mark read" (one, or all).

import { api } from "/static/api.js";
import { t } from "/static/i18n.js";
import { refusalText } from "/static/task-words.js";

const list = document.querySelector("[data-testid=task-list]");
const problem = document.querySelector("[data-testid=inbox-error]");

function showProblem(message) {
  problem.textContent = message || "";
  problem.hidden = !message;
}

// -- rows -------------------------------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  const row = event.target.closest?.("[data-testid=task-row]");
  if (event.key === "Enter" && row && event.target === row) {
    window.location.assign(row.dataset.href);
  }
});

// a click anywhere on a row (a card on phones) opens it, except on its own links and buttons
document.addEventListener("click", (event) => {
  const row = event.target.closest?.("[data-testid=task-row]");
  if (!row || event.target.closest("a, button") || window.getSelection()?.toString()) return;
  window.location.assign(row.dataset.href);
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest?.("[data-claim]");
  if (!button) return;
  button.disabled = true;
  showProblem(null);
  try {
    await api(`/api/tasks/${encodeURIComponent(button.dataset.claim)}/claim`, { method: "POST" });
  } catch (error) {
    button.disabled = false;
    showProblem(refusalText(error));
    return;
  }
  const row = button.closest("[data-testid=task-row]");
  row.dataset.claimed = "true";
  const open = document.createElement("a");
  open.className = "button";
  open.href = row.dataset.href;
  open.dataset.testid = "open-claimed";
  open.textContent = t("Claimed — open");
  button.replaceWith(open);
  open.focus();
  document.dispatchEvent(new CustomEvent("formloom:tasks-changed"));
});

const more = document.querySelector("[data-testid=load-more]");
more?.addEventListener("click", async (event) => {
  event.preventDefault();
  more.setAttribute("aria-busy", "true");
  const answer = await fetch(more.dataset.more, { headers: { accept: "text/html" } });
  more.removeAttribute("aria-busy");
  if (!answer.ok) {
    showProblem(t("The next page could not be loaded."));
    return;
  }
  const first = list.children.length;
  list.insertAdjacentHTML("beforeend", await answer.text());
  const following = answer.headers.get("X-Next-Cursor");
  if (following) {
    more.dataset.more = following;
    more.href = following;
  } else {
    more.closest(".load-more").remove();
  }
  list.children[first]?.focus();
});

// filters apply as they change (the Show button stays for keyboards and no-script)
for (const select of document.querySelectorAll("[data-testid=inbox-filters] select")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

// -- notifications ---------------------------------------------------------------------------

const unread = document.querySelector("[data-testid=unread-count]");
const readAll = document.querySelector("[data-testid=read-all]");

function setUnread(count) {
  unread.dataset.count = String(count);
  unread.textContent = String(count);
  unread.setAttribute("aria-label", t("{n} unread", { n: count }));
  readAll.hidden = count === 0;
}

function markShown(note) {
  note.classList.remove("unread");
  note.dataset.unread = "false";
  note.querySelector("[data-read]")?.remove();
  note.querySelector(".visually-hidden")?.remove();
}

document.querySelector("[data-testid=notes]")?.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-read]");
  if (!button) return;
  const note = button.closest("[data-testid=note]");
  try {
    await api(`/api/notifications/${encodeURIComponent(button.dataset.read)}/read`, { method: "POST" });
  } catch (error) {
    showProblem(error.message);
    return;
  }
  const next = note.nextElementSibling?.querySelector("a, [data-read]");
  markShown(note);
  setUnread(Math.max(0, Number(unread.dataset.count) - 1));
  (next || readAll).focus?.();
});

readAll?.addEventListener("click", async () => {
  try {
    await api("/api/notifications/read-all", { method: "POST" });
  } catch (error) {
    showProblem(error.message);
    return;
  }
  document.querySelectorAll("[data-testid=note][data-unread=true]").forEach(markShown);
  setUnread(0);
  unread.focus?.();
});
