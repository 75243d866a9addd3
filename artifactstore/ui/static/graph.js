/* artifactstore lineage graph and audit report: draws the data of #artifactstore-data.
 * Every user-provided string reaches the page through textContent or cytoscape's canvas
 * labels, never as HTML. The graph is exposed as window.artifactstoreGraph for tests.
 * Two homes: the self-contained report of `lineage --html` / `audit --html` (nodes link to
 * each other in the graph), and the web UI's lineage and audit pages, whose data carries
 * the project's `base` path: there a node's facts link to the pages of the versions and
 * runs it names, and the app's ui.js marks the page ready (artifactstoreUI.onLoad). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("artifactstore-data").textContent);
  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });
  var app = typeof data.base === "string";

  // the app page of a node: a live version's page, a run's page (null in the report)
  function pageOf(id) {
    var n = byId[id];
    if (!app || !n) { return null; }
    if (n.kind === "run" && n.facts.run_id) {
      return data.base + "/runs/" + encodeURIComponent(n.facts.run_id);
    }
    if (n.kind === "version" && n.state === "live" && n.facts.artifact !== undefined) {
      return data.base + "/artifacts/" + encodeURIComponent(n.facts.artifact) + "/v" +
        encodeURIComponent(String(n.facts.number));
    }
    return null;
  }

  function pageLink(href, text) {
    var a = el("a", text, "page-link");
    a.href = href;
    return a;
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }

  function valueCell(value) {
    var td = el("td");
    if (value !== null && typeof value === "object") {
      td.appendChild(el("pre", JSON.stringify(value, null, 1)));
    } else {
      td.textContent = value === null || value === undefined ? "-" : String(value);
    }
    return td;
  }

  function table(rows) {
    var t = el("table");
    rows.forEach(function (row) {
      var tr = el("tr");
      tr.appendChild(el("th", row[0]));
      var cell = row[1];
      tr.appendChild(cell instanceof Node ? wrap(cell) : valueCell(cell));
      t.appendChild(tr);
    });
    return t;
  }

  function wrap(node) { var td = el("td"); td.appendChild(node); return td; }

  function nodeLink(id) {
    var href = pageOf(id);
    if (href) {
      var n = byId[id];
      var name = n.kind === "run" && n.facts.name ? n.facts.name + " (" + id + ")" : id;
      var a = pageLink(href, name);
      a.setAttribute("data-node", id);
      return a;
    }
    var b = el("button", id, "node-link");
    b.type = "button";
    b.setAttribute("data-node", id);
    b.addEventListener("click", function () { select(id, true); });
    return b;
  }

  function links(ids, row) {
    var div = el("div", null, "links");
    div.setAttribute("data-row", row);
    if (!ids.length) { div.textContent = "-"; }
    ids.forEach(function (id, i) {
      if (i) { div.appendChild(document.createTextNode(", ")); }
      div.appendChild(nodeLink(id));
    });
    return div;
  }

  function neighbours(id, incoming) {
    return data.edges.filter(function (e) { return (incoming ? e.target : e.source) === id; })
      .map(function (e) { return incoming ? e.source : e.target; }).sort();
  }

  function showFacts(id) {
    var n = byId[id];
    var pane = document.getElementById("facts");
    pane.textContent = "";
    pane.setAttribute("data-node", id);
    pane.appendChild(el("h2", id));
    pane.appendChild(el("span", n.state, "state " + n.state));
    var rows = [];
    var own = pageOf(id);
    if (own) {
      var pages = el("div", null, "links");
      pages.setAttribute("data-row", "pages");
      pages.appendChild(pageLink(own, n.kind === "run" ? "run page" : "version page"));
      if (n.kind === "version") {
        pages.appendChild(document.createTextNode(" · "));
        pages.appendChild(pageLink(data.base + "/audit/" + encodeURIComponent(id), "audit"));
      }
      rows.push(["open", pages]);
    }
    if (n.kind === "version") {
      rows.push(["made by", links(neighbours(id, true), "made by")]);
      rows.push(["used by", links(neighbours(id, false), "used by")]);
    } else {
      rows.push(["used", links(neighbours(id, true), "used")]);
      rows.push(["produced", links(neighbours(id, false), "produced")]);
    }
    Object.keys(n.facts).sort().forEach(function (k) { rows.push([k, n.facts[k]]); });
    pane.appendChild(table(rows));
  }

  var cy = null;
  function select(id, centre) {
    showFacts(id);
    if (cy) {
      cy.elements().unselect();
      var node = cy.getElementById(id);
      node.select();
      if (centre) { cy.animate({ center: { eles: node } }, { duration: 200 }); }
    }
  }

  function label(n) {
    var text = n.label;
    if (n.state !== "live") { text += "\n(" + n.state + ")"; }
    return text;
  }

  function drawGraph() {
    var elements = data.nodes.map(function (n) {
      var classes = [n.kind, n.state];
      if (n.status === "failed" || n.status === "crashed") { classes.push("failed"); }
      if (n.id === data.focus) { classes.push("focus"); }
      return { group: "nodes", data: { id: n.id, label: label(n) }, classes: classes.join(" ") };
    }).concat(data.edges.map(function (e, i) {
      return { group: "edges", data: { id: "e" + i, source: e.source, target: e.target },
               classes: e.kind };
    }));
    cy = cytoscape({
      container: document.getElementById("graph"),
      elements: elements,
      wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: {
          "label": "data(label)", "text-wrap": "wrap", "text-max-width": "150px",
          "text-valign": "center", "text-halign": "center", "font-size": "11px",
          "width": 170, "height": 48, "border-width": 2, "color": "#111827" } },
        { selector: "node.version", style: {
          "shape": "round-rectangle", "background-color": "#dbeafe", "border-color": "#1d4ed8" } },
        { selector: "node.run", style: {
          "shape": "ellipse", "background-color": "#fef3c7", "border-color": "#b45309" } },
        { selector: "node.run.failed", style: {
          "background-color": "#fee2e2", "border-color": "#b91c1c" } },
        { selector: "node.deleted", style: {
          "border-style": "dashed", "background-color": "#f3f4f6", "border-color": "#6b7280",
          "color": "#4b5563" } },
        { selector: "node.purged", style: {
          "border-style": "dotted", "border-width": 3, "background-color": "#e5e7eb",
          "border-color": "#111827", "color": "#4b5563" } },
        { selector: "node.missing", style: {
          "border-style": "dashed", "background-color": "#ffffff", "border-color": "#9ca3af",
          "color": "#6b7280" } },
        { selector: "node.focus", style: { "border-width": 4 } },
        { selector: "node:selected", style: { "overlay-color": "#2563eb", "overlay-opacity": 0.15,
          "border-color": "#2563eb" } },
        { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
          "line-color": "#9ca3af", "target-arrow-color": "#9ca3af" } },
        { selector: "edge.used", style: { "line-style": "dashed" } }
      ],
      layout: { name: "dagre", rankDir: "LR", nodeSep: 24, rankSep: 70, fit: true, padding: 20 }
    });
    cy.on("tap", "node", function (evt) { select(evt.target.id()); });
    document.getElementById("fit").addEventListener("click", function () { cy.fit(null, 20); });
    window.artifactstoreGraph = cy;
  }

  function section(title) {
    var s = el("section");
    s.appendChild(el("h2", title));
    document.getElementById("report").appendChild(s);
    return s;
  }

  function drawAudit(a) {
    var s = section("Findings");
    if (!a.flags.length) { s.appendChild(el("p", "none: the audit is OK", "ok")); }
    else {
      var t = el("table");
      var head = el("tr");
      ["severity", "code", "subject", "message"].forEach(function (h) { head.appendChild(el("th", h)); });
      t.appendChild(head);
      a.flags.forEach(function (f) {
        var tr = el("tr");
        tr.appendChild(el("td", f.severity, "severity-" + f.severity));
        tr.appendChild(el("td", f.code));
        tr.appendChild(byId[f.subject] ? wrap(nodeLink(f.subject)) : el("td", f.subject));
        tr.appendChild(el("td", f.message));
        t.appendChild(tr);
      });
      s.appendChild(t);
    }
    var v = a.version;
    section("Version").appendChild(table(Object.keys(v).sort().map(function (k) { return [k, v[k]]; })));
    var h = section("Alias history");
    var rows = [];
    Object.keys(a.alias_history).sort().forEach(function (alias) {
      a.alias_history[alias].forEach(function (e) { rows.push([alias + " #" + e.seq, e]); });
    });
    h.appendChild(rows.length ? table(rows) : el("p", "none"));
    var i = a.integrity;
    section("Integrity").appendChild(table(Object.keys(i).sort().map(function (k) { return [k, i[k]]; })));
  }

  function start() {
    var subtitle = document.getElementById("subtitle");
    if (subtitle) { subtitle.textContent = data.subtitle; }
    drawGraph();
    if (data.audit) { drawAudit(data.audit); }
    if (data.focus && byId[data.focus]) { select(data.focus); }
  }

  if (window.artifactstoreUI) {
    window.artifactstoreUI.onLoad(start);  // the app's ui.js marks the page ready
  } else {
    start();
    document.body.setAttribute("data-ready", "true");
  }
})();
