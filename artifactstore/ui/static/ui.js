// The web UI's shared script: client-side sorting of tables, uPlot line charts (one per
// metric, one coloured line per run, x = step or time), the live refresh of the runs
// table and of a run page, and the page life cycle every page script hooks into:
// artifactstoreUI.onLoad(fn) runs fn once the page is parsed (fn may return a promise);
// when every fn has settled, <body data-ready="true"> tells tests and tools the page is
// drawn. User text reaches the page only through textContent.
"use strict";

window.artifactstoreUI = {
  loaders: [],
  onLoad(fn) { this.loaders.push(fn); },
  base: () => document.body.dataset.base,
};

// the polls of live pages: every POLL_MS while a run shown is running
const POLL_MS = 2000;
const COLOURS = ["#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#c62828",
                 "#00838f", "#ad1457", "#4e342e", "#9e9d24", "#37474f"];

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
    const button = th.querySelector("button.sort");
    if (!button) return;  // the selection column
    button.addEventListener("click", () => {
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

// -- charts -----------------------------------------------------------------------
// A chart shows lines = [{label, x, t, y, points}] (null for a run without the metric);
// x mode "step" draws y over x, "time" over t (seconds since each run started).

const charts = {};  // metric -> {box, title, lines, plot}
window.artifactstoreCharts = {};  // metric -> its uPlot (tests read .data)
let xMode = "step";

function table(lines, mode) {
  const parts = lines.map(line => {
    if (!line) return [[], []];
    const xs = mode === "time" ? line.t : line.x;
    const keep = xs.map((v, i) => v !== null && v !== undefined ? i : -1).filter(i => i >= 0);
    return [keep.map(i => xs[i]), keep.map(i => line.y[i])];
  });
  return uPlot.join(parts);
}

function titleOf(name, lines) {
  const shown = lines.reduce((n, l) => n + (l ? l.x.length : 0), 0);
  const points = lines.reduce((n, l) => n + (l ? l.points : 0), 0);
  return points > shown ? `${name} (${points} points, ${shown} shown)` : name;
}

function plotChart(name) {
  const chart = charts[name];
  if (chart.plot) chart.plot.destroy();
  chart.title.textContent = titleOf(name, chart.lines);
  const series = [{label: xMode === "time" ? "seconds" : "step"}];
  chart.lines.forEach((line, i) => series.push({
    label: chart.labels[i], stroke: COLOURS[i % COLOURS.length], width: 1.5,
    spanGaps: true, show: line !== null,
  }));
  const options = {
    width: 420, height: 220, scales: {x: {time: false}},
    axes: [{label: xMode === "time" ? "seconds since the run started" : "step"}, {}],
    series, legend: {show: chart.lines.length > 1},
  };
  chart.plot = new uPlot(options, table(chart.lines, xMode), chart.box);
  window.artifactstoreCharts[name] = chart.plot;
}

// One chart per metric in holder: metrics = {name: [line per run]}, labels = run labels.
function drawCharts(holder, metrics, labels) {
  for (const [name, lines] of Object.entries(metrics)) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.metric = name;
    const title = document.createElement("h3");
    box.appendChild(title);
    holder.appendChild(box);
    charts[name] = {box, title, lines, labels, plot: null};
    plotChart(name);
  }
}

// New points for a chart of one run (live refresh): appended, then redrawn.
function extendChart(holder, name, line, label) {
  if (!charts[name]) {
    drawCharts(holder, {[name]: [line]}, [label]);
    return;
  }
  const old = charts[name].lines[0];
  old.x.push(...line.x); old.t.push(...line.t); old.y.push(...line.y);
  old.points += line.points;
  plotChart(name);
}

function setXMode(mode) {
  xMode = mode;
  for (const name of Object.keys(charts)) plotChart(name);
  document.body.dataset.xmode = mode;
}

function setUpXToggle() {
  for (const input of document.querySelectorAll("input[name='xmode']")) {
    input.addEventListener("change", () => { if (input.checked) setXMode(input.value); });
  }
}

// -- live refresh -------------------------------------------------------------------

function poll(fn) {
  // fn returns true to go on; one request at a time, never piling up
  const tick = async () => {
    let again = false;
    try { again = await fn(); } catch (e) { console.warn("refresh failed:", e); again = true; }
    if (again) setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

async function fetchJSON(url) {
  const answer = await fetch(url, {headers: {Accept: "application/json"}});
  if (!answer.ok) throw new Error(`${answer.status} from ${url}`);
  return answer.json();
}

function setStatus(element, status) {
  element.textContent = status;
  element.className = `status status-${status}`;
}

function liveRunPage(data) {
  if (data.status !== "running") return;
  const holder = document.getElementById("charts");
  let last = data.last_step;
  const runUrl = `/api${artifactstoreUI.base()}/runs/${encodeURIComponent(data.run.run_id)}`;
  document.body.dataset.live = "true";
  poll(async () => {
    const since = last === null ? "" : `?since=${last}`;
    const fresh = await fetchJSON(runUrl + since);
    for (const [name, line] of Object.entries(fresh.metrics)) extendChart(holder, name, line, data.label);
    if (fresh.last_step !== null) last = fresh.last_step;
    document.getElementById("summary").textContent = JSON.stringify(fresh.summary, null, 2);
    setStatus(document.getElementById("run-status"), fresh.status);
    const goOn = fresh.status === "running";
    if (!goOn) document.body.dataset.live = "false";
    return goOn;
  });
}

function liveRunsTable(table) {
  const statuses = () => [...table.tBodies[0].rows].map(r => r.dataset.status);
  if (!statuses().includes("running")) return;
  const columns = [...table.querySelectorAll("thead th")].map(th => th.dataset.column);
  document.body.dataset.live = "true";
  poll(async () => {
    const fresh = await fetchJSON(`/api${artifactstoreUI.base()}/${location.search}`);
    const shown = new Map([...table.tBodies[0].rows].map(r => [r.dataset.run, r]));
    let added = 0;
    for (const row of fresh.rows) {
      const tr = shown.get(row.id);
      if (!tr) { added += 1; continue; }
      tr.dataset.status = row.status;
      columns.forEach((column, i) => {
        if (!column || column === "id" || column === "name" || !(column in row)) return;
        const value = row[column];
        const cell = tr.cells[i];
        cell.dataset.value = JSON.stringify(value === undefined ? null : value);
        cell.textContent = value === null ? "" : Array.isArray(value) ? value.join(", ") : String(value);
      });
    }
    const note = document.getElementById("new-runs");
    if (note && added) {
      note.hidden = false;
      note.querySelector("span").textContent = String(added);
    }
    const goOn = statuses().includes("running");
    if (!goOn) document.body.dataset.live = "false";
    return goOn;
  });
}

// -- runs table selection -------------------------------------------------------------

function setUpCompare(table) {
  const button = document.getElementById("compare");
  if (!button) return;
  const boxes = () => [...table.querySelectorAll("input.pick")];
  const update = () => {
    const n = boxes().filter(b => b.checked).length;
    button.disabled = n < 2 || n > 10;
    button.textContent = n ? `Compare ${n}` : "Compare";
  };
  for (const box of boxes()) box.addEventListener("change", update);
  button.addEventListener("click", () => {
    const ids = boxes().filter(b => b.checked).map(b => b.value);
    location.href = `${artifactstoreUI.base()}/compare?runs=${ids.map(encodeURIComponent).join(",")}`;
  });
  update();
}

// -- code diff (run page) ----------------------------------------------------------------

function diffBlock(holder, title, text) {
  const h = document.createElement("h3");
  h.textContent = title;
  const pre = document.createElement("pre");
  pre.className = "diff";
  for (const line of text.split("\n")) {
    const span = document.createElement("span");
    span.className = line.startsWith("+") && !line.startsWith("+++") ? "add"
      : line.startsWith("-") && !line.startsWith("---") ? "del"
      : line.startsWith("@@") ? "hunk" : "ctx";
    span.textContent = line + "\n";
    pre.appendChild(span);
  }
  holder.append(h, pre);
}

function setUpCodeDiff() {
  const select = document.getElementById("diff-other");
  if (!select) return;
  const holder = document.getElementById("code-diff");
  select.addEventListener("change", async () => {
    holder.replaceChildren();
    delete holder.dataset.loaded;
    if (!select.value) return;
    const url = `/api${artifactstoreUI.base()}/runs/${encodeURIComponent(select.dataset.run)}` +
      `/diff-code?other=${encodeURIComponent(select.value)}`;
    const answer = await fetch(url);
    const data = await answer.json();
    if (!answer.ok) {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = data.message;
      holder.appendChild(p);
    } else {
      const diff = data.diff;
      for (const note of diff.notes) {
        const p = document.createElement("p");
        p.className = "note";
        p.textContent = note;
        holder.appendChild(p);
      }
      if (!diff.changed) {
        const p = document.createElement("p");
        p.textContent = "The code did not change.";
        holder.appendChild(p);
      }
      if (diff.commits && diff.commits.length) diffBlock(holder, "Commits", diff.commits.join("\n"));
      if (diff.git_diff) diffBlock(holder, "git diff", diff.git_diff);
      if (diff.patch_diff) diffBlock(holder, "Saved patches", diff.patch_diff);
      if (diff.entry_diff) diffBlock(holder, "Entry scripts", diff.entry_diff);
    }
    holder.dataset.loaded = select.value;
  });
}

window.artifactstoreUI.charts = {drawCharts, setXMode};

document.addEventListener("DOMContentLoaded", async () => {
  const runs = document.getElementById("runs");
  if (runs) { setUpTable(runs); setUpCompare(runs); liveRunsTable(runs); }
  setUpXToggle();
  setUpCodeDiff();
  const data = document.getElementById("metrics");
  if (data) {
    // a run page: {name: series} -> one line each; a compare page: {name: [series...]}
    const parsed = JSON.parse(data.textContent);
    const labels = JSON.parse(document.getElementById("labels").textContent);
    const metrics = Object.fromEntries(Object.entries(parsed).map(
      ([name, value]) => [name, Array.isArray(value) ? value : [value]]));
    drawCharts(document.getElementById("charts"), metrics, labels);
  }
  const live = document.getElementById("live");
  if (live) liveRunPage(JSON.parse(live.textContent));
  const results = await Promise.allSettled(window.artifactstoreUI.loaders.map(fn => fn()));
  for (const r of results) if (r.status === "rejected") console.error(r.reason);
  document.body.dataset.ready = "true";
});
