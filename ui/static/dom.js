// Building DOM nodes from scripts: one helper for every page (form.js, the designer, the list).
//
//   el("button", {type: "button", class: "quiet", text: t("Save"), onclick: save}, child, ...)
//
// Attributes: `undefined`, `null` and `false` are left out, `true` is an empty (boolean)
// attribute; `class` sets the class name, `text` the text content, `on<event>` adds a
// listener; `value` of a textarea or select is set as the property (those have no value
// attribute to start from). Children: nodes, strings (as text) or arrays of them, with
// `null`, `undefined`, `false` and "" skipped.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value" && (node.tagName === "TEXTAREA" || node.tagName === "SELECT")) node.value = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
