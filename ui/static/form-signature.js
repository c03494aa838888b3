// The signature control of generated forms: a drawing pad (pointer events: mouse, finger,
// pen; drawn at the screen's pixel density) whose drawing is uploaded as a PNG through the
// same path as any file (`POST /api/files/{app}/{form}/{field}`), so the stored value is a
// file reference {id, name, content_type, size} under the file permissions
// (engines/forms/fields.py SignatureField). A stored signature shows as its image with "Sign
// again". Keyboard users type their name instead: it is written on the pad and stored the same
// way. "Clear" empties the field.

import { cookie } from "/static/api.js";
import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";
import { clone } from "/static/form-values.js";

const HEIGHT = 160; // CSS pixels
const IDLE_MS = 500; // upload once the pen has rested this long

export function signatureControl(field, ctx) {
  let value = ctx.value && typeof ctx.value === "object" ? clone(ctx.value) : null;
  let drawing = !value; // the pad is shown (else the stored image is)
  let disabled = false;
  let inked = false; // something was drawn since the pad was last cleared
  let timer = null;
  let waiting = false; // counted in ctx.pending until the upload ends
  let preview = null; // object URL of the image just uploaded

  const canvas = el("canvas", {
    class: "fl-signature-pad",
    role: "img",
    "aria-label": t("Signature pad: draw your signature with a mouse, finger or pen"),
    "data-testid": `signature-pad-${ctx.name}`,
  });
  const image = el("img", { class: "fl-signature-image", alt: t("Signature"), "data-testid": `signature-${ctx.name}` });
  const status = el("p", { class: "fl-file-status muted small", "aria-live": "polite" });
  const clearButton = el("button", { type: "button", class: "quiet small", text: t("Clear"), "data-testid": `signature-clear-${ctx.name}` });
  const againButton = el("button", { type: "button", class: "quiet small", text: t("Sign again"), "data-testid": `signature-again-${ctx.name}` });
  const typed = el("input", {
    type: "text",
    id: ctx.id,
    class: "fl-signature-typed",
    autocomplete: "name",
    "aria-label": t("Or type your full name to sign"),
    placeholder: t("Or type your full name to sign"),
    "data-testid": `signature-typed-${ctx.name}`,
  });
  const useTyped = el("button", { type: "button", class: "quiet small", text: t("Sign with this name"), "data-testid": `signature-use-typed-${ctx.name}` });
  const typedRow = el("div", { class: "fl-signature-typed-row" }, typed, useTyped);
  const actions = el("div", { class: "fl-signature-actions" }, clearButton, againButton);
  const element = el("div", { class: "fl-signature-input", "aria-labelledby": `${ctx.id}-label` }, canvas, image, actions, typedRow, status);
  const pen = canvas.getContext("2d");

  function href(file) {
    const record = ctx.recordId ? `?record=${encodeURIComponent(ctx.recordId)}` : "";
    return `/api/files/${file.id}${record}`;
  }

  // HiDPI: the bitmap has the screen's pixels, the strokes are drawn in CSS pixels
  function sizePad() {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.getBoundingClientRect().width || 400;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    canvas.style.height = `${HEIGHT}px`;
    pen.setTransform(ratio, 0, 0, ratio, 0, 0);
    pen.lineWidth = 2.2;
    pen.lineCap = "round";
    pen.lineJoin = "round";
    pen.strokeStyle = "#111";
    pen.fillStyle = "#111";
    inked = false;
  }

  function draw() {
    canvas.hidden = !drawing || disabled;
    typedRow.hidden = !drawing || disabled;
    image.hidden = drawing || !value;
    if (value && !drawing) image.src = preview || href(value);
    clearButton.hidden = disabled || (!value && !inked);
    againButton.hidden = disabled || drawing || !value;
  }

  function hold() {
    if (!waiting) {
      waiting = true;
      ctx.pending(+1);
    }
  }

  function release() {
    if (waiting) {
      waiting = false;
      ctx.pending(-1);
    }
  }

  async function upload() {
    timer = null;
    if (!inked) return release();
    status.textContent = t("Saving the signature…");
    ctx.setError(null);
    try {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
      const body = new FormData();
      body.append("file", new File([blob], "signature.png", { type: "image/png" }), "signature.png");
      const path = encodeURIComponent(ctx.filePath);
      const answer = await fetch(`/api/files/${encodeURIComponent(ctx.appKey)}/${encodeURIComponent(ctx.formKey)}/${path}`, {
        method: "POST",
        body,
        headers: { "X-CSRF-Token": cookie("formloom_csrf"), accept: "application/json" },
      });
      const data = await answer.json().catch(() => ({}));
      if (!answer.ok) throw new Error(data.errors?.[0]?.message || data.detail || `HTTP ${answer.status}`);
      if (preview) URL.revokeObjectURL(preview);
      preview = URL.createObjectURL(blob);
      value = data;
      status.textContent = t("Signature saved");
    } catch (error) {
      status.textContent = "";
      ctx.setError(error.message);
    } finally {
      release();
      draw();
      ctx.changed();
    }
  }

  function later() {
    hold();
    clearTimeout(timer);
    timer = setTimeout(upload, IDLE_MS);
  }

  let last = null;
  function point(event) {
    const box = canvas.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }
  canvas.addEventListener("pointerdown", (event) => {
    if (disabled) return;
    event.preventDefault();
    const ratio = window.devicePixelRatio || 1;
    if (!inked && Math.round(canvas.getBoundingClientRect().width * ratio) !== canvas.width) sizePad();
    canvas.setPointerCapture?.(event.pointerId);
    clearTimeout(timer);
    hold();
    last = point(event);
    pen.beginPath();
    pen.arc(last.x, last.y, pen.lineWidth / 2, 0, Math.PI * 2);
    pen.fill();
    inked = true;
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    pen.beginPath();
    pen.moveTo(last.x, last.y);
    pen.lineTo(next.x, next.y);
    pen.stroke();
    last = next;
  });
  const end = () => {
    if (!last) return;
    last = null;
    draw();
    later();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  function signTyped() {
    const name = typed.value.trim();
    if (!name) {
      status.textContent = t("Type your name first.");
      typed.focus();
      return;
    }
    sizePad();
    const width = canvas.width / (window.devicePixelRatio || 1);
    pen.font = `italic 36px "Segoe Script", "Brush Script MT", cursive, serif`;
    pen.textBaseline = "middle";
    pen.fillText(name, 16, HEIGHT / 2, width - 32);
    inked = true;
    draw();
    hold();
    upload();
  }
  useTyped.addEventListener("click", signTyped);
  typed.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      signTyped();
    }
  });

  clearButton.addEventListener("click", () => {
    clearTimeout(timer);
    release();
    value = null;
    drawing = true;
    typed.value = "";
    draw();
    sizePad();
    status.textContent = "";
    ctx.changed();
  });
  againButton.addEventListener("click", () => {
    drawing = true;
    draw();
    sizePad();
    canvas.focus?.();
  });

  draw();
  // size the pad once it is laid out (its width follows the form's)
  requestAnimationFrame(() => drawing && sizePad());

  return {
    element,
    focusTarget: typed,
    get: () => (value ? clone(value) : null),
    set(next) {
      value = next && typeof next === "object" ? clone(next) : null;
      drawing = !value;
      draw();
    },
    setDisabled(off) {
      disabled = off;
      draw();
    },
    destroy() {
      clearTimeout(timer);
      if (preview) URL.revokeObjectURL(preview);
    },
  };
}
