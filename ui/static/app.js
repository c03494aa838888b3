// Sign-in and sign-out for the server-rendered pages: plain ES module, no build step.

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return found ? decodeURIComponent(found.split("=")[1]) : "";
}

const signin = document.getElementById("signin");
if (signin) {
  signin.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(signin));
    const answer = await fetch("/api/auth/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(data),
    });
    if (answer.ok) {
      window.location.assign(signin.dataset.next || "/");
      return;
    }
    const problem = await answer.json().catch(() => ({}));
    const error = signin.querySelector(".error");
    error.textContent = problem.detail || "Sign-in failed";
    error.hidden = false;
  });
}

for (const form of document.querySelectorAll("form[data-csrf-form]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await fetch("/api/auth/session", {
      method: "DELETE",
      headers: { "X-CSRF-Token": cookie("formloom_csrf") },
    });
    window.location.assign("/signin");
  });
}
