// The import page (runtime/import.html, platform/web/importing.py): the chosen file is
// checked by a dry run of POST /api/records/{app}/{form}/import, which answers the columns'
// mapping, the fields they may be mapped to, each bad row's reasons and the counts. Changing
// a column's field checks again with that mapping; Import sends the same file and mapping
// without the dry run, all or nothing or skipping bad rows as chosen.

import { cookie } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";

const page = JSON.parse(document.getElementById("import-data").textContent);
const form = document.querySelector("[data-testid=import-form]");
const fileInput = document.querySelector("[data-testid=import-file]");
const upsertInput = document.querySelector("[data-testid=import-upsert]");
const errorBox = document.querySelector("[data-testid=import-error]");
const mappingCard = document.querySelector("[data-testid=import-mapping]");
const mappingRows = document.querySelector("[data-mapping-rows]");
const resultCard = document.querySelector("[data-testid=import-result]");
const counts = document.querySelector("[data-testid=import-counts]");
const errorTable = document.querySelector("[data-testid=import-errors]");
const errorRows = document.querySelector("[data-error-rows]");
const runButton = document.querySelector("[data-testid=import-run]");
const done = document.querySelector("[data-testid=import-done]");

let mapping = null; // column -> field key or null, once the first check answered

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

async function send({ dryRun, skipBadRows = false }) {
  const body = new FormData();
  body.append("file", fileInput.files[0]);
  if (mapping) body.append("mapping", JSON.stringify(mapping));
  const params = new URLSearchParams({ dry_run: String(dryRun), skip_bad_rows: String(skipBadRows) });
  if (upsertInput.value) params.set("upsert", upsertInput.value);
  const answer = await fetch(`${page.endpoint}?${params}`, {
    method: "POST",
    body,
    headers: { accept: "application/json", "X-CSRF-Token": cookie("formloom_csrf") },
  });
  const data = await answer.json().catch(() => ({}));
  return { ok: answer.ok, status: answer.status, data };
}

function problemText(data) {
  const first = Array.isArray(data.errors) && data.errors.length ? data.errors[0] : null;
  if (first && first.code === "unmapped") return t("Choose the column that holds the field to update by.");
  if (first && first.code === "too_many_rows") return t("The file has too many rows; split it.");
  if (first && first.path === "/file") return t("The file cannot be read: use CSV or .xlsx with the column names in the first row.");
  return data.detail || t("The file could not be checked.");
}

function renderMapping(report) {
  mappingRows.replaceChildren(
    ...report.columns.map((column) =>
      el(
        "tr",
        {},
        el("td", { text: column.name }),
        el(
          "td",
          {},
          el(
            "select",
            {
              "aria-label": t("Field for {column}", { column: column.name }),
              "data-testid": "map-column",
              "data-column": column.name,
              onchange: remap,
            },
            el("option", { value: "", text: t("(not imported)") }),
            report.fields.map((field) =>
              el("option", {
                value: field.key,
                text: field.required ? `${field.label} *` : field.label,
                selected: field.key === column.field,
              }),
            ),
          ),
        ),
      ),
    ),
  );
  mappingCard.hidden = false;
}

function renderResult(report) {
  counts.textContent = t("Rows: {rows}. To create: {create}, to update: {update}, not valid: {bad}.", {
    rows: report.rows,
    create: report.to_create,
    update: report.to_update,
    bad: report.bad_rows,
  });
  errorRows.replaceChildren(
    ...report.errors.map((error) =>
      el(
        "tr",
        { "data-testid": "import-error-row", "data-row": error.row },
        el("td", { text: String(error.row) }),
        el("td", { text: error.column || "" }),
        el("td", { text: error.message }),
      ),
    ),
  );
  errorTable.hidden = report.errors.length === 0;
  resultCard.hidden = false;
  runButton.disabled = report.to_create + report.to_update === 0;
}

async function check() {
  showError("");
  done.hidden = true;
  if (!fileInput.files.length) {
    showError(t("Choose a file first."));
    return;
  }
  const { ok, data } = await send({ dryRun: true });
  if (!ok) {
    resultCard.hidden = true;
    showError(problemText(data));
    return;
  }
  mapping = Object.fromEntries(data.columns.map((column) => [column.name, column.field]));
  renderMapping(data);
  renderResult(data);
}

function remap() {
  mapping = Object.fromEntries(
    [...mappingRows.querySelectorAll("select")].map((select) => [select.dataset.column, select.value || null]),
  );
  check();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  mapping = null; // a new file: guess again
  check();
});

upsertInput.addEventListener("change", () => {
  if (fileInput.files.length && mapping) check();
});

runButton.addEventListener("click", async () => {
  showError("");
  const skip = document.querySelector("[data-testid=mode-skip]").checked;
  runButton.disabled = true;
  const { ok, data } = await send({ dryRun: false, skipBadRows: skip });
  runButton.disabled = false;
  if (!ok) {
    showError(
      data.report
        ? t("Nothing was imported (rows not valid: {bad}).", { bad: data.report.bad_rows })
        : problemText(data),
    );
    return;
  }
  done.replaceChildren(
    t("Created: {created}, updated: {updated}, skipped: {skipped}.", {
      created: data.created,
      updated: data.updated,
      skipped: data.bad_rows,
    }),
    " ",
    el("a", { href: page.list, text: t("Back to the list") }),
  );
  done.hidden = false;
  resultCard.hidden = true;
});
