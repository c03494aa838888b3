// The rating control of generated forms: a row of stars that is one ARIA radio group (one
// tab stop; arrow keys move and choose, Home/End the lowest/highest, Backspace/Delete clears,
// a click chooses, "Clear" clears). The value is a whole number from 1 to `field.max` (5
// unless set), or null; engines/forms/fields.py RatingField stores it as an integer.

import { el } from "/static/dom.js";
import { t } from "/static/i18n.js";

export function ratingMax(field) {
  const max = Number(field.max);
  return Number.isInteger(max) && max >= 3 && max <= 10 ? max : 5;
}

/** What a screen reader hears for `value` stars out of `max`. */
export function starsText(value, max) {
  return t("{n} of {max} stars", { n: value, max });
}

export function ratingControl(field, ctx) {
  const max = ratingMax(field);
  let value = Number.isInteger(ctx.value) ? ctx.value : null;
  let disabled = false;
  const stars = Array.from({ length: max }, (_, index) =>
    el("span", {
      role: "radio",
      class: "fl-star",
      "data-value": index + 1,
      "aria-label": starsText(index + 1, max),
      "data-testid": `star-${ctx.name}-${index + 1}`,
      text: "★",
    }),
  );
  // the group carries the label, description and aria-required; focusing it (an error's
  // "go to the field") moves on to the star that has the tab stop
  const group = el("div", { class: "fl-stars-input", role: "radiogroup", id: ctx.id, tabindex: "-1", "aria-labelledby": `${ctx.id}-label` }, stars);
  const clear = el("button", { type: "button", class: "quiet small fl-rating-clear", text: t("Clear"), "data-testid": `clear-${ctx.name}` });
  const element = el("div", { class: "fl-rating-input" }, group, clear);

  function draw() {
    stars.forEach((star, index) => {
      const number = index + 1;
      star.setAttribute("aria-checked", String(number === value));
      star.classList.toggle("on", value !== null && number <= value);
      // one tab stop: the chosen star, or the first when none is
      star.tabIndex = disabled ? -1 : number === (value ?? 1) ? 0 : -1;
      star.setAttribute("aria-disabled", String(disabled));
    });
    group.dataset.value = value === null ? "" : String(value);
    clear.hidden = disabled || value === null;
  }

  function choose(next, focus = true) {
    if (disabled) return;
    value = next;
    draw();
    if (focus) stars[(value ?? 1) - 1].focus();
    ctx.changed();
  }

  group.addEventListener("click", (event) => {
    const star = event.target.closest(".fl-star");
    if (star) choose(Number(star.dataset.value));
  });
  group.addEventListener("keydown", (event) => {
    const current = value ?? 0;
    const moves = {
      ArrowRight: Math.min(max, current + 1),
      ArrowUp: Math.min(max, current + 1),
      ArrowLeft: Math.max(1, current - 1),
      ArrowDown: Math.max(1, current - 1),
      Home: 1,
      End: max,
    };
    if (event.key in moves) {
      choose(moves[event.key]);
    } else if (event.key === " " || event.key === "Enter") {
      const star = event.target.closest(".fl-star");
      if (star) choose(Number(star.dataset.value));
    } else if (event.key === "Backspace" || event.key === "Delete") {
      choose(null);
    } else {
      return;
    }
    event.preventDefault();
  });
  clear.addEventListener("click", () => choose(null));
  group.addEventListener("focus", () => stars[(value ?? 1) - 1].focus());
  draw();
  return {
    element,
    focusTarget: group,
    get: () => value,
    set(next) {
      value = Number.isInteger(next) ? next : null;
      draw();
    },
    setDisabled(off) {
      disabled = off;
      draw();
    },
  };
}
