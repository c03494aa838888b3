// The task page (/tasks/{id}): the task's record rendered in its step's form by form.js
// (only the step's editable fields are inputs; the server marked the rest read-only and left
// hidden ones out), and every action through the inbox API — claim, give back, hand over,
// send back, complete with an outcome. A refused completion shows each error at its field
// (the API points at /values/<field>) in the page's language; a completed task goes back to
// the inbox, which confirms it.

import { renderForm } from "/static/form.js";
import { api } from "/static/api.js";
import { t } from "/static/i18n.js";
import { fieldErrorText, refusalText } from "/static/task-words.js";

const page = JSON.parse(document.getElementById("task-data").textContent);
const task = page.task;
const formElement = document.querySelector("[data-testid=task-form]");
const body = formElement?.querySelector("[data-form-body]");
const problemBox = document.querySelector("[data-testid=task-error]");
const comment = document.querySelector("[data-testid=task-comment]");
const commentError = document.querySelector("[data-testid=task-comment-error]");
const base = `/api/tasks/${encodeURIComponent(task.id)}`;

const handle =
  body && page.form
    ? renderForm(body, page.form, {
        values: page.values,
        access: page.access,
        app: page.app,
        mode: "edit",
        now: page.now,
        titles: page.titles,
        recordId: page.record_id,
      })
    : null;
const start = handle ? handle.values() : {};

// the step's fields come first (the server put them there); finishing follows them, before
// the rest of the record, so a long form does not hide the buttons
const finish = document.querySelector("[data-testid=task-finish]");
const recordPart = body?.querySelector('[data-section="__the_record"]');
if (finish && recordPart) recordPart.before(finish);

const fieldsByKey = new Map((page.form?.fields || []).map((field) => [field.key, field]));

function errorText(error) {
  const key = String(error.path || "").split("/").filter(Boolean)[1] || error.field;
  return fieldErrorText(error, fieldsByKey.get(key));
}

function showProblem(message) {
  problemBox.textContent = message || "";
  problemBox.hidden = !message;
  if (message) problemBox.focus();
}

function showCommentError(message) {
  if (!commentError) return;
  commentError.textContent = message || "";
  commentError.hidden = !message;
  if (message) comment.setAttribute("aria-invalid", "true");
  else comment.removeAttribute("aria-invalid");
}

function changedValues() {
  if (!handle) return {};
  const now = handle.values();
  const changed = {};
  for (const key of task.edit) {
    if (!(key in now)) continue;
    if (JSON.stringify(now[key] ?? null) !== JSON.stringify(start[key] ?? null)) changed[key] = now[key];
  }
  return changed;
}

async function act(path, payload, after) {
  showProblem(null);
  try {
    await api(`${base}/${path}`, { method: "POST", body: payload ?? {} });
  } catch (problem) {
    showProblem(refusalText(problem));
    return;
  }
  after();
}

async function complete(button) {
  const outcome = button.dataset.outcome;
  showProblem(null);
  showCommentError(null);
  handle?.clearErrors();
  const text = comment?.value.trim() || "";
  if (button.dataset.comment === "required" && !text) {
    showCommentError(t("Say why in a comment: this outcome needs one."));
    comment.focus();
    return;
  }
  if (handle) await handle.ready();
  const buttons = document.querySelectorAll("[data-outcome]");
  buttons.forEach((item) => (item.disabled = true));
  try {
    await api(`${base}/complete`, {
      method: "POST",
      body: { outcome, comment: text || null, values: changedValues() },
    });
  } catch (problem) {
    buttons.forEach((item) => (item.disabled = false));
    const errors = (problem.errors || []).map((error) => ({
      ...error,
      path: String(error.path || "").replace(/^\/values(?=\/|$)/, "/data"),
      message: errorText(error),
    }));
    const atComment = errors.filter((error) => error.path === "/comment" || error.field === "comment");
    if (atComment.length) showCommentError(atComment.map((error) => error.message).join(" "));
    const rest = errors.filter((error) => !atComment.includes(error));
    const unplaced = handle ? handle.setErrors(rest) : rest;
    if (unplaced.length || !errors.length) {
      const words = unplaced.map((error) => error.message).filter(Boolean);
      showProblem(words.length ? words.join(" ") : refusalText(problem));
    }
    return;
  }
  window.location.assign(`/tasks?completed=${encodeURIComponent(task.id)}`);
}

for (const button of document.querySelectorAll("[data-outcome]")) {
  button.addEventListener("click", () => complete(button));
  if (button.dataset.comment === "required") {
    button.setAttribute("aria-description", t("needs a comment"));
  }
}
if (comment) {
  const needs = [...document.querySelectorAll("[data-outcome]")].filter((b) => b.dataset.comment === "required");
  const hint = document.querySelector("[data-comment-hint]");
  if (hint && needs.length) {
    hint.textContent = t("(needed for: {outcomes})", { outcomes: needs.map((b) => b.textContent.trim()).join(", ") });
  }
  comment.addEventListener("input", () => showCommentError(null));
}
formElement?.addEventListener("submit", (event) => event.preventDefault());

document.querySelector("[data-testid=task-claim]")?.addEventListener("click", () =>
  act("claim", {}, () => window.location.reload()),
);
document.querySelector("[data-testid=task-unclaim]")?.addEventListener("click", () =>
  act("unclaim", {}, () => window.location.assign("/tasks?tab=claimable")),
);
document.querySelector("[data-testid=delegate-form]")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const user = new FormData(event.target).get("user");
  if (!user) return;
  act("delegate", { user }, () => window.location.assign("/tasks"));
});
document.querySelector("[data-testid=return-form]")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  act("return", { to: data.get("to"), comment: String(data.get("comment") || "") || null }, () =>
    window.location.assign("/tasks"),
  );
});
