// The list page's XLSX and Print links follow its CSV link (runtime-list.js keeps that one in
// step with the chosen columns and the search box): each link marked data-follows-export takes
// the CSV link's query, keeping its own `format`. Without scripts they carry the page's
// filter and order, as the CSV link does.

const csv = document.querySelector("[data-testid=export]");
const followers = [...document.querySelectorAll("[data-follows-export]")];

function follow() {
  const source = new URL(csv.href, window.location.href).searchParams;
  for (const link of followers) {
    const url = new URL(link.href, window.location.href);
    const format = url.searchParams.get("format");
    const params = new URLSearchParams(source);
    if (format) params.set("format", format);
    url.search = params.toString();
    link.href = url.pathname + url.search;
  }
}

if (csv && followers.length) {
  follow();
  new MutationObserver(follow).observe(csv, { attributes: true, attributeFilter: ["href"] });
}
