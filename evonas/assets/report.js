// evonas report.html: SVG plots from the JSON block "evonas-data", no libraries, no network.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("evonas-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
    "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79"];
  const rows = D.rows;
  const byId = new Map(rows.map(r => [r.id, r]));
  const tip = document.getElementById("tip");

  // crc32, as evonas.draw.name_color: the same operator colour as the PNG figures
  const CRC = (() => { const t = []; for (let n = 0; n < 256; n++) { let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; t.push(c >>> 0); } return t; })();
  function crc32(s) { const b = new TextEncoder().encode(s); let c = 0xFFFFFFFF;
    for (const x of b) c = CRC[(c ^ x) & 255] ^ (c >>> 8); return (c ^ 0xFFFFFFFF) >>> 0; }
  function color(name) { return (name === "init" || name === "seed" || !name) ? "#4d4d4d" : PALETTE[crc32(name) % PALETTE.length]; }

  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function scale(lo, hi, a, b) { if (hi === lo) { hi = lo + 1; } return v => a + (v - lo) / (hi - lo) * (b - a); }
  function ticks(lo, hi, n) {
    const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => span / s <= n) || mag * 10;
    const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
    return out;
  }
  // a plot frame with grid, ticks and axis labels; returns the svg and the two scales
  function frame(parent, w, h, xr, yr, xlabel, ylabel) {
    const m = { l: 62, r: 12, t: 10, b: 42 };
    const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: "plot" }, parent);
    const X = scale(xr[0], xr[1], m.l, w - m.r), Y = scale(yr[0], yr[1], h - m.b, m.t);
    for (const v of ticks(xr[0], xr[1], 6)) {
      el("line", { x1: X(v), x2: X(v), y1: m.t, y2: h - m.b, stroke: "#eee" }, svg);
      el("text", { x: X(v), y: h - m.b + 14, "text-anchor": "middle", "font-size": 10 }, svg, String(v));
    }
    for (const v of ticks(yr[0], yr[1], 6)) {
      el("line", { x1: m.l, x2: w - m.r, y1: Y(v), y2: Y(v), stroke: "#eee" }, svg);
      el("text", { x: m.l - 4, y: Y(v) + 3, "text-anchor": "end", "font-size": 10 }, svg, String(v));
    }
    el("rect", { x: m.l, y: m.t, width: w - m.l - m.r, height: h - m.t - m.b, fill: "none", stroke: "#999" }, svg);
    el("text", { x: (m.l + w - m.r) / 2, y: h - 6, "text-anchor": "middle", "font-size": 12 }, svg, xlabel);
    el("text", { transform: `translate(14 ${(m.t + h - m.b) / 2}) rotate(-90)`, "text-anchor": "middle",
      "font-size": 12 }, svg, ylabel);
    return { svg, X, Y, bottom: h - m.b };
  }
  function range(vals) {
    const v = vals.filter(x => x !== null && isFinite(x));
    if (!v.length) return [0, 1];
    let lo = Math.min(...v), hi = Math.max(...v); const pad = (hi - lo) * 0.04 || 1;
    return [lo - pad, hi + pad];
  }

  // --- summary and axis choice ---------------------------------------------------------
  const s = D.summary, bits = [];
  for (const k of ["individuals", "evaluations", "duplicates skipped", "failures", "best id", "best fitness", "params"])
    if (s[k] !== undefined && s[k] !== null) bits.push(`<b>${k}</b> ${typeof s[k] === "number" ? +s[k].toPrecision(5) : s[k]}`);
  document.getElementById("summary").innerHTML = bits.join(" &middot; ") + ` <span class="none">(written ${D.generated})</span>`;
  document.getElementById("fitness-is").textContent = "fitness: " + D.fitness_is;
  const axes = [["birth", "evaluations (individuals completed)"]];
  if (rows.some(r => r.finished_s !== undefined && r.finished_s !== null)) axes.push(["finished_s", "wall-clock time (s since start)"]);
  if (rows.some(r => r.train_seconds)) axes.push(["_train_cum", "training time (s, summed over trials)"]);
  let cum = 0; for (const r of [...rows].sort((a, b) => a.birth - b.birth)) { cum += r.train_seconds || 0; r._train_cum = cum; }
  const sel = document.getElementById("xaxis");
  for (const [k, label] of axes) { const o = document.createElement("option"); o.value = k; o.textContent = label; sel.appendChild(o); }
  sel.onchange = () => drawFitness(sel.value);

  function describe(r) {
    const p = r.parent_ids.length ? r.parent_ids.join(", ") : "none";
    const f = r.fitness === null ? "-" : (+r.fitness).toPrecision(5);
    let t = `id ${r.id} (birth ${r.birth}) · ${r.status} · fitness ${f}<br>operator ${r.operator || "init"} · parent ${p}` +
      `<br>params ${r.params ?? "-"} · lineage epochs ${r.lineage_epochs ?? "-"}`;
    if (D.report_column && r[D.report_column] !== undefined) t += ` · ${D.report_column} ${r[D.report_column]}`;
    if (r.reason) t += `<br>${escapeHtml(r.reason)}`;
    return t + `<br><code>${escapeHtml(r.genome)}</code>`;
  }
  function escapeHtml(x) { return String(x).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }

  // --- fitness plot --------------------------------------------------------------------
  function drawFitness(xkey) {
    const host = document.getElementById("plot"); host.innerHTML = "";
    const data = [...rows].sort((a, b) => a.birth - b.birth);
    const xs = data.map(r => r[xkey] ?? 0), fit = data.map(r => r.status === "failed" ? null : r.fitness);
    const F = frame(host, 760, 440, range(xs), range(fit), sel.options[sel.selectedIndex].text, D.ylabel);
    let best = -Infinity, path = "";
    data.forEach((r, i) => { if (fit[i] !== null && fit[i] > best) best = fit[i];
      if (isFinite(best)) path += (path ? "H" : "M") + F.X(xs[i]).toFixed(1) + (path ? "V" : ",") + F.Y(best).toFixed(1); });
    if (path) el("path", { d: path, fill: "none", stroke: "#000", "stroke-width": 1.6, class: "best" }, F.svg);
    const g = el("g", {}, F.svg);
    data.forEach((r, i) => {
      let node;
      if (r.status === "failed") {
        node = el("text", { x: F.X(xs[i]), y: F.bottom + 4, fill: "#d62728", "text-anchor": "middle", "font-size": 11 }, g, "×");
      } else if (r.status === "duplicate") {
        node = el("circle", { cx: F.X(xs[i]), cy: F.Y(fit[i]), r: 3.5, fill: "none", stroke: "#777" }, g);
      } else {
        node = el("circle", { cx: F.X(xs[i]), cy: F.Y(fit[i]), r: 3.5, fill: color(r.operator), "fill-opacity": 0.85 }, g);
      }
      node.setAttribute("class", "pt"); node.dataset.id = r.id; node.style.cursor = "pointer";
      node.addEventListener("mousemove", ev => { tip.innerHTML = describe(r); tip.style.display = "block";
        tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 10) + "px"; });
      node.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      node.addEventListener("click", () => show(r.id));
    });
    const ops = [...new Set(rows.filter(r => r.status === "ok").map(r => r.operator))].sort();
    document.getElementById("legend").innerHTML = ops.map(o => `<span><i class="sw" style="background:${color(o)}"></i>${escapeHtml(o || "init")}</span>`).join("") +
      `<span>○ duplicate (not retrained)</span><span style="color:#d62728">× failed</span><span>— running best</span>`;
  }

  // --- detail panel: cell, ancestry, learning curve ------------------------------------
  function show(id) {
    const r = byId.get(id), host = document.getElementById("detail");
    host.innerHTML = `<h2>individual ${id}</h2><p>${describe(r)}</p><h3>cell</h3>`;
    drawCell(host, D.drawings[r.genome]);
    const chain = []; let cur = r;
    while (cur && chain.length < 500) { chain.push(cur); cur = cur.parent_ids.length ? byId.get(cur.parent_ids[0]) : null; }
    const h = document.createElement("div"); h.className = "ancestry";
    h.innerHTML = "<h3>ancestry (first parents, root first)</h3>" + chain.reverse().map(a =>
      `<a class="anc" data-id="${a.id}">${a.id}</a> <span class="none">${escapeHtml(a.operator || "init")} ${a.fitness === null ? "failed" : (+a.fitness).toPrecision(4)}</span>`).join(" → ");
    host.appendChild(h);
    h.querySelectorAll("a.anc").forEach(a => a.addEventListener("click", () => show(+a.dataset.id)));
    const c = D.curves[String(id)], t = document.createElement("h3"); t.textContent = "learning curve"; host.appendChild(t);
    if (!c) { host.insertAdjacentHTML("beforeend", "<p class='none'>no per-epoch curve recorded (table lookup, duplicate or failed trial)</p>"); return; }
    drawCurve(host, c);
  }
  function drawCell(host, d) {
    if (!d || d.error || !d.nodes.length) { host.insertAdjacentHTML("beforeend", `<p class="none">${d && d.error ? escapeHtml(d.error) : "no drawing"}</p>`); return; }
    const xr = range(d.nodes.map(n => n.x)), yr = range(d.nodes.map(n => n.y));
    const w = Math.min(500, 120 + 110 * (xr[1] - xr[0])), h = Math.min(1400, 70 + 62 * (yr[1] - yr[0]));
    const svg = el("svg", { width: w, height: h, class: "cell" }, host);
    const X = scale(xr[0], xr[1], 55, w - 55), Y = scale(yr[0], yr[1], 22, h - 22);
    const at = new Map(d.nodes.map(n => [n.id, [X(n.x), Y(n.y)]]));
    el("defs", {}, svg).innerHTML = '<marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker>';
    for (const e of d.edges) {
      const [x1, y1] = at.get(e.u), [x2, y2] = at.get(e.v);
      const bend = Math.abs(y2 - y1) > 70 ? 40 : 0, mx = (x1 + x2) / 2 + bend, my = (y1 + y2) / 2;
      el("path", { d: `M${x1},${y1 + 9}Q${mx},${my} ${x2},${y2 - 10}`, fill: "none", stroke: e.color, "stroke-width": 1.3, "marker-end": "url(#arr)" }, svg);
      if (e.label) el("text", { x: mx, y: my, "font-size": 10, fill: e.color, "text-anchor": "middle" }, svg, e.label);
    }
    for (const n of d.nodes) {
      const [x, y] = at.get(n.id), lines = n.label.split("\n"), bw = 8 + 6.2 * Math.max(...lines.map(l => l.length));
      el("rect", { x: x - bw / 2, y: y - 9, width: bw, height: 12 * lines.length + 6, rx: 4, fill: "#fff", stroke: n.color }, svg);
      lines.forEach((l, i) => el("text", { x, y: y + 3 + 12 * i, "font-size": 10, "text-anchor": "middle" }, svg, l));
    }
  }
  function drawCurve(host, c) {
    const n = Math.max(c.train_loss.length, c.val_acc.length), ep = [...Array(n).keys()].map(i => i + 1);
    const F = frame(host, 440, 220, [0.5, n + 0.5], range(c.val_acc), "epoch", "validation accuracy (%)");
    const L = scale(...range(c.train_loss), 220 - 42, 10);
    const line = (vals, Ys, col) => { el("polyline", { points: vals.map((v, i) => `${F.X(ep[i])},${Ys(v)}`).join(" "), fill: "none", stroke: col, "stroke-width": 1.5 }, F.svg);
      vals.forEach((v, i) => el("circle", { cx: F.X(ep[i]), cy: Ys(v), r: 2.5, fill: col }, F.svg)); };
    line(c.val_acc, F.Y, "#1f77b4"); line(c.train_loss, L, "#d62728");
    el("text", { x: 420, y: 22, "text-anchor": "end", "font-size": 10, fill: "#d62728" }, F.svg, "training loss (own scale)");
    el("text", { x: 420, y: 34, "text-anchor": "end", "font-size": 10, fill: "#1f77b4" }, F.svg, "validation accuracy");
  }

  drawFitness("birth");
  const bestId = D.summary["best id"];
  if (bestId !== undefined && byId.has(bestId)) show(bestId);
  window.evonasReady = true;  // read by the browser test
})();
