// The web UI's shared script: client-side sorting of tables, one uPlot line chart per
// metric on a run page, and the page life cycle every page script hooks into:
// artifactstoreUI.onLoad(fn) runs fn once the page is parsed (fn may return a promise);
// when every fn has settled, <body data-ready="true"> tells tests and tools the page is
// drawn. User text reaches the page only through textContent.
"use strict";

window.artifactstoreUI = {
  loaders: [],
  onLoad(fn) { this.loaders.push(fn); },
  base: () => document.body.dataset.base,
};

function sortKey(value) {
  // as the server orders (views.py): numbers, then text (NaN arrives as text), then missing
  if (value === null || value === undefined) return [3, 0];
  if (typeof value === "number" || typeof value === "boolean") return [0, Number(value)];
  if (Array.isArray(value)) return [1, value.join(", ")];
  return [1, String(value)];
}

function compare(a, b) {
  if (a[0] !== b[0]) return a[0] - b[0];
  if (a[1] < b[1]) return -1;
  return a[1] > b[1] ? 1 : 0;
}

function setUpTable(table) {
  const headers = [...table.querySelectorAll("thead th")];
  headers.forEach((th, index) => {
    th.querySelector("button").addEventListener("click", () => {
      const descending = th.getAttribute("aria-sort") === "ascending";
      if (table.dataset.paged === "true") {  // rows on other pages too: the server sorts
        const url = new URL(window.location.href);
        url.searchParams.set("sort", th.querySelector("button").dataset.column);
        url.searchParams.set("order", descending ? "desc" : "asc");
        url.searchParams.delete("offset");
        window.location.assign(url);
        return;
      }
      headers.forEach(h => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      const body = table.tBodies[0];
      const rows = [...body.rows].map(row => [sortKey(JSON.parse(row.cells[index].dataset.value)), row]);
      const present = rows.filter(r => r[0][0] !== 3), missing = rows.filter(r => r[0][0] === 3);
      present.sort((a, b) => descending ? compare(b[0], a[0]) : compare(a[0], b[0]));
      for (const [, row] of [...present, ...missing]) body.appendChild(row);
    });
  });
}

function drawCharts(holder, metrics) {
  window.artifactstoreCharts = {};
  for (const [name, series] of Object.entries(metrics)) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.metric = name;
    const title = document.createElement("h3");
    title.textContent = series.points > series.x.length
      ? `${name} (${series.points} steps, ${series.x.length} shown)` : name;
    box.appendChild(title);
    holder.appendChild(box);
    const options = {
      width: 420, height: 220,
      scales: {x: {time: false}},
      axes: [{label: "step"}, {}],
      series: [{label: "step"}, {label: name, stroke: "#1565c0", width: 1.5}],
    };
    window.artifactstoreCharts[name] = new uPlot(options, [series.x, series.y], box);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const table = document.getElementById("runs");
  if (table) setUpTable(table);
  const data = document.getElementById("metrics");
  if (data) drawCharts(document.getElementById("charts"), JSON.parse(data.textContent));
  const results = await Promise.allSettled(window.artifactstoreUI.loaders.map(fn => fn()));
  for (const r of results) if (r.status === "rejected") console.error(r.reason);
  document.body.dataset.ready = "true";
});
