// Calls to Formloom's JSON API from the pages: the session cookie travels by itself, the
// CSRF token goes in a header on every unsafe request, and a problem answer (RFC 9457,
// with `errors` of {path, code, message}) becomes an ApiError the page can show per field.

export function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { accept: "application/json", ...headers } };
  if (method !== "GET" && method !== "HEAD") {
    init.headers["X-CSRF-Token"] = cookie("formloom_csrf");
  }
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(path, init);
  const text = await answer.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!answer.ok) throw new ApiError(answer.status, data || {});
  return { data, headers: answer.headers, status: answer.status };
}
