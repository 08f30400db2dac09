// Cockpit web page: plain JS, no dependency, works offline. Charts are inline SVG drawn here.
"use strict";

const TIERS = ["critical", "high", "moderate", "low", "unknown"];
const TIER_LABEL = {
  critical: "Critique / Critical", high: "Élevé / High", moderate: "Modéré / Moderate",
  low: "Faible / Low", unknown: "Inconnu / Unknown",
};
const TIER_COLOR = { critical: "#c62828", high: "#ef6c00", moderate: "#f9a825", low: "#2e7d32", unknown: "#78909c" };
const SOURCE_LABEL = { stream: "flux / stream", sweep: "balayage / sweep" };
const TIER_FLOOR = { critical: 80, high: 60, moderate: 35 };
const state = { tiers: new Set(), sort: "score", order: null, cursor: null, selected: null, sites: {} };
const $ = (sel) => document.querySelector(sel);
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function fmt(value, digits = 1) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}
function ago(iso) {
  if (!iso) return "—";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} j/d`;
}
function utc(iso) {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : "—";
}
// A historical site's times are shown as dates (its data is as of then); live ones as "x min ago".
function when(iso, siteId) {
  const site = state.sites[siteId];
  return site && site.mode === "historical" ? utc(iso) : ago(iso);
}
function tierBadge(tier) {
  return el("span", { class: `tier tier-${tier}` }, TIER_LABEL[tier] || tier);
}
async function getJSON(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok && res.status !== 503) throw new Error(body.detail || res.statusText);
  return { status: res.status, body };
}

// ------------------------------------------------------------------ ranking
function buildFilter() {
  const box = $("#tier-filter");
  for (const tier of TIERS) {
    const chip = el("button", { class: "chip", "data-tier": tier, type: "button" }, TIER_LABEL[tier]);
    chip.addEventListener("click", () => {
      if (state.tiers.has(tier)) state.tiers.delete(tier); else state.tiers.add(tier);
      chip.classList.toggle("on", state.tiers.has(tier));
      loadRanking(true);
    });
    box.appendChild(chip);
  }
  document.querySelectorAll("th[data-sort]").forEach((th) => {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      if (state.sort === key) state.order = currentOrder() === "desc" ? "asc" : "desc";
      else { state.sort = key; state.order = null; }
      loadRanking(true);
    });
  });
  $("#more").addEventListener("click", () => loadRanking(false));
}
function currentOrder() {
  return state.order || (state.sort === "score" || state.sort === "probability" ? "desc" : "asc");
}
async function loadRanking(reset) {
  const params = new URLSearchParams({ limit: "50", sort: state.sort, order: currentOrder() });
  if (state.tiers.size) params.set("tier", [...state.tiers].join(","));
  if (!reset && state.cursor) params.set("cursor", state.cursor);
  const tbody = $("#ranking tbody");
  try {
    const { status, body } = await getJSON(`/v1/turbines?${params}`);
    if (reset) tbody.textContent = "";
    if (status !== 200) { tbody.appendChild(errorRow(body)); return; }
    state.sites = Object.fromEntries((body.sites || []).map((s) => [s.site_id, s]));
    renderBanner(body);
    for (const row of body.items) tbody.appendChild(rankRow(row));
    state.cursor = body.next_cursor;
    $("#more").hidden = !body.next_cursor;
    $("#count").textContent = `${tbody.children.length} turbines` + (body.scorer_stale ? " · données figées / stale data" : "");
    document.querySelectorAll("th[data-sort]").forEach((th) => {
      th.classList.toggle("sorted", th.dataset.sort === state.sort);
      th.classList.toggle("asc", th.dataset.sort === state.sort && currentOrder() === "asc");
    });
  } catch (err) {
    tbody.textContent = ""; tbody.appendChild(errorRow({ detail: String(err) }));
  }
}
// Historical data is said once, above the ranking, instead of greying every row.
function renderBanner(body) {
  const banner = $("#data-banner");
  if (!body.mode || body.mode === "live") { banner.hidden = true; banner.textContent = ""; return; }
  const fr = body.mode === "empty" ? "Aucune donnée reçue" : "Données historiques";
  banner.textContent = `${fr} / ${body.message || body.mode}`;
  banner.className = `banner ${body.mode}`;
  banner.hidden = false;
}
function errorRow(body) {
  const tr = el("tr"); const td = el("td", { colspan: "8" }, `Indisponible / Unavailable: ${body.detail || ""}`);
  tr.appendChild(td); return tr;
}
function rankRow(row) {
  const tr = el("tr", { "data-turbine": row.turbine_id, class: row.stale ? "stale" : "" });
  if (row.turbine_id === state.selected) tr.classList.add("selected");
  tr.appendChild(el("td", {}, row.turbine_id));
  tr.appendChild(el("td", {}, row.site_id));
  tr.appendChild(el("td", { class: "num" }, fmt(row.score)));
  const tierCell = el("td"); tierCell.appendChild(tierBadge(row.tier)); tr.appendChild(tierCell);
  tr.appendChild(el("td", { class: "num" }, row.probability === null ? "—" : `${Math.round(row.probability * 100)} %`));
  const ttf = row.ttf_days === null ? "—" : `${fmt(row.ttf_days)} (${fmt(row.ttf_low_days, 0)}–${fmt(row.ttf_high_days, 0)})`;
  tr.appendChild(el("td", { class: "num" }, ttf));
  tr.appendChild(el("td", { class: "reason" }, row.reasons.length ? row.reasons[0].text || row.reasons[0].indicator : "—"));
  tr.appendChild(el("td", {}, when(row.last_event_time, row.site_id) + (row.stale ? " ⚠" : "")));
  tr.addEventListener("click", () => openTurbine(row.turbine_id));
  return tr;
}

// ------------------------------------------------------------------ detail
async function openTurbine(id) {
  state.selected = id;
  document.querySelectorAll("#ranking tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.turbine === id));
  $("#detail-panel").hidden = false;
  $("#detail-title").textContent = `Turbine ${id}`;
  const [detail, history] = await Promise.all([
    getJSON(`/v1/turbines/${encodeURIComponent(id)}`),
    getJSON(`/v1/turbines/${encodeURIComponent(id)}/history?bucket=6h`),
  ]);
  renderDetail(detail.body);
  const h = history.body;
  const span = h.start ? { t0: Date.parse(h.start), t1: Date.parse(h.end), step: h.bucket_seconds * 1000 } : null;
  drawScoreChart($("#history-chart"), h.scores || [], span);
  drawTelemetryChart($("#telemetry-chart"), h.telemetry || [], span);
}
function kv(label, value) {
  const d = el("div"); d.appendChild(el("b", {}, label));
  if (value instanceof Node) d.appendChild(value); else d.appendChild(document.createTextNode(value));
  return d;
}
function renderDetail(d) {
  const box = $("#detail-summary"); box.textContent = "";
  const p = d.assessment; // the one current assessment: no second score beside it
  box.appendChild(kv("Niveau / Tier", tierBadge(p ? p.tier : "unknown")));
  box.appendChild(kv("Score", el("span", { class: "assessment-score" }, p ? fmt(p.score) : "—")));
  box.appendChild(kv("Évaluation / Assessment", p
    ? `${SOURCE_LABEL[p.source] || p.source} · ${utc(p.as_of)}` : "jamais / never scored"));
  box.appendChild(kv("Probabilité / Probability", p && p.probability !== null ? `${Math.round(p.probability * 100)} %` : "—"));
  box.appendChild(kv("TTF (j/d)", p && p.ttf_days !== null ? `${fmt(p.ttf_days)} [${fmt(p.ttf_low_days, 0)}–${fmt(p.ttf_high_days, 0)}]` : "—"));
  box.appendChild(kv("Site", d.site_id));
  const lastEvent = d.site_mode === "historical" ? utc(d.last_event_time) : ago(d.last_event_time);
  box.appendChild(kv("Dernier évt / Last event", lastEvent + (d.stale ? " ⚠ stale" : "")));
  box.appendChild(kv("Modèle / Model", p ? p.model_version : "—"));
  const run = d.last_sweep_run; // a reference (which run, how it ended), never a score
  box.appendChild(kv("Balayage / Sweep run", run ? `${run.status} · ${utc(run.finished_at || run.requested_at)}` : "—"));
  const ul = $("#reasons"); ul.textContent = "";
  for (const r of (p ? p.reasons : [])) {
    const range = Array.isArray(r.normal_range) ? ` (normal ${r.normal_range.join("–")})` : "";
    ul.appendChild(el("li", {}, `${r.text || r.indicator}: ${r.value ?? "—"}${range}`));
  }
  if (!ul.children.length) ul.appendChild(el("li", {}, "—"));
  const tbody = $("#measurements tbody"); tbody.textContent = "";
  const values = d.measurements ? d.measurements.values : {};
  for (const [name, value] of Object.entries(values)) {
    const tr = el("tr"); tr.appendChild(el("td", {}, name));
    tr.appendChild(el("td", { class: "num" }, value === null ? "—" : fmt(value, 2))); tbody.appendChild(tr);
  }
}

// ------------------------------------------------------------------ charts
function frame(container, height, top = 8) {
  container.textContent = "";
  const width = Math.max(320, container.clientWidth || 600);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  container.appendChild(svg);
  return { svg, width, height, pad: { l: 34, r: 10, t: top, b: 20 } };
}
function timeAxis(f, t0, t1) {
  const { svg, width, height, pad } = f;
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const x = pad.l + ((width - pad.l - pad.r) * i) / 4;
    const d = new Date(t);
    svg.appendChild(svgEl("text", { x, y: height - 5, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" },
      `${String(d.getUTCDate()).padStart(2, "0")}/${String(d.getUTCMonth() + 1).padStart(2, "0")}`));
  }
}
// Consecutive points further apart than one bucket have no data between them: the line stops there
// (a new "M" segment) and the empty span is shaded, so no line is ever drawn across days without data.
function linePath(points, X, Y, key, step) {
  let d = ""; let prev = null;
  for (const p of points) {
    const t = Date.parse(p.bucket), v = p[key];
    if (v === null || v === undefined) { prev = null; continue; }
    const pen = prev === null || (step && t - prev > step) ? "M" : "L";
    d += `${pen}${X(t).toFixed(1)},${Y(v).toFixed(1)}`; prev = t;
  }
  return d;
}
function gaps(points, step) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const a = Date.parse(points[i - 1].bucket), b = Date.parse(points[i].bucket);
    if (step && b - a > step) out.push([a + step, b]);
  }
  return out;
}
function drawGaps(f, spans, X) {
  for (const [a, b] of spans) {
    f.svg.appendChild(svgEl("rect", { class: "gap", x: X(a), y: f.pad.t, width: Math.max(1, X(b) - X(a)),
      height: f.height - f.pad.t - f.pad.b, fill: "#b0bec5", "fill-opacity": "0.25" },));
  }
}
function domain(points, span) {
  if (span && span.t1 > span.t0) return [span.t0, span.t1, span.step];
  const t0 = Date.parse(points[0].bucket);
  return [t0, Date.parse(points[points.length - 1].bucket) || t0 + 1, null];
}
function drawScoreChart(container, points, span) {
  const f = frame(container, 220); const { svg, width, height, pad } = f;
  if (!points.length) { svg.appendChild(svgEl("text", { x: 20, y: 40 }, "Pas de données / No data")); return; }
  const [t0, t1, step] = domain(points, span);
  const X = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - v / 100) * (height - pad.t - pad.b);
  const bands = [["critical", 80, 100], ["high", 60, 80], ["moderate", 35, 60], ["low", 0, 35]];
  for (const [tier, lo, hi] of bands) {
    svg.appendChild(svgEl("rect", { x: pad.l, y: Y(hi), width: width - pad.l - pad.r, height: Y(lo) - Y(hi),
      fill: TIER_COLOR[tier], "fill-opacity": "0.08" }));
    svg.appendChild(svgEl("text", { x: pad.l - 4, y: Y(lo) + 3, "text-anchor": "end" }, String(lo)));
  }
  drawGaps(f, gaps(points, step), X);
  const maxPath = linePath(points, X, Y, "max_score", step);
  svg.appendChild(svgEl("path", { d: maxPath, fill: "none", stroke: "#90a4ae", "stroke-width": "1", "stroke-dasharray": "3 3" }));
  const path = linePath(points, X, Y, "avg_score", step);
  svg.appendChild(svgEl("path", { d: path, fill: "none", stroke: "#12324a", "stroke-width": "1.8", class: "score-line" }));
  for (const p of points) {
    svg.appendChild(svgEl("circle", { cx: X(Date.parse(p.bucket)), cy: Y(p.last_score), r: 2.4, fill: TIER_COLOR[p.tier] || "#777" }));
  }
  timeAxis(f, t0, t1);
}
function drawTelemetryChart(container, points, span) {
  const f = frame(container, 150); const { svg, width, height, pad } = f;
  if (!points.length) { svg.appendChild(svgEl("text", { x: 20, y: 40 }, "Pas d'agrégats / No aggregates")); return; }
  const series = [["gearbox_bearing_temp_c", "#ef6c00", "Roulement multiplicateur °C / Gearbox bearing"],
    ["main_bearing_temp_c", "#6a1b9a", "Palier principal °C / Main bearing"], ["vibration_mm_s", "#1565c0", "Vibration mm/s ×10"]];
  const [t0, t1, step] = domain(points, span);
  const val = (p, key) => (p[key] === null ? null : key === "vibration_mm_s" ? p[key] * 10 : p[key]);
  let lo = Infinity, hi = -Infinity;
  for (const p of points) for (const [k] of series) { const v = val(p, k); if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
  if (!isFinite(lo)) { lo = 0; hi = 1; } if (hi === lo) hi = lo + 1;
  const X = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (height - pad.t - pad.b);
  drawGaps(f, gaps(points, step), X);
  for (const [key, color] of series) {
    const d = linePath(points.map((p) => ({ bucket: p.bucket, v: val(p, key) })), X, Y, "v", step);
    svg.appendChild(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": "1.4" }));
  }
  svg.appendChild(svgEl("text", { x: pad.l - 4, y: Y(hi) + 8, "text-anchor": "end" }, hi.toFixed(0)));
  svg.appendChild(svgEl("text", { x: pad.l - 4, y: Y(lo), "text-anchor": "end" }, lo.toFixed(0)));
  timeAxis(f, t0, t1);
  const legend = el("div", { class: "legend" });
  for (const [, color, label] of series) { const s = el("span"); const i = el("i"); i.style.background = color; s.appendChild(i); s.appendChild(document.createTextNode(label)); legend.appendChild(s); }
  container.appendChild(legend);
}
function drawDailyChart(container, days) {
  const f = frame(container, 150, 16); const { svg, width, height, pad } = f;
  if (!days.length) { svg.appendChild(svgEl("text", { x: 20, y: 40 }, "Pas de données / No data")); return; }
  const max = Math.max(1, ...days.map((d) => (d.counts.critical || 0) + (d.counts.high || 0)));
  const bw = (width - pad.l - pad.r) / days.length;
  const H = height - pad.t - pad.b;
  days.forEach((d, i) => {
    const c = d.counts.critical || 0, h = d.counts.high || 0;
    const x = pad.l + i * bw + bw * 0.15, w = bw * 0.7;
    const hc = (c / max) * H, hh = (h / max) * H;
    svg.appendChild(svgEl("rect", { x, y: pad.t + H - hc, width: w, height: hc, fill: TIER_COLOR.critical }));
    svg.appendChild(svgEl("rect", { x, y: pad.t + H - hc - hh, width: w, height: hh, fill: TIER_COLOR.high }));
    const day = new Date(Date.parse(d.day));
    svg.appendChild(svgEl("text", { x: x + w / 2, y: height - 5, "text-anchor": "middle" },
      `${String(day.getUTCDate()).padStart(2, "0")}/${String(day.getUTCMonth() + 1).padStart(2, "0")}`));
    svg.appendChild(svgEl("text", { x: x + w / 2, y: pad.t + H - hc - hh - 3, "text-anchor": "middle" }, String(c + h)));
  });
}

// ------------------------------------------------------------------ supervision
async function loadSupervision() {
  try {
    const [ready, sup] = await Promise.all([getJSON("/readyz"), getJSON("/v1/supervision?days=7")]);
    const pill = $("#status-pill");
    const scorer = (ready.body.checks || {}).scorer;
    pill.textContent = ready.body.ready ? "Opérationnel / Ready"
      : scorer && !scorer.ok ? `Scoreur / Scorer: ${scorer.detail}` : "Dégradé / Degraded";
    pill.className = `pill ${ready.body.ready ? "ok" : "bad"}`;
    const checks = $("#checks"); checks.textContent = "";
    for (const [name, c] of Object.entries(ready.body.checks || {})) {
      const box = el("div", { class: `check ${c.ok ? "ok" : "bad"}`, title: c.detail });
      box.appendChild(el("strong", {}, `${name}: ${c.ok ? "OK" : "KO"}`)); box.appendChild(el("div", {}, c.detail));
      checks.appendChild(box);
    }
    const s = sup.body; const box = $("#supervision"); box.textContent = "";
    if (sup.status !== 200) { box.textContent = `Indisponible / Unavailable: ${s.detail || ""}`; return; }
    const problems = $("#problems"); problems.textContent = "";
    for (const text of s.problems || []) problems.appendChild(el("li", {}, text));
    problems.hidden = !problems.children.length;
    box.appendChild(kv("Événements/min / Events/min", fmt(s.events_per_minute, 0)));
    box.appendChild(kv("Retard consommateur / Consumer lag", s.max_lag_seconds === null ? "—" : `${fmt(s.max_lag_seconds)} s`));
    box.appendChild(kv("Scoreurs actifs / Active scorers", String(s.heartbeats.filter((h) => h.age_seconds < 300).length)));
    box.appendChild(kv("Lots (1 h) / Batches (1 h)", `${s.batches_last_hour} (${s.errors_last_hour} err.)`));
    const sw = s.last_sweep;
    box.appendChild(kv("Dernier balayage / Last sweep", sw ? `${sw.status} · ${ago(sw.finished_at || sw.requested_at)} · ${sw.turbines_scored} turbines` : "—"));
    drawDailyChart($("#daily-chart"), s.high_critical_daily);
  } catch (err) {
    $("#status-pill").textContent = "API injoignable / unreachable"; $("#status-pill").className = "pill bad";
  }
}

buildFilter();
$("#close-detail").addEventListener("click", () => { $("#detail-panel").hidden = true; state.selected = null; });
loadRanking(true);
loadSupervision();
setInterval(loadSupervision, 30000);
