// The media panels of a run page (artifactstore/ui/mediapages.py): one panel per media
// key, grouped by kind, drawn from the run's media index (/api/p/<project>/runs/<id>/media).
// Each panel that was logged at more than one step has its own step slider, as W&B's
// media panels do; it starts at the last step. Images (with their masks and boxes drawn
// over them), plots, audio and video players, texts, logged HTML in a sandboxed frame,
// tables (sortable, paged, image cells as thumbnails) and histograms (a heatmap of every
// step and the bars of the slider's step). While the run is live the index is asked
// again every 2 s: new keys get panels, new steps extend the sliders, and a slider left
// at the last step follows the newest one (#media data-live says whether it follows).
// Everything the store holds is hostile: text reaches the page through textContent only,
// logged HTML only as a frame with sandbox="" whose file is served in a CSP sandbox.
"use strict";

(() => {
  const PAGE_ROWS = 20;
  const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]];
  const TITLES = {image: "Images", plot: "Plots", video: "Videos", audio: "Audio",
    histogram: "Histograms", table: "Tables", text: "Texts", html: "HTML"};

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function mediaUrl(runId, path) {
    // as mediaviews.media_url: every segment of the path percent-encoded
    return `${window.artifactstoreUI.base()}/runs/${encodeURIComponent(runId)}/media/` +
      path.split("/").map(encodeURIComponent).join("/");
  }

  async function fetchOk(url, what) {
    const answer = await fetch(url);
    if (!answer.ok) throw new Error(`${what}: HTTP ${answer.status}`);
    return answer;
  }

  function loaded(img) {
    // resolves once the picture is decoded; a broken one rejects (a console error)
    return img.decode().catch(() => { throw new Error(`media image did not load: ${img.src}`); });
  }

  function caption(ref) {
    return ref.caption === undefined || ref.caption === null ? null : make("figcaption", "", ref.caption);
  }

  // --- images: masks and boxes over the picture ------------------------------------

  function boxRect(box, width, height) {
    const p = box.position || {};
    let x0, x1, y0, y1;
    if (p.middle !== undefined) {
      x0 = p.middle[0] - p.width / 2; x1 = p.middle[0] + p.width / 2;
      y0 = p.middle[1] - p.height / 2; y1 = p.middle[1] + p.height / 2;
    } else {
      [x0, x1, y0, y1] = [p.minX, p.maxX, p.minY, p.maxY];
    }
    const scale = box.domain === "pixel" ? [1, 1] : [width, height];  // W&B: fractions by default
    return [x0 * scale[0], y0 * scale[1], (x1 - x0) * scale[0], (y1 - y0) * scale[1]];
  }

  async function overlay(figure, img, ref) {
    const masks = Object.entries(ref.masks || {});
    const boxes = Object.entries(ref.boxes || {});
    if (!masks.length && !boxes.length) return;
    await loaded(img);
    const w = img.naturalWidth, h = img.naturalHeight;
    const zoom = Math.max(1, Math.ceil(256 / Math.max(w, 1)));
    const canvas = make("canvas", "media-overlay");
    canvas.width = w * zoom; canvas.height = h * zoom;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    const legend = make("ul", "media-legend");
    for (const [name, mask] of masks) {
      const source = new Image();
      source.src = mask.url;
      await loaded(source);
      const scratch = document.createElement("canvas");
      scratch.width = source.naturalWidth; scratch.height = source.naturalHeight;
      const sctx = scratch.getContext("2d");
      sctx.drawImage(source, 0, 0);
      const pixels = sctx.getImageData(0, 0, scratch.width, scratch.height);
      const px = pixels.data;
      for (let i = 0; i < px.length; i += 4) {
        const cls = px[i];  // a mask PNG is grey: the class id in every channel
        const [r, g, b] = PALETTE[(cls - 1 + PALETTE.length) % PALETTE.length];
        px[i] = r; px[i + 1] = g; px[i + 2] = b; px[i + 3] = cls === 0 ? 0 : 110;
      }
      sctx.putImageData(pixels, 0, 0);
      ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
      const labels = Object.values(mask.class_labels || {}).join(", ");
      legend.appendChild(make("li", "", `mask ${name}${labels ? ": " + labels : ""}`));
    }
    ctx.lineWidth = 2;
    ctx.font = "12px sans-serif";
    boxes.forEach(([name, group], g) => {
      const labels = (group && group.class_labels) || {};
      for (const box of (group && group.box_data) || []) {
        const [r, gr, b] = PALETTE[(box.class_id ?? g) % PALETTE.length];
        ctx.strokeStyle = ctx.fillStyle = `rgb(${r},${gr},${b})`;
        const [x, y, bw, bh] = boxRect(box, w, h).map(v => v * zoom);
        ctx.strokeRect(x, y, bw, bh);
        const label = box.box_caption ?? labels[String(box.class_id)];
        if (label !== undefined) ctx.fillText(String(label), x + 2, Math.max(12, y - 2));
      }
      legend.appendChild(make("li", "", `boxes ${name}: ${((group && group.box_data) || []).length}`));
    });
    figure.querySelector(".media-frame").appendChild(canvas);
    figure.appendChild(legend);
  }

  function showImages(body, refs) {
    const row = make("div", "media-row");
    const waits = refs.map(ref => {
      const figure = make("figure", "media-image");
      const frame = make("div", "media-frame");
      const img = make("img");
      img.alt = ref.caption || "";
      img.src = ref.url;
      frame.appendChild(img);
      figure.appendChild(frame);
      const text = caption(ref);
      if (text) figure.appendChild(text);
      row.appendChild(figure);
      return overlay(figure, img, ref).then(() => loaded(img));
    });
    body.replaceChildren(row);
    return Promise.all(waits);
  }

  // --- plots, players, texts, HTML ----------------------------------------------------

  async function showPlots(body, refs) {
    const row = make("div", "media-row");
    body.replaceChildren(row);
    for (const ref of refs) {
      const figure = make("figure", "media-plot");
      row.appendChild(figure);
      if (ref.format === "vega-lite") {
        const spec = await (await fetchOk(ref.url, "vega-lite spec")).json();
        figure.appendChild(make("p", "media-note",
          "A Vega-Lite spec, shown as JSON: this UI does not run Vega."));
        figure.appendChild(make("pre", "media-text", JSON.stringify(spec, null, 2)));
      } else {
        const img = make("img");
        img.alt = ref.caption || "";
        img.src = ref.url;
        figure.appendChild(img);
        await loaded(img);
      }
      const text = caption(ref);
      if (text) figure.appendChild(text);
    }
  }

  function showPlayers(tag) {
    return (body, refs) => {
      const row = make("div", "media-row");
      for (const ref of refs) {
        const figure = make("figure", `media-${tag}`);
        // a GIF clip is a picture: <img> plays it, <video> cannot
        const player = ref.format === "gif" ? make("img") : make(tag);
        if (ref.format !== "gif") {
          player.controls = true;
          player.preload = "metadata";
        }
        player.src = ref.url;
        figure.appendChild(player);
        const facts = [ref.duration !== undefined ? `${Number(ref.duration).toFixed(2)} s` : null,
          ref.sample_rate ? `${ref.sample_rate} Hz` : null,
          ref.width ? `${ref.width}×${ref.height}` : null, ref.fps ? `${ref.fps} fps` : null,
          `${ref.size} bytes`].filter(Boolean).join(" · ");
        figure.appendChild(make("p", "media-note", facts));
        const text = caption(ref);
        if (text) figure.appendChild(text);
        row.appendChild(figure);
      }
      body.replaceChildren(row);
    };
  }

  async function showTexts(body, refs) {
    const row = make("div", "media-column");
    body.replaceChildren(row);
    for (const ref of refs) {
      const figure = make("figure", "media-textbox");
      const text = ref.text !== undefined ? ref.text
        : await (await fetchOk(ref.url, "text")).text();
      figure.appendChild(make("pre", "media-text", text));
      const under = caption(ref);
      if (under) figure.appendChild(under);
      row.appendChild(figure);
    }
  }

  function showHtml(body, refs) {
    const row = make("div", "media-column");
    const waits = refs.map(ref => {
      const figure = make("figure", "media-html");
      const frame = make("iframe");
      frame.setAttribute("sandbox", "");  // no scripts, no forms, an origin of its own
      frame.title = ref.caption || "logged HTML";
      const ready = new Promise(resolve => frame.addEventListener("load", resolve, {once: true}));
      frame.src = ref.url;
      figure.appendChild(frame);
      const under = caption(ref);
      if (under) figure.appendChild(under);
      row.appendChild(figure);
      return ready;
    });
    body.replaceChildren(row);
    return Promise.all(waits);
  }

  // --- tables -------------------------------------------------------------------------

  function cellKey(value) {
    if (value === null || value === undefined) return [2, ""];
    if (typeof value === "number" || typeof value === "boolean") return [0, Number(value)];
    if (typeof value === "object") return [1, value.path || JSON.stringify(value)];
    return [1, String(value)];
  }

  function cellNode(runId, value, waits) {
    const td = make("td");
    if (value && typeof value === "object" && typeof value._type === "string" &&
        typeof value.path === "string") {
      const url = mediaUrl(runId, value.path);
      if (value._type === "image" || (value._type === "plot" && value.format !== "vega-lite")) {
        const img = make("img", "media-thumb");
        img.alt = value.caption || "";
        img.src = url;
        waits.push(loaded(img));
        td.appendChild(img);
      } else {
        const link = make("a", "", `${value._type} ${value.path.split("/").pop()}`);
        link.href = url;
        td.appendChild(link);
      }
    } else if (value !== null && typeof value === "object") {
      td.textContent = JSON.stringify(value);
    } else {
      td.textContent = value === null || value === undefined ? "" : String(value);
    }
    return td;
  }

  async function showTables(body, refs, panel, runId) {
    const column = make("div", "media-column");
    body.replaceChildren(column);
    const waits = [];
    for (const ref of refs) {
      const data = await (await fetchOk(ref.url, "table")).json();
      const figure = make("figure", "media-table");
      const table = make("table", "media-grid");
      const headRow = make("tr");
      table.appendChild(make("thead")).appendChild(headRow);
      const tbody = table.appendChild(make("tbody"));
      const pager = make("p", "media-pager");
      const state = {rows: data.rows.slice(), page: 0, sortedBy: -1, descending: false};
      const draw = () => {
        const pages = Math.max(1, Math.ceil(state.rows.length / PAGE_ROWS));
        state.page = Math.min(state.page, pages - 1);
        const shown = state.rows.slice(state.page * PAGE_ROWS, (state.page + 1) * PAGE_ROWS);
        tbody.replaceChildren(...shown.map(row => {
          const tr = make("tr");
          for (const value of row) tr.appendChild(cellNode(runId, value, waits));
          return tr;
        }));
        pager.replaceChildren();
        if (pages > 1) {
          const back = make("button", "", "‹ previous"), next = make("button", "", "next ›");
          back.type = next.type = "button";
          back.disabled = state.page === 0; next.disabled = state.page === pages - 1;
          back.addEventListener("click", () => { state.page -= 1; draw(); });
          next.addEventListener("click", () => { state.page += 1; draw(); });
          pager.append(back, make("span", "", ` page ${state.page + 1} of ${pages} `), next);
        }
        pager.appendChild(make("span", "media-note", ` ${state.rows.length} rows`));
      };
      data.columns.forEach((name, index) => {
        const th = make("th");
        const button = make("button", "sort", name);
        button.type = "button";
        button.addEventListener("click", () => {
          state.descending = state.sortedBy === index && !state.descending;
          state.sortedBy = index;
          headRow.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
          th.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
          const sign = state.descending ? -1 : 1;
          state.rows.sort((a, b) => {
            const ka = cellKey(a[index]), kb = cellKey(b[index]);
            if (ka[0] !== kb[0]) return ka[0] - kb[0];  // missing last in both directions
            return ka[1] < kb[1] ? -sign : ka[1] > kb[1] ? sign : 0;
          });
          state.page = 0;
          draw();
        });
        th.appendChild(button);
        headRow.appendChild(th);
      });
      draw();
      figure.append(make("div", "scroll"), pager);
      figure.firstChild.appendChild(table);
      const under = caption(ref);
      if (under) figure.appendChild(under);
      column.appendChild(figure);
    }
    await Promise.all(waits);
  }

  // --- histograms ---------------------------------------------------------------------

  function heat(t) {
    // white to deep blue
    const c = [[255, 255, 255], [144, 202, 249], [21, 101, 192], [13, 40, 100]];
    const x = Math.min(0.999, Math.max(0, t)) * (c.length - 1), i = Math.floor(x), f = x - i;
    return `rgb(${c[i].map((v, k) => Math.round(v + (c[i + 1][k] - v) * f)).join(",")})`;
  }

  function histogramPanel(body, panel) {
    const hists = panel.at.map(a => a.refs[a.refs.length - 1]);
    let lo = Infinity, hi = -Infinity, most = 0;
    for (const h of hists) {
      lo = Math.min(lo, h.bins[0]); hi = Math.max(hi, h.bins[h.bins.length - 1]);
      most = Math.max(most, ...h.counts);
    }
    if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
    const map = make("canvas", "media-heatmap");
    map.width = 480; map.height = 200;
    const bars = make("canvas", "media-bars");
    bars.width = 480; bars.height = 200;
    const axis = make("p", "media-note",
      `x: step ${panel.steps[0]}–${panel.steps[panel.steps.length - 1]} · ` +
      `y: value ${lo.toPrecision(3)}–${hi.toPrecision(3)} · colour: count (max ${most})`);
    const pictures = make("div", "media-row");
    pictures.append(map, bars);
    body.append(pictures, axis);
    const ctx = map.getContext("2d");
    const cw = map.width / hists.length;
    const y = v => map.height - ((v - lo) / (hi - lo)) * map.height;
    const background = document.createElement("canvas");
    background.width = map.width; background.height = map.height;
    const bg = background.getContext("2d");
    bg.fillStyle = "#fff";
    bg.fillRect(0, 0, map.width, map.height);
    hists.forEach((h, i) => {
      h.counts.forEach((count, b) => {
        if (!count) return;
        const top = y(h.bins[b + 1]), bottom = y(h.bins[b]);
        bg.fillStyle = heat(count / (most || 1));
        bg.fillRect(i * cw, top, Math.ceil(cw), Math.max(1, bottom - top));
      });
    });
    return index => {
      ctx.drawImage(background, 0, 0);
      ctx.strokeStyle = "#e53935";
      ctx.strokeRect(index * cw, 0, Math.max(1, cw), map.height);
      const h = hists[index];
      const bctx = bars.getContext("2d");
      bctx.fillStyle = "#fff";
      bctx.fillRect(0, 0, bars.width, bars.height);
      const peak = Math.max(...h.counts) || 1;
      const x = v => ((v - lo) / (hi - lo)) * bars.width;
      bctx.fillStyle = "#1565c0";
      h.counts.forEach((count, b) => {
        const left = x(h.bins[b]), height = (count / peak) * (bars.height - 4);
        bctx.fillRect(left, bars.height - height, Math.max(1, x(h.bins[b + 1]) - left - 0.5), height);
      });
    };
  }

  // --- panels -------------------------------------------------------------------------

  const SHOW = {image: showImages, plot: showPlots, audio: showPlayers("audio"),
    video: showPlayers("video"), text: showTexts, html: showHtml, table: showTables};

  // One panel; returns {ready, update}: update(panel) takes the panel as a newer index
  // gives it (more steps while the run is live) and moves a slider that was at the last
  // step to the new last one, as W&B's panels follow a live run.
  function buildPanel(group, panel, runId) {
    const box = make("section", "media-panel");
    box.dataset.key = panel.key;
    box.dataset.kind = panel.kind;
    box.appendChild(make("h4", "", panel.key));
    const controls = make("div", "media-controls");
    const label = make("span", "media-step");
    controls.appendChild(label);
    const body = make("div", "media-body");
    box.append(controls, body);
    group.appendChild(box);
    let current = panel;
    let slider = null;
    let show;
    const shower = () => {
      if (current.kind === "histogram") {
        body.replaceChildren();
        return histogramPanel(body, current);
      }
      const draw = SHOW[current.kind];
      return draw ? index => draw(body, current.at[index].refs, current, runId)
        : index => body.replaceChildren(make("pre", "media-text",
          JSON.stringify(current.at[index].refs, null, 2)));
    };
    const at = index => {
      label.textContent = `step ${current.steps[index]}` +
        (current.steps.length > 1 ? ` (${index + 1} of ${current.steps.length})` : "");
      return show(index);
    };
    const ensureSlider = () => {
      const last = current.steps.length - 1;
      if (last < 1) return;
      if (slider === null) {
        slider = make("input", "media-slider");
        slider.type = "range";
        slider.min = "0";
        slider.setAttribute("aria-label", `step of ${current.key}`);
        slider.addEventListener("input", () => {
          Promise.resolve(at(Number(slider.value))).catch(e => console.error(e));
        });
        controls.prepend(slider);
        slider.value = String(last);
      }
      slider.max = String(last);
    };
    show = shower();
    ensureSlider();
    const update = fresh => {
      if (fresh.steps.length === current.steps.length) return Promise.resolve();
      const atLast = slider === null || Number(slider.value) === current.steps.length - 1;
      current = fresh;
      if (current.kind === "histogram") show = shower();
      ensureSlider();
      const index = atLast ? current.steps.length - 1 : Number(slider.value);
      if (slider !== null) slider.value = String(index);
      return Promise.resolve(at(index));
    };
    return {ready: Promise.resolve(at(current.steps.length - 1)), update};
  }

  // every POLL_MS while the run is live, the index again: new steps and new keys
  const POLL_MS = 2000;

  function groupOf(holder, kind, kinds) {
    let group = holder.querySelector(`.media-group[data-kind="${CSS.escape(kind)}"]`);
    if (group) return group;
    group = make("div", "media-group");
    group.dataset.kind = kind;
    group.appendChild(make("h3", "", TITLES[kind] || kind));
    // in the index's order of kinds
    const later = [...holder.querySelectorAll(".media-group")].find(
      g => kinds.indexOf(g.dataset.kind) > kinds.indexOf(kind));
    holder.insertBefore(group, later || null);
    return group;
  }

  function follow(holder, panels, runId) {
    holder.dataset.live = "true";
    const tick = async () => {
      let index;
      try {
        index = await (await fetchOk(holder.dataset.index, "media index")).json();
      } catch (e) {
        console.warn("media refresh failed:", e);
        setTimeout(tick, POLL_MS);
        return;
      }
      if (index.panels.length) holder.querySelector(".media-empty").hidden = true;
      const updates = [];
      for (const panel of index.panels) {
        const id = `${panel.kind}\u0000${panel.key}`;
        const known = panels.get(id);
        if (known) {
          updates.push(known.update(panel));
        } else {
          const built = buildPanel(groupOf(holder, panel.kind, index.kinds), panel, runId);
          panels.set(id, built);
          updates.push(built.ready);
        }
      }
      await Promise.allSettled(updates);
      holder.dataset.steps = String(index.panels.reduce((n, p) => n + p.steps.length, 0));
      if (index.status === "running") setTimeout(tick, POLL_MS);
      else holder.dataset.live = "false";
    };
    setTimeout(tick, POLL_MS);
  }

  async function loadMedia() {
    const holder = document.getElementById("media");
    if (!holder) return;
    const index = await (await fetchOk(holder.dataset.index, "media index")).json();
    const panels = new Map();
    const drawn = [];
    for (const panel of index.panels) {
      const built = buildPanel(groupOf(holder, panel.kind, index.kinds), panel, index.run_id);
      panels.set(`${panel.kind}\u0000${panel.key}`, built);
      drawn.push(built.ready);
    }
    holder.querySelector(".media-empty").hidden = index.panels.length > 0;
    holder.dataset.steps = String(index.panels.reduce((n, p) => n + p.steps.length, 0));
    if (index.status === "running") follow(holder, panels, index.run_id);
    else holder.dataset.live = "false";
    await Promise.all(drawn);
  }

  window.artifactstoreUI.onLoad(loadMedia);
})();
