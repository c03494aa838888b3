// The rich text control of generated forms: a contenteditable box under a toolbar (bold,
// italic, bulleted and numbered lists, link, remove link; Ctrl/⌘+B and +I). Its value is the
// box's HTML, or null when it holds no text. The server sanitises every value it is sent
// (engines/forms/richtext.py: an allow-list of tags, http/https/mailto links only); a value
// put into the box goes through the same allow-list here first (cleanFragment).

import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";

// Where a line ends in the text (mirrors engines/forms/richtext.py plain_text).
const LINE_END = /(<br\s*\/?>|<\/p>|<\/div>|<\/li>|<\/ul>|<\/ol>)/gi;
const LINE_START = /(<(?:p|div|ul|ol|li)\b)/gi;

/** The words of a rich text value: no tags, one line per paragraph or list item. */
export function richPlainText(html) {
  const marked = String(html ?? "").replace(LINE_START, "\n$1").replace(LINE_END, "$1\n");
  const doc = new DOMParser().parseFromString(`<body>${marked}</body>`, "text/html");
  for (const node of doc.querySelectorAll("script, style")) node.remove();
  return (doc.body.textContent || "").replace(/\u00a0/g, " ").replace(/[ \t]*\n[ \t\n]*/g, "\n").trim();
}

// The server's allow-list (engines/forms/richtext.py), applied again to what the editor is
// given: stored values were sanitised on write, and this keeps the box safe from any value
// that was not (a definition's default from an older version, a value stored before).
const TAGS = new Set(["P", "DIV", "BR", "B", "STRONG", "I", "EM", "U", "UL", "OL", "LI", "A"]);
const SAFE_LINK = /^(https?:\/\/|mailto:)/i;

function cleanInto(source, target) {
  for (const node of source.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      target.append(node.textContent);
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    const tag = node.tagName.toUpperCase();
    if (tag === "SCRIPT" || tag === "STYLE") continue;
    if (!TAGS.has(tag)) {
      cleanInto(node, target); // an unknown element gives its text
      continue;
    }
    const copy = document.createElement(tag.toLowerCase());
    if (tag === "A") {
      const href = (node.getAttribute("href") || "").trim();
      if (SAFE_LINK.test(href)) copy.setAttribute("href", href);
      copy.setAttribute("rel", "noopener noreferrer");
    }
    cleanInto(node, copy);
    target.append(copy);
  }
}

/** `html` reduced to the allowed tags, as nodes of this page (parsed inertly, never run). */
export function cleanFragment(html) {
  const doc = new DOMParser().parseFromString(`<body>${String(html ?? "")}</body>`, "text/html");
  const fragment = document.createDocumentFragment();
  cleanInto(doc.body, fragment);
  return fragment;
}

/** A link the editor may make: http(s) and mailto only; a bare host gets https://. */
export function linkTarget(text) {
  const raw = String(text || "").trim();
  if (!raw) return null;
  if (/^(https?:\/\/|mailto:)/i.test(raw)) return raw;
  if (/^[^\s:/]+@[^\s@]+\.[^\s@]+$/.test(raw)) return `mailto:${raw}`;
  if (/^[a-z0-9-]+(\.[a-z0-9-]+)+([/?#]\S*)?$/i.test(raw)) return `https://${raw}`;
  return null;
}

export function richTextControl(field, ctx) {
  const area = el("div", {
    id: ctx.id,
    class: "fl-richtext-area",
    contenteditable: "true",
    role: "textbox",
    "aria-multiline": "true",
    "aria-labelledby": `${ctx.id}-label`,
    "data-testid": `richtext-${ctx.name}`,
  });
  if (typeof ctx.value === "string") area.replaceChildren(cleanFragment(ctx.value));
  let disabled = false;

  function run(command, argument = null) {
    if (disabled) return;
    area.focus();
    document.execCommand(command, false, argument);
    refresh();
    ctx.changed();
  }

  function makeLink() {
    const given = window.prompt(t("Link address (https://…, or an e-mail address)"), "https://");
    if (given === null) return;
    const target = linkTarget(given);
    if (!target) {
      ctx.setError(t("A link must start with http://, https:// or mailto:"));
      return;
    }
    ctx.setError(null);
    run("createLink", target);
  }

  const buttons = [
    ["bold", "B", t("Bold (Ctrl+B)"), () => run("bold")],
    ["italic", "I", t("Italic (Ctrl+I)"), () => run("italic")],
    ["insertUnorderedList", null, t("Bulleted list"), () => run("insertUnorderedList")],
    ["insertOrderedList", null, t("Numbered list"), () => run("insertOrderedList")],
    ["link", null, t("Insert link (Ctrl+K)"), makeLink],
    ["unlink", null, t("Remove link"), () => run("unlink")],
  ].map(([name, text, title, action]) =>
    el("button", {
      type: "button",
      class: `quiet small fl-rt-${name}`,
      text: text ?? undefined,
      title,
      "aria-label": title,
      "data-command": name,
      "data-testid": `rt-${name}-${ctx.name}`,
      // keep the selection in the box while the button is pressed
      onmousedown: (event) => event.preventDefault(),
      onclick: action,
    }),
  );
  // the other buttons are drawn (runtime.css: a line drawing per command, no emoji fonts)
  for (const button of buttons) if (!button.textContent) button.append(el("span", { class: "fl-rt-icon", "aria-hidden": "true" }));
  const toolbar = el("div", { class: "fl-richtext-toolbar", role: "toolbar", "aria-label": t("Formatting"), "aria-controls": ctx.id }, buttons);
  const element = el("div", { class: "fl-richtext-editor" }, toolbar, area);

  // the toolbar says what the selection is (aria-pressed)
  function refresh() {
    for (const button of buttons) {
      const command = button.dataset.command;
      if (["bold", "italic", "insertUnorderedList", "insertOrderedList"].includes(command)) {
        let on;
        try {
          on = document.queryCommandState(command);
        } catch {
          on = false;
        }
        button.setAttribute("aria-pressed", String(on && area.contains(document.getSelection()?.anchorNode ?? null)));
      }
    }
  }

  area.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === "b" || key === "i") {
      event.preventDefault();
      run(key === "b" ? "bold" : "italic");
    } else if (key === "k") {
      event.preventDefault();
      makeLink();
    }
  });
  area.addEventListener("input", () => ctx.changed());
  area.addEventListener("keyup", refresh);
  area.addEventListener("mouseup", refresh);
  // pasted content comes in as plain text: formatting is made with the toolbar
  area.addEventListener("paste", (event) => {
    const text = event.clipboardData?.getData("text/plain");
    if (text === undefined) return;
    event.preventDefault();
    document.execCommand("insertText", false, text);
  });

  return {
    element,
    focusTarget: area,
    get() {
      return richPlainText(area.innerHTML) ? area.innerHTML : null;
    },
    set(next) {
      area.replaceChildren(cleanFragment(typeof next === "string" ? next : ""));
    },
    setDisabled(off) {
      disabled = off;
      area.setAttribute("contenteditable", off ? "false" : "true");
      area.setAttribute("aria-readonly", String(off));
      toolbar.hidden = off;
    },
  };
}
