// The file and image control of generated forms: uploads each chosen file at once
// (`POST /api/files/{app}/{form}/{field}`), lists what the field holds (downloads through
// the record being edited), and previews an image from the local file just uploaded.

import { cookie } from "/static/api.js";
import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { clone, humanSize } from "/static/form-values.js";

function acceptList(field) {
  const accept = field.accept ?? (field.type === "image" ? ["image/*"] : []);
  return accept.join(",");
}

export function fileControl(field, ctx) {
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
    setDisabled(off) {
      disabled = off;
      input.hidden = off;
      draw();
    },
    destroy() {
      for (const url of previews.values()) URL.revokeObjectURL(url);
    },
  };
}
