// The artifact pages' script: sorts the tables marked "sortable" by a click on a column
// head (each cell's data-value holds its JSON value; missing values last), and holds the
// page's ready mark until every preview image has loaded or failed. No user text is
// written here: the server renders it, escaped.
"use strict";

(function () {
  function key(cell) {
    let value = null;
    try { value = JSON.parse(cell.dataset.value); } catch (e) { value = cell.textContent; }
    if (value === null || value === undefined || value === "") return [2, 0];
    if (typeof value === "number" || typeof value === "boolean") return [0, Number(value)];
    return [1, String(value)];
  }

  function order(a, b) {
    if (a[0] !== b[0]) return a[0] - b[0];
    if (a[1] < b[1]) return -1;
    return a[1] > b[1] ? 1 : 0;
  }

  function sortable(table) {
    const heads = [...table.tHead.rows[0].cells];
    heads.forEach((th, index) => {
      const button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", () => {
        const descending = th.getAttribute("aria-sort") === "ascending";
        heads.forEach(h => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        const body = table.tBodies[0];
        const rows = [...body.rows].map(row => [key(row.cells[index]), row]);
        const present = rows.filter(r => r[0][0] !== 2), missing = rows.filter(r => r[0][0] === 2);
        present.sort((a, b) => descending ? order(b[0], a[0]) : order(a[0], b[0]));
        for (const [, row] of [...present, ...missing]) body.appendChild(row);
      });
    });
  }

  function loaded(img) {
    if (img.complete) return Promise.resolve();
    return new Promise(done => {
      img.addEventListener("load", done, {once: true});
      img.addEventListener("error", done, {once: true});
    });
  }

  window.artifactstoreUI.onLoad(() => {
    document.querySelectorAll("table.sortable").forEach(sortable);
    return Promise.all([...document.querySelectorAll("#previews img")].map(loaded));
  });
})();
