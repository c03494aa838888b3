// The top bar's menu button on phones (app.css, up to 760 px wide): it opens the search, the
// language and the sign-out that do not fit on one line. On wider screens the button is not
// shown and the menu's items sit in the bar itself, so nothing here changes them.

const button = document.querySelector("[data-testid=top-menu-button]");
const menu = document.getElementById("top-menu");

function setOpen(open, { focus = false } = {}) {
  menu.classList.toggle("open", open);
  button.setAttribute("aria-expanded", String(open));
  if (open && focus) menu.querySelector("input, select, button")?.focus();
}

if (button && menu) {
  button.addEventListener("click", () => setOpen(!menu.classList.contains("open"), { focus: true }));
  // closes like a menu: Escape (focus back on the button) or a click elsewhere
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !menu.classList.contains("open")) return;
    // the header search's own Escape (closing its matches) comes first
    if (event.defaultPrevented) return;
    setOpen(false);
    button.focus();
  });
  document.addEventListener("click", (event) => {
    if (menu.classList.contains("open") && !menu.contains(event.target) && !button.contains(event.target)) setOpen(false);
  });
}
