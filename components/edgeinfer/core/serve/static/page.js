// The status page's script: polls api/status and refreshes the frame. Every string the device sends may be
// remote-controlled (labels, rule names, reasons): it goes into the page with textContent only, never as markup.
"use strict";
const COLORS = ["#2e86de", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let updates = 0;
let frameLoads = 0;
let frameInterval = 1;

function show(id, value) {
  $(id).textContent = value === null || value === undefined || value === "" ? "–" : String(value);
}

function fmt(n, digits) {
  return typeof n === "number" ? n.toFixed(digits) : "–";
}

function badge(id, name, verdict) {
  const el = $(id);
  el.textContent = name + (verdict.ok ? " ✓" : " ✗");
  el.className = "badge " + (verdict.ok ? "ok" : "bad");
  el.title = verdict.reason || verdict.state;
}

function row(cells, classes) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = c === null || c === undefined ? "–" : String(c);
    if (classes && classes[i]) td.className = classes[i];
    tr.appendChild(td);
  });
  return tr;
}

function stages(st) {
  const body = $("stages").tBodies[0];
  body.replaceChildren();
  for (const name of ["read", "preprocess", "infer", "decode", "sinks", "total"]) {
    if (st[name]) body.appendChild(row([name, fmt(st[name].p50, 2), fmt(st[name].p95, 2)]));
  }
}

function streams(ss) {
  const ids = Object.keys(ss || {});
  $("streams-section").hidden = ids.length === 0;  // one source: no table
  const body = $("streams").tBodies[0];
  body.replaceChildren();
  for (const id of ids) {
    const s = ss[id];
    const dets = Object.entries(s.detections || {}).map(([k, v]) => k + ": " + v).join(", ") || "none";
    const lat = s.latency_ms;
    body.appendChild(row([id, s.state + (s.reason ? ": " + s.reason : ""), s.frames, fmt(s.fps, 1),
      lat ? fmt(lat.p50, 2) : "–", s.dropped, s.bad, dets]));
  }
}

function chart(c) {
  const svg = $("chart");
  svg.replaceChildren();
  const labels = Object.keys(c.detections).slice(0, COLORS.length);
  const n = c.frames.length;
  let max = 1;
  for (const l of labels) for (const v of c.detections[l]) max = Math.max(max, v);
  const x = (i) => (n > 1 ? (i * 600) / (n - 1) : 0);
  const y = (v) => 155 - (v * 145) / max;
  const axis = document.createElementNS(SVG, "text");
  axis.setAttribute("x", "4");
  axis.setAttribute("y", "12");
  axis.setAttribute("font-size", "11");
  axis.setAttribute("fill", "#7a8294");
  axis.textContent = "max " + max + " per " + c.bin_s + " s";
  svg.appendChild(axis);
  const legend = $("legend");
  legend.replaceChildren();
  labels.forEach((label, k) => {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", c.detections[label].map((v, i) => x(i) + "," + y(v)).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", COLORS[k]);
    line.setAttribute("stroke-width", "2");
    svg.appendChild(line);
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.className = "c" + k;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(label + ": " + c.detections[label].reduce((a, b) => a + b, 0)));
    legend.appendChild(item);
  });
  if (!labels.length) legend.textContent = "no detections in this window";
  show("chart-span", Math.round((n * c.bin_s) / 60) + " min");
}

function alerts(list) {
  const body = $("alerts").tBodies[0];
  body.replaceChildren();
  for (const a of list) {
    const when = new Date(a.at * 1000).toLocaleTimeString();
    body.appendChild(row([when, a.rule, a.severity, a.source + "#" + a.frame, a.count, fmt(a.max_score, 2)],
      [null, null, "sev-" + a.severity]));
  }
  if (!list.length) body.appendChild(row(["none yet", "", "", "", "", ""]));
}

function render(d) {
  badge("healthz", "alive", d.healthz);
  badge("readyz", "ready", d.readyz);
  show("device", d.device_id);
  show("state", d.healthz.state + (d.healthz.reason ? ": " + d.healthz.reason : ""));
  show("fps", fmt(d.fps, 1));
  chart(d.chart);
  alerts(d.alerts);
  frameInterval = d.frame_interval_s || 1;
  const s = d.stats || {};
  show("frames", s.frames);
  show("dropped", s.dropped);
  show("bad", s.bad_frames);
  show("source", s.source);
  stages(s.stages_ms || {});
  streams(s.streams);
  const st = d.status || {};
  const m = st.model;
  show("model", m ? m.name + " " + m.version + " (" + m.task + ", " + String(m.sha256).slice(0, 12) + ")" : null);
  const b = st.backend;
  show("backend", b ? b.backend + " on " + b.device + ", " + b.precision : null);
  show("degraded", (st.degraded || []).join("; ") || "no");
  const p = st.probation;
  show("probation", p ? p.model_version + " vs " + p.previous_version + ": " + p.results + "/" + p.needs + " results"
    : "none");
  const r = st.rollback;
  show("rollback", r ? r.from + " → " + r.to + " at " + r.at + ": " + r.reason : "none");
  const sh = st.shadow;
  show("shadow", sh ? sh.model_version + ": agreement " + fmt(sh.agreement, 3) + " over " + sh.frames + " frames"
    : "none");
  const t = d.telemetry;
  if (t) {
    show("transport", t.transport + (t.connected === null ? "" : t.connected ? " (connected)" : " (DISCONNECTED)"));
    const o = t.outbox;
    show("outbox", o ? o.depth + " events, " + o.bytes + " bytes, oldest " + fmt(o.oldest_age_s, 0) + " s, evicted "
      + o.evicted : "none (transport none)");
    show("sent", t.sent_events);
  }
  show("updated", new Date(d.time * 1000).toLocaleTimeString());
  $("conn").textContent = "";
}

async function poll() {
  try {
    const r = await fetch("api/status", { cache: "no-store" });
    render(await r.json());
    updates += 1;
    document.body.dataset.updates = String(updates);
  } catch (e) {
    $("conn").textContent = "the device does not answer";
  } finally {
    setTimeout(poll, 2000);
  }
}

function refreshFrame() {
  const next = new Image();
  next.onload = () => {
    const img = $("frame");
    img.src = next.src;
    frameLoads += 1;
    img.dataset.loads = String(frameLoads);
    img.dataset.width = String(next.naturalWidth);
    $("frame-note").textContent = "the latest annotated frame (" + next.naturalWidth + "×" + next.naturalHeight + ")";
    setTimeout(refreshFrame, frameInterval * 1000);
  };
  next.onerror = () => {
    $("frame-note").textContent = "no frame yet";
    setTimeout(refreshFrame, Math.max(2, frameInterval) * 1000);
  };
  next.src = "snapshot.jpg?t=" + Date.now();
}

poll();
refreshFrame();
