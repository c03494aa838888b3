// Every page: sign-in, sign-out and the language switch. Plain ES module, no build step.

import { api } from "/static/api.js";

const signin = document.getElementById("signin");
if (signin) {
  signin.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(signin));
    const error = signin.querySelector(".error");
    try {
      await api("/api/auth/session", { method: "POST", body: data });
    } catch (problem) {
      error.textContent = problem.message || "Sign-in failed";
      error.hidden = false;
      return;
    }
    window.location.assign(signin.dataset.next || "/");
  });
}

for (const form of document.querySelectorAll("form[data-csrf-form]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await api("/api/auth/session", { method: "DELETE" }).catch(() => {});
    window.location.assign("/signin");
  });
}

// The language switch: saved on the user (so every device follows) and in a cookie.
const language = document.querySelector("[data-testid=language]");
if (language) {
  language.addEventListener("change", async () => {
    const chosen = language.value;
    if (language.dataset.signedIn === "true") {
      await api("/api/auth/me", { method: "PATCH", body: { locale: chosen } });
    } else {
      document.cookie = `formloom_lang=${encodeURIComponent(chosen)}; path=/; max-age=31536000; samesite=lax`;
    }
    const url = new URL(window.location.href);
    url.searchParams.delete("lang");
    window.location.assign(url.toString());
  });
}
