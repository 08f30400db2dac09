// Cockpit web page: plain JS, no dependency, works offline. Charts are inline SVG drawn here.
// Labels come from one dictionary per language (/static/i18n/<lang>.json); numbers and dates are formatted
// with Intl for that language. Every view has a URL (?view=, ?tier=, ?sort=, ?order=, ?turbine=).
"use strict";

const TIERS = ["critical", "high", "moderate", "low", "unknown"];
const SORTS = ["score", "probability", "ttf", "turbine_id"];
const LANGS = ["fr", "en"];
const DEFAULT_LANG = "fr"; // this customer's language
const LOCALE = { fr: "fr-FR", en: "en-GB" };
const LANG_KEY = "cockpit.lang";
const TIER_COLOR = { critical: "#c62828", high: "#b34700", moderate: "#f9a825", low: "#2e7d32", unknown: "#546e7a" };
const REFRESH_MS = 15000; // ranking, planning, supervision and the open detail's summary
const PAGE = 50;
const SVG_NS = "http://www.w3.org/2000/svg";
const HOUR = 3600e3, DAY = 86400e3;

const state = {
  lang: DEFAULT_LANG, dict: {}, dicts: {},
  policy: null, policyError: null,
  view: "ranking", tiers: new Set(), sort: "score", order: null, turbine: null,
  rows: [], cursor: null, ranking: null, rankSeq: 0,
  planning: null, planningError: null, lastInterventions: {}, // turbine id -> its latest intervention
  supervision: null, ready: null,
  detail: null, detailSeq: 0,
  lastOk: null, failure: null, // failure: {kind: "api_down" | "db_down" | "http", detail, status}
};
const $ = (sel) => document.querySelector(sel);

// ------------------------------------------------------------------ language and formats
function t(key, vars = {}) {
  const text = state.dict[key];
  if (text === undefined) return key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] === undefined || vars[name] === null ? "" : String(vars[name])));
}
async function loadDict(lang) {
  if (!state.dicts[lang]) {
    const res = await fetch(`/static/i18n/${lang}.json`);
    state.dicts[lang] = await res.json();
  }
  return state.dicts[lang];
}
function locale() { return LOCALE[state.lang] || state.lang; }
function num(value, digits = 1) {
  if (value === null || value === undefined || !isFinite(value)) return "—";
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}
function pct(p) {
  return p === null || p === undefined ? "—" : new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(p);
}
function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(typeof iso === "number" ? iso : Date.parse(iso));
  return `${new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }).format(d)} UTC`;
}
function dayMonth(ms, withYear = false) {
  const opts = { day: "numeric", month: "short", timeZone: "UTC" };
  if (withYear) opts.year = "numeric";
  return new Intl.DateTimeFormat(locale(), opts).format(new Date(ms));
}
function hourMinute(ms) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", timeZone: "UTC" }).format(new Date(ms));
}
function ago(isoOrMs) {
  if (isoOrMs === null || isoOrMs === undefined) return "—";
  const ms = typeof isoOrMs === "number" ? isoOrMs : Date.parse(isoOrMs);
  const s = Math.max(0, (Date.now() - ms) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: "always", style: "short" });
  if (s < 90) return rtf.format(-Math.round(s), "second");
  if (s < 5400) return rtf.format(-Math.round(s / 60), "minute");
  if (s < 172800) return rtf.format(-Math.round(s / 3600), "hour");
  return rtf.format(-Math.round(s / 86400), "day");
}
// A historical site's times are dates (its data is as of then); live ones "x min ago".
function when(iso, siteId) {
  const site = (state.ranking && state.ranking.sitesById[siteId]) || null;
  return site && site.mode === "historical" ? dateTime(iso) : ago(iso);
}
function probabilityDays() { return state.policy ? state.policy.horizons.probability_days : 7; }
function planningDays() { return state.policy ? state.policy.horizons.planning_days : 7; }

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function tierBadge(tier) {
  return el("span", { class: `tier tier-${tier}` }, t(`tier.${tier}`));
}
function applyStatic() {
  document.documentElement.lang = state.lang;
  document.title = t("doc.title");
  const vars = { days: num(probabilityDays(), 0) };
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n, vars); });
  document.querySelectorAll("[data-i18n-aria]").forEach((node) => node.setAttribute("aria-label", t(node.dataset.i18nAria, vars)));
  document.querySelectorAll("#lang-switch button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang)));
}
async function setLang(lang, remember) {
  state.lang = LANGS.includes(lang) ? lang : DEFAULT_LANG;
  state.dict = await loadDict(state.lang);
  if (remember) { try { localStorage.setItem(LANG_KEY, state.lang); } catch (e) { /* private mode: not remembered */ } }
  applyStatic();
  renderAll();
}
function initialLang() {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  if (LANGS.includes(fromUrl)) return { lang: fromUrl, remember: true };
  let stored = null;
  try { stored = localStorage.getItem(LANG_KEY); } catch (e) { stored = null; }
  return { lang: LANGS.includes(stored) ? stored : DEFAULT_LANG, remember: false };
}

// ------------------------------------------------------------------ HTTP
class ApiDown extends Error {}
// {status, body}; throws ApiDown when the API cannot be reached at all.
async function getJSON(url) {
  let res;
  try {
    res = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (err) {
    throw new ApiDown(String(err.message || err));
  }
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}
function reasonOf(body) {
  if (!body) return "";
  const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || "");
  return body.reason ? `${detail}: ${body.reason}` : detail;
}
// A failed data request says what is wrong and what to do, above everything else.
function noteFailure(err, res) {
  if (err instanceof ApiDown) state.failure = { kind: "api_down", detail: err.message };
  else if (res && res.status === 503) state.failure = { kind: "db_down", detail: reasonOf(res.body) };
  else if (res) state.failure = { kind: "http", status: res.status, detail: reasonOf(res.body) };
  else state.failure = { kind: "api_down", detail: String(err) };
  renderAlert();
}
function noteSuccess() {
  state.lastOk = Date.now();
  if (state.failure) { state.failure = null; renderAlert(); }
  renderUpdated();
}
function renderAlert() {
  const box = $("#alert");
  const f = state.failure;
  document.body.classList.toggle("outdated", Boolean(f));
  if (!f) { box.hidden = true; box.textContent = ""; return; }
  const seconds = REFRESH_MS / 1000;
  box.textContent = f.kind === "api_down" ? t("error.api_down", { detail: f.detail, seconds })
    : f.kind === "db_down" ? t("error.db_down", { detail: f.detail, seconds })
      : t("error.http", { status: f.status, detail: f.detail });
  box.hidden = false;
}
function renderUpdated() {
  const node = $("#updated");
  if (!state.lastOk) { node.textContent = t("updated.never"); return; }
  node.textContent = t(state.failure ? "updated.failing" : "updated.ago", { ago: ago(state.lastOk) });
}

// ------------------------------------------------------------------ URL state
function snapshot() {
  return { view: state.view, tiers: [...state.tiers].sort().join(","), sort: state.sort, order: state.order, turbine: state.turbine };
}
function readUrl() {
  const q = new URLSearchParams(location.search);
  state.view = q.get("view") === "planning" ? "planning" : "ranking";
  state.tiers = new Set((q.get("tier") || "").split(",").filter((x) => TIERS.includes(x)));
  state.sort = SORTS.includes(q.get("sort")) ? q.get("sort") : "score";
  state.order = ["asc", "desc"].includes(q.get("order")) ? q.get("order") : null;
  const id = (q.get("turbine") || "").trim();
  state.turbine = id && id.length <= 64 ? id : null;
}
function urlFor(over = {}) {
  const s = { ...snapshot(), ...over };
  const q = new URLSearchParams();
  if (s.view !== "ranking") q.set("view", s.view);
  if (s.tiers) q.set("tier", s.tiers);
  if (s.sort !== "score") q.set("sort", s.sort);
  if (s.order) q.set("order", s.order);
  if (s.turbine) q.set("turbine", s.turbine);
  const text = q.toString();
  return text ? `?${text}` : location.pathname;
}
// A user action: change the state, give it a URL (back/forward walk through them), do what changed.
function go(changes) {
  const before = snapshot();
  Object.assign(state, changes);
  const url = urlFor();
  if (url !== location.search && !(url === location.pathname && !location.search)) history.pushState(null, "", url);
  sync(before);
}
function sync(before) {
  const now = snapshot();
  const viewChanged = !before || before.view !== now.view;
  const filterChanged = !before || before.tiers !== now.tiers || before.sort !== now.sort || before.order !== now.order;
  if (filterChanged) { renderFilter(); state.ranking = null; state.rows = []; state.cursor = null; }
  if (viewChanged) { showView(); if (state.view === "planning") loadPlanning(); }
  if (state.view === "ranking" && (filterChanged || viewChanged)) loadRanking(state.ranking ? "refresh" : "reset");
  if (!before || before.turbine !== now.turbine) {
    if (now.turbine) openDetail(now.turbine, { focus: Boolean(before) });
    else closeDetail(before ? before.turbine : null);
  }
}
function showView() {
  $("#ranking-panel").hidden = state.view !== "ranking";
  $("#planning-panel").hidden = state.view !== "planning";
  document.querySelectorAll("#views a").forEach((a) => {
    if (a.dataset.view === state.view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
}

// ------------------------------------------------------------------ ranking
function currentOrder() {
  return state.order || (state.sort === "score" || state.sort === "probability" ? "desc" : "asc");
}
function buildControls() {
  const box = $("#tier-filter");
  const all = el("button", { type: "button", class: "chip chip-all", "data-i18n": "filter.clear" }, "");
  all.addEventListener("click", () => go({ tiers: new Set() }));
  box.appendChild(all);
  for (const tier of TIERS) {
    const chip = el("button", { class: "chip", "data-tier": tier, type: "button", "aria-pressed": "false" });
    chip.addEventListener("click", () => {
      const tiers = new Set(state.tiers);
      if (tiers.has(tier)) tiers.delete(tier); else tiers.add(tier);
      go({ tiers });
    });
    box.appendChild(chip);
  }
  document.querySelectorAll("#ranking th button[data-sort]").forEach((button) => {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      if (state.sort === key) go({ order: currentOrder() === "desc" ? "asc" : "desc" });
      else go({ sort: key, order: null });
    });
  });
  $("#more").addEventListener("click", () => loadRanking("more"));
  document.querySelectorAll("#views a").forEach((a) => a.addEventListener("click", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    go({ view: a.dataset.view });
  }));
  document.querySelectorAll("#lang-switch button").forEach((b) => b.addEventListener("click", () => setLang(b.dataset.lang, true)));
  $("#close-detail").addEventListener("click", () => go({ turbine: null }));
  $("#planning-print").addEventListener("click", () => window.print());
  for (const tbody of [$("#ranking tbody"), $("#planning tbody")]) {
    tbody.addEventListener("keydown", rowKeys);
    tbody.addEventListener("click", (ev) => {
      const link = ev.target.closest("a.turbine-link");
      const tr = ev.target.closest("tr[data-turbine]");
      if (!tr || (link && (ev.ctrlKey || ev.metaKey || ev.shiftKey))) return; // new tab: the link's own URL
      ev.preventDefault();
      go({ turbine: tr.dataset.turbine });
    });
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && state.turbine) { ev.preventDefault(); go({ turbine: null }); }
  });
}
// Rows: Enter (the link) or Space opens the detail; arrow keys move between rows.
function rowKeys(ev) {
  const link = ev.target.closest("a.turbine-link");
  if (!link) return;
  const tr = link.closest("tr");
  if (ev.key === " " || ev.key === "Spacebar") { ev.preventDefault(); go({ turbine: tr.dataset.turbine }); return; }
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    const next = ev.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
    const target = next && next.querySelector("a.turbine-link");
    if (target) { ev.preventDefault(); target.focus(); }
  }
}
function renderFilter() {
  document.querySelectorAll("#tier-filter .chip[data-tier]").forEach((chip) => {
    const on = state.tiers.has(chip.dataset.tier);
    chip.classList.toggle("on", on);
    chip.setAttribute("aria-pressed", String(on));
    chip.textContent = t(`tier.${chip.dataset.tier}`);
  });
  const all = $("#tier-filter .chip-all");
  all.setAttribute("aria-pressed", String(state.tiers.size === 0));
  document.querySelectorAll("#ranking th[data-sort]").forEach((th) => {
    const active = th.dataset.sort === state.sort;
    const order = currentOrder();
    if (active) th.setAttribute("aria-sort", order === "asc" ? "ascending" : "descending"); else th.removeAttribute("aria-sort");
    th.classList.toggle("sorted", active);
    th.classList.toggle("asc", active && order === "asc");
  });
}
// mode: "reset" (new filter/sort), "more" (next page), "refresh" (poll: same rows, same place)
async function loadRanking(mode) {
  const seq = ++state.rankSeq;
  const limit = mode === "refresh" ? Math.min(500, Math.max(PAGE, state.rows.length)) : PAGE;
  const params = new URLSearchParams({ limit: String(limit), sort: state.sort, order: currentOrder() });
  if (state.tiers.size) params.set("tier", [...state.tiers].join(","));
  if (mode === "more" && state.cursor) params.set("cursor", state.cursor);
  let res;
  try {
    res = await getJSON(`/v1/turbines?${params}`);
  } catch (err) {
    if (seq === state.rankSeq) noteFailure(err);
    return;
  }
  if (seq !== state.rankSeq) return; // a newer request (filter, sort) answers instead
  if (res.status !== 200) { noteFailure(null, res); if (mode === "reset") { state.rows = []; renderRanking(); } return; }
  const body = res.body;
  state.ranking = { ...body, sitesById: Object.fromEntries((body.sites || []).map((s) => [s.site_id, s])) };
  state.rows = mode === "more" ? state.rows.concat(body.items) : body.items;
  state.cursor = body.next_cursor;
  noteSuccess();
  renderRanking();
}
function rankRow(row) {
  const tr = el("tr", { "data-turbine": row.turbine_id, class: row.stale ? "stale" : null });
  if (row.turbine_id === state.turbine) tr.classList.add("selected");
  const idCell = el("td");
  idCell.appendChild(el("a", { class: "turbine-link", href: urlFor({ turbine: row.turbine_id }), "aria-label": t("ranking.open", { id: row.turbine_id }) }, row.turbine_id));
  tr.appendChild(idCell);
  tr.appendChild(el("td", {}, row.site_id));
  tr.appendChild(el("td", { class: "num score" }, num(row.score)));
  const tierCell = el("td"); tierCell.appendChild(tierBadge(row.tier)); tr.appendChild(tierCell);
  tr.appendChild(el("td", { class: "num" }, pct(row.probability)));
  tr.appendChild(el("td", { class: "num" }, ttfText(row)));
  tr.appendChild(el("td", { class: "reason" }, row.reasons.length ? row.reasons[0].text || row.reasons[0].indicator : "—"));
  const last = el("td", { class: "event" }, when(row.last_event_time, row.site_id));
  if (row.stale) last.appendChild(el("span", { class: "late", title: t("ranking.stale_row") }, ` ⚠ ${t("ranking.stale_row")}`));
  tr.appendChild(last);
  return tr;
}
function ttfText(row) {
  if (row.ttf_days === null || row.ttf_days === undefined) return "—";
  return `${num(row.ttf_days)} (${num(row.ttf_low_days, 0)}–${num(row.ttf_high_days, 0)})`;
}
// Re-rendering keeps the user's place: the focused row, the scroll positions, the open detail.
function replaceRows(tbody, rows) {
  const active = document.activeElement;
  const focusedRow = active && tbody.contains(active) ? active.closest("tr") : null;
  const focusId = focusedRow ? focusedRow.dataset.turbine : null;
  const wrap = tbody.closest(".table-wrap");
  const x = window.scrollX, y = window.scrollY, sx = wrap.scrollLeft;
  tbody.replaceChildren(...rows);
  if (focusId) {
    const again = [...tbody.querySelectorAll("tr[data-turbine]")].find((tr) => tr.dataset.turbine === focusId);
    const link = again && again.querySelector("a.turbine-link");
    if (link) link.focus({ preventScroll: true });
    else tbody.closest("section").querySelector("h2").focus({ preventScroll: true }); // its row went away
  }
  wrap.scrollLeft = sx;
  window.scrollTo(x, y);
}
function renderRanking() {
  renderFilter();
  const body = state.ranking;
  replaceRows($("#ranking tbody"), state.rows.map(rankRow));
  $("#more").hidden = !state.cursor;
  $("#count").textContent = body ? t("ranking.count", { n: num(state.rows.length, 0) }) : "";
  const empty = $("#ranking-empty");
  if (body && !state.rows.length) {
    empty.textContent = body.mode === "empty" || !state.tiers.size ? t("empty.nodata") : t("empty.filter");
    empty.hidden = false;
  } else { empty.hidden = true; empty.textContent = ""; }
  renderDataBanner($("#data-banner"), body);
  renderScorerBanner();
}
// Historical data is said once, above the table, instead of greying every row.
function renderDataBanner(banner, body) {
  const text = body ? dataClockText(body) : null;
  banner.hidden = !text;
  banner.textContent = text || "";
  banner.className = `banner ${body ? body.mode : ""}`;
}
function dataClockText(body) {
  const sites = (body.sites || []).filter((s) => s.data_as_of);
  if (body.mode === "historical") {
    const times = sites.map((s) => Date.parse(s.data_as_of));
    const lo = Math.min(...times), hi = Math.max(...times);
    return lo === hi || !times.length ? t("banner.historical", { when: dateTime(body.data_as_of) })
      : t("banner.historical_range", { from: dateTime(lo), to: dateTime(hi) });
  }
  if (body.mode === "mixed") {
    const list = sites.filter((s) => s.mode === "historical").map((s) => t("banner.site_as_of", { site: s.site_id, when: dateTime(s.data_as_of) }));
    return t("banner.mixed", { sites: list.join(", ") });
  }
  return null;
}
function renderScorerBanner() {
  const banner = $("#scorer-banner");
  const sup = state.supervision;
  const stale = sup ? sup.scorer_stale || !sup.scorer_ready : state.ranking && state.ranking.scorer_stale;
  const empty = state.ranking && state.ranking.mode === "empty";
  if (!stale || empty) { banner.hidden = true; banner.textContent = ""; return; }
  banner.textContent = t("banner.scorer", { detail: sup ? sup.scorer_status : "?" });
  banner.hidden = false;
}

// ------------------------------------------------------------------ planning
async function loadPlanning() {
  let res, iv;
  try {
    [res, iv] = await Promise.all([getJSON("/v1/planning"), getJSON("/v1/interventions?latest=true").catch(() => null)]);
  } catch (err) { noteFailure(err); return; }
  if (res.status !== 200) { noteFailure(null, res); return; }
  if (iv && iv.status === 200) state.lastInterventions = Object.fromEntries(iv.body.items.map((i) => [i.turbine_id, i]));
  state.planning = res.body;
  noteSuccess();
  renderPlanning();
}
function planningRow(item) {
  const tr = el("tr", { "data-turbine": item.turbine_id, class: item.stale ? "stale" : null });
  tr.appendChild(el("td", { class: "num" }, num(item.rank, 0)));
  const idCell = el("td");
  idCell.appendChild(el("a", { class: "turbine-link", href: urlFor({ turbine: item.turbine_id }), "aria-label": t("ranking.open", { id: item.turbine_id }) }, item.turbine_id));
  tr.appendChild(idCell);
  tr.appendChild(el("td", {}, item.site_id));
  const tierCell = el("td"); tierCell.appendChild(tierBadge(item.tier)); tr.appendChild(tierCell);
  tr.appendChild(el("td", { class: "num" }, num(item.score)));
  tr.appendChild(el("td", { class: "num" }, ttfText(item)));
  tr.appendChild(el("td", { class: "num" }, pct(item.probability)));
  tr.appendChild(el("td", { class: "reason" }, item.reasons.length ? item.reasons[0].text || item.reasons[0].indicator : "—"));
  const last = state.lastInterventions[item.turbine_id]; // recorded by maintenance (cockpit intervention add)
  tr.appendChild(el("td", { class: "intervention" }, last ? interventionText(last, true) : "—"));
  const energy = item.energy_at_stake_kwh;
  tr.appendChild(el("td", { class: "num energy" }, energy === null ? "—" : num(energy / 1000, 1)));
  return tr;
}
function renderPlanning() {
  const p = state.planning;
  $("#planning-intro").textContent = t("planning.intro", { days: num(planningDays(), 0) });
  if (!p) return;
  replaceRows($("#planning tbody"), p.items.map(planningRow));
  const empty = $("#planning-empty");
  empty.hidden = p.items.length > 0;
  empty.textContent = p.items.length ? "" : p.mode === "empty" ? t("empty.nodata") : t("empty.planning", { days: num(p.horizon_days, 0) });
  const without = p.turbines_without_estimate ? t("planning.without", { n: num(p.turbines_without_estimate, 0) }) : "";
  const none = p.items.length > 0 && p.turbines_without_estimate === p.items.length;
  $("#planning-summary").textContent = none ? t("planning.summary_none", { n: num(p.items.length, 0) })
    : t("planning.summary", { n: num(p.items.length, 0), energy: num(p.energy_at_stake_kwh / 1000, 1) }) + without;
  $("#planning-assumptions").textContent = t("planning.assumptions", { pdays: num(p.assumptions.probability_days, 0), hours: num(p.assumptions.downtime_hours, 0) });
  $("#planning-asof").textContent = t("planning.as_of", { when: dateTime(p.generated_at) });
  renderDataBanner($("#planning-banner"), p);
}

// ------------------------------------------------------------------ detail
async function openDetail(id, { focus }) {
  const seq = ++state.detailSeq;
  state.detail = { id, loading: true };
  document.body.classList.add("with-detail");
  $("#detail-panel").hidden = false;
  markSelected();
  renderDetail();
  if (focus) $("#detail-title").focus();
  let detail, hist, iv;
  try {
    [detail, hist, iv] = await Promise.all([
      getJSON(`/v1/turbines/${encodeURIComponent(id)}`),
      getJSON(`/v1/turbines/${encodeURIComponent(id)}/history?bucket=6h`),
      getJSON(`/v1/turbines/${encodeURIComponent(id)}/interventions`).catch(() => null),
    ]);
  } catch (err) {
    if (seq !== state.detailSeq) return;
    state.detail = { id, error: t("error.turbine_down", { id, detail: err.message }) };
    renderDetail();
    return;
  }
  if (seq !== state.detailSeq) return;
  if (detail.status === 503) state.detail = { id, error: t("error.turbine_db", { id, detail: reasonOf(detail.body) }), retry: true };
  else if (detail.status === 404 || detail.status === 422) state.detail = { id, error: t("error.turbine_404", { id }) };
  else if (detail.status !== 200) state.detail = { id, error: t("error.http", { status: detail.status, detail: reasonOf(detail.body) }), retry: true };
  else state.detail = { id, body: detail.body, history: hist.status === 200 ? hist.body : null, interventions: iv && iv.status === 200 ? iv.body.items : [] };
  renderDetail();
}
async function refreshDetail() {
  const d = state.detail;
  if (!d || !d.body) return;
  const seq = state.detailSeq;
  try {
    const res = await getJSON(`/v1/turbines/${encodeURIComponent(d.id)}`);
    if (seq === state.detailSeq && res.status === 200 && state.detail && state.detail.id === d.id) {
      state.detail.body = res.body;
      renderSummary();
    }
  } catch (err) { /* the ranking's own poll reports an unreachable API */ }
}
function closeDetail(previousId) {
  state.detailSeq++;
  state.detail = null;
  $("#detail-panel").hidden = true;
  document.body.classList.remove("with-detail");
  markSelected();
  if (previousId) { // back where the user was: the row that opened it
    const tr = [...document.querySelectorAll("tbody tr[data-turbine]")].find((r) => r.dataset.turbine === previousId && r.offsetParent);
    const link = tr && tr.querySelector("a.turbine-link");
    if (link) link.focus(); else if (document.activeElement === document.body || $("#detail-panel").contains(document.activeElement)) $("#content").focus();
  }
}
function markSelected() {
  document.querySelectorAll("tbody tr[data-turbine]").forEach((tr) => tr.classList.toggle("selected", tr.dataset.turbine === state.turbine));
}
function kv(label, value) {
  const d = el("div"); d.appendChild(el("b", {}, label));
  if (value instanceof Node) d.appendChild(value); else d.appendChild(document.createTextNode(value));
  return d;
}
function renderDetail() {
  const d = state.detail;
  if (!d) return;
  $("#detail-title").textContent = t("detail.title", { id: d.id });
  const error = $("#detail-error");
  error.textContent = "";
  error.hidden = !d.error;
  $("#detail-body").hidden = Boolean(d.error) || Boolean(d.loading);
  const status = $("#detail-status");
  status.hidden = !d.loading;
  status.textContent = d.loading ? t("detail.loading", { id: d.id }) : "";
  if (d.loading) { // nothing of the previous turbine stays on screen
    for (const sel of ["#detail-summary", "#history-chart", "#history-legend", "#telemetry-chart", "#reasons", "#measurements tbody"]) $(sel).textContent = "";
    return;
  }
  if (d.error) {
    error.appendChild(el("p", {}, d.error));
    if (d.retry) {
      const retry = el("button", { type: "button" }, t("error.retry"));
      retry.addEventListener("click", () => openDetail(d.id, { focus: true }));
      error.appendChild(retry);
    }
    return;
  }
  renderSummary();
  const h = d.history;
  $("#history-heading").textContent = t("detail.history", { days: h ? num((Date.parse(h.end) - Date.parse(h.start)) / DAY, 0) : "30" });
  const span = h && h.start ? { t0: Date.parse(h.start), t1: Date.parse(h.end), step: h.bucket_seconds * 1000 } : null;
  const scale = drawScoreChart($("#history-chart"), h ? h.scores : [], span, d.id);
  drawInterventions(scale, d.interventions || []);
  drawLegend($("#history-legend"));
  renderInterventions(d.interventions || []);
  drawTelemetryChart($("#telemetry-chart"), h ? h.telemetry : [], span, d.id);
}
function renderSummary() {
  const d = state.detail.body;
  const box = $("#detail-summary"); box.textContent = "";
  const p = d.assessment; // the one current assessment: no second score beside it
  box.appendChild(kv(t("detail.tier"), tierBadge(p ? p.tier : "unknown")));
  box.appendChild(kv(t("detail.score"), el("span", { class: "assessment-score" }, p ? num(p.score) : "—")));
  box.appendChild(kv(t("detail.assessment"), p ? `${t(`source.${p.source}`)} · ${dateTime(p.as_of)}` : t("detail.never")));
  box.appendChild(kv(t("detail.probability", { days: num(probabilityDays(), 0) }), p ? pct(p.probability) : "—"));
  box.appendChild(kv(t("detail.ttf"), p && p.ttf_days !== null ? `${num(p.ttf_days)} [${num(p.ttf_low_days, 0)}–${num(p.ttf_high_days, 0)}]` : "—"));
  box.appendChild(kv(t("detail.site"), d.site_id));
  box.appendChild(kv(t("detail.power"), d.rated_power_kw ? t("unit.kw", { n: num(d.rated_power_kw, 0) }) : "—"));
  const lastEvent = d.site_mode === "historical" ? dateTime(d.last_event_time) : ago(d.last_event_time);
  box.appendChild(kv(t("detail.last_event"), lastEvent + (d.stale ? ` ⚠ ${t("detail.stale")}` : "")));
  box.appendChild(kv(t("detail.model"), p ? p.model_version : "—"));
  const run = d.last_sweep_run; // a reference (which run, how it ended), never a score
  box.appendChild(kv(t("detail.sweep"), run ? `${t(`run.${run.status}`)} · ${dateTime(run.finished_at || run.requested_at)}` : "—"));
  const ul = $("#reasons"); ul.textContent = "";
  for (const r of (p ? p.reasons : [])) {
    const range = Array.isArray(r.normal_range) ? ` (${t("detail.normal", { range: r.normal_range.map((v) => num(v, 1)).join("–") })})` : "";
    const value = typeof r.value === "number" ? num(r.value, 2) : r.value ?? "—";
    ul.appendChild(el("li", {}, `${r.text || r.indicator} — ${value}${range}`));
  }
  if (!ul.children.length) ul.appendChild(el("li", {}, "—"));
  const tbody = $("#measurements tbody"); tbody.textContent = "";
  const values = d.measurements ? d.measurements.values : {};
  for (const [name, value] of Object.entries(values)) {
    const tr = el("tr"); tr.appendChild(el("th", { scope: "row" }, name));
    tr.appendChild(el("td", { class: "num" }, value === null ? "—" : num(value, 2))); tbody.appendChild(tr);
  }
}

// ------------------------------------------------------------------ charts
function frame(container, height, label, top = 8) {
  container.textContent = "";
  const width = Math.max(320, container.clientWidth || 600);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  container.appendChild(svg);
  return { svg, width, height, pad: { l: 34, r: 10, t: top, b: 20 } };
}
// Ticks on round times (hours or days), each label different from the others: day and month when the
// ticks are days apart, the hour alone within one day, both in between.
function timeTicks(t0, t1, maxTicks = 6) {
  const steps = [HOUR / 6, HOUR / 4, HOUR / 2, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY];
  const span = Math.max(1, t1 - t0);
  const step = steps.find((s) => span / s <= maxTicks) || steps[steps.length - 1];
  const out = [];
  for (let x = Math.ceil(t0 / step) * step; x <= t1; x += step) out.push(x);
  const label = step >= 30 * DAY ? (x) => dayMonth(x, true)
    : step >= DAY ? (x) => dayMonth(x)
      : span < DAY ? hourMinute : (x) => `${dayMonth(x)} ${hourMinute(x)}`;
  const seen = new Set();
  return out.map((x) => ({ x, text: label(x) })).filter((tick) => !seen.has(tick.text) && seen.add(tick.text));
}
function timeAxis(f, t0, t1, X) {
  const { svg, height } = f;
  for (const tick of timeTicks(t0, t1, Math.max(3, Math.floor((f.width - f.pad.l - f.pad.r) / 80)))) {
    svg.appendChild(svgEl("text", { class: "tick", x: X(tick.x), y: height - 5, "text-anchor": "middle" }, tick.text));
  }
}
// Consecutive points further apart than one bucket have no data between them: the line stops there
// (a new "M" segment) and the empty span is shaded, so no line is ever drawn across days without data.
function linePath(points, X, Y, key, step) {
  let d = ""; let prev = null;
  for (const p of points) {
    const at = Date.parse(p.bucket), v = p[key];
    if (v === null || v === undefined) { prev = null; continue; }
    const pen = prev === null || (step && at - prev > step) ? "M" : "L";
    d += `${pen}${X(at).toFixed(1)},${Y(v).toFixed(1)}`; prev = at;
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
      height: f.height - f.pad.t - f.pad.b, fill: "#b0bec5", "fill-opacity": "0.25" }));
  }
}
function domain(points, span) {
  if (span && span.t1 > span.t0) return [span.t0, span.t1, span.step];
  const t0 = Date.parse(points[0].bucket);
  return [t0, Date.parse(points[points.length - 1].bucket) || t0 + 1, null];
}
function drawScoreChart(container, points, span, id) {
  if (!points.length) {
    const f = frame(container, 220, t("chart.score_empty", { id }));
    f.svg.appendChild(svgEl("text", { x: 20, y: 40 }, t("chart.nodata")));
    return null;
  }
  const [t0, t1, step] = domain(points, span);
  const scores = points.map((p) => p.avg_score);
  const last = points[points.length - 1];
  const holes = gaps(points, step);
  const label = t("chart.score_label", {
    id, from: dateTime(t0), to: dateTime(t1), min: num(Math.min(...scores)), max: num(Math.max(...points.map((p) => p.max_score))),
    last: num(last.last_score), tier: t(`tier.${last.tier}`), gaps: holes.length ? t("chart.gaps", { n: holes.length }) : "",
  });
  const f = frame(container, 220, label); const { svg, width, height, pad } = f;
  const X = (x) => pad.l + ((x - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - v / 100) * (height - pad.t - pad.b);
  for (const band of (state.policy ? state.policy.tiers : [])) { // the policy's thresholds, never a copy
    svg.appendChild(svgEl("rect", { class: `band band-${band.name}`, "data-min": band.min_score, "data-max": band.max_score,
      x: pad.l, y: Y(band.max_score), width: width - pad.l - pad.r, height: Y(band.min_score) - Y(band.max_score),
      fill: TIER_COLOR[band.name], "fill-opacity": "0.10" }));
    svg.appendChild(svgEl("text", { class: "floor", x: pad.l - 4, y: Y(band.min_score) + 3, "text-anchor": "end" }, num(band.min_score, 0)));
  }
  drawGaps(f, holes, X);
  svg.appendChild(svgEl("path", { d: linePath(points, X, Y, "max_score", step), fill: "none", stroke: "#78909c", "stroke-width": "1", "stroke-dasharray": "3 3" }));
  svg.appendChild(svgEl("path", { d: linePath(points, X, Y, "avg_score", step), fill: "none", stroke: "#12324a", "stroke-width": "1.8", class: "score-line" }));
  for (const p of points) {
    svg.appendChild(svgEl("circle", { cx: X(Date.parse(p.bucket)), cy: Y(p.last_score), r: 2.4, fill: TIER_COLOR[p.tier] || "#777" }));
  }
  timeAxis(f, t0, t1, X);
  return { f, X, t0, t1, label };
}
// ------------------------------------------------------------------ maintenance interventions
function interventionTime(i) { return i.done_at || i.planned_for; }
function interventionText(i, short = false) {
  const what = i.kind === "done" ? t(`intervention.${i.finding}`) : t("intervention.planned");
  const when = short ? dayMonth(Date.parse(interventionTime(i)), true) : dateTime(interventionTime(i));
  return `${when} · ${i.component} · ${what}`;
}
// A marker per intervention within the chart's span (vertical line + triangle, its own label and tooltip);
// the chart's accessible label lists them too (the markers themselves sit inside an image).
function drawInterventions(scale, items) {
  if (!scale) return;
  const { f, X, t0, t1, label } = scale;
  const shown = items.filter((i) => { const at = Date.parse(interventionTime(i)); return at >= t0 && at <= t1; });
  if (!shown.length) return;
  for (const i of shown) {
    const x = X(Date.parse(interventionTime(i)));
    const text = t("chart.intervention_marker", { what: interventionText(i) });
    const g = svgEl("g", { class: `intervention-marker ${i.kind}`, "data-intervention": i.id, "aria-label": text });
    g.appendChild(svgEl("title", {}, text));
    const line = { x1: x, x2: x, y1: f.pad.t, y2: f.height - f.pad.b, stroke: "#4a148c", "stroke-width": "1.5" };
    if (i.kind !== "done") line["stroke-dasharray"] = "4 3"; // planned: dashed
    g.appendChild(svgEl("line", line));
    g.appendChild(svgEl("path", { d: `M${x - 5},${f.pad.t} L${x + 5},${f.pad.t} L${x},${f.pad.t + 8} Z`, fill: "#4a148c" }));
    f.svg.appendChild(g);
  }
  f.svg.setAttribute("aria-label", `${label} ${t("chart.interventions", { n: shown.length, list: shown.map((i) => interventionText(i)).join(" ; ") })}`);
}
function renderInterventions(items) {
  let box = $("#interventions");
  if (!box) { // the section is created once, after the risk chart's legend
    box = el("div", { id: "interventions-box" });
    box.appendChild(el("h3", { id: "interventions-heading" }, ""));
    box.appendChild(el("ul", { id: "interventions", class: "interventions" }));
    $("#history-legend").after(box);
    box = $("#interventions");
  }
  $("#interventions-heading").textContent = t("detail.interventions");
  box.textContent = "";
  for (const i of items.slice(0, 10)) {
    const by = i.recorded_by ? ` (${i.recorded_by})` : "";
    box.appendChild(el("li", { "data-intervention": i.id }, `${interventionText(i)}${by}${i.notes ? ` — ${i.notes}` : ""}`));
  }
  if (!items.length) box.appendChild(el("li", {}, t("detail.no_interventions")));
}
function drawLegend(box) {
  box.textContent = "";
  if (!state.policy) {
    if (state.policyError) box.appendChild(el("span", { class: "warn" }, t("error.policy", { detail: state.policyError })));
    return;
  }
  box.setAttribute("aria-label", t("chart.legend"));
  box.setAttribute("role", "list");
  for (const band of state.policy.tiers) {
    const name = t(`tier.${band.name}`);
    const text = band.name === "critical" ? t("legend.critical", { min: num(band.min_score, 0) })
      : band.name === "low" ? t("legend.low", { max: num(band.max_score, 0) })
        : t("legend.range", { name, min: num(band.min_score, 0), max: num(band.max_score, 0) });
    const item = el("span", { role: "listitem", "data-tier": band.name });
    const swatch = el("i", { "aria-hidden": "true" }); swatch.style.background = TIER_COLOR[band.name];
    item.appendChild(swatch); item.appendChild(document.createTextNode(text));
    box.appendChild(item);
  }
}
function drawTelemetryChart(container, points, span, id) {
  const series = [["gearbox_bearing_temp_c", "#b34700"], ["main_bearing_temp_c", "#6a1b9a"], ["vibration_mm_s", "#1565c0"]];
  if (!points.length) {
    const f = frame(container, 150, t("chart.noagg"));
    f.svg.appendChild(svgEl("text", { x: 20, y: 40 }, t("chart.noagg")));
    return;
  }
  const [t0, t1, step] = domain(points, span);
  const val = (p, key) => (p[key] === null || p[key] === undefined ? null : key === "vibration_mm_s" ? p[key] * 10 : p[key]);
  let lo = Infinity, hi = -Infinity;
  const parts = [];
  for (const [key] of series) {
    const vs = points.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
    if (vs.length) parts.push(t("chart.tele_series", { name: t(`signal.${key}`), min: num(Math.min(...vs)), max: num(Math.max(...vs)) }));
    for (const p of points) { const v = val(p, key); if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
  }
  if (!isFinite(lo)) { lo = 0; hi = 1; } if (hi === lo) hi = lo + 1;
  const f = frame(container, 150, t("chart.tele_label", { id, from: dateTime(t0), to: dateTime(t1), series: parts.join(" ; ") }));
  const { svg, width, height, pad } = f;
  const X = (x) => pad.l + ((x - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (height - pad.t - pad.b);
  drawGaps(f, gaps(points, step), X);
  for (const [key, color] of series) {
    const d = linePath(points.map((p) => ({ bucket: p.bucket, v: val(p, key) })), X, Y, "v", step);
    svg.appendChild(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": "1.4" }));
  }
  svg.appendChild(svgEl("text", { x: pad.l - 4, y: Y(hi) + 8, "text-anchor": "end" }, num(hi, 0)));
  svg.appendChild(svgEl("text", { x: pad.l - 4, y: Y(lo), "text-anchor": "end" }, num(lo, 0)));
  timeAxis(f, t0, t1, X);
  const legend = el("div", { class: "legend" });
  for (const [key, color] of series) {
    const s = el("span"); const i = el("i", { "aria-hidden": "true" }); i.style.background = color;
    s.appendChild(i); s.appendChild(document.createTextNode(t(`signal.${key}`))); legend.appendChild(s);
  }
  container.appendChild(legend);
}
function drawDailyChart(container, days) {
  const total = days.reduce((n, d) => n + (d.counts.critical || 0) + (d.counts.high || 0), 0);
  const first = days.length ? Date.parse(days[0].day) : null, lastDay = days.length ? Date.parse(days[days.length - 1].day) : null;
  const label = !days.length ? t("chart.nodata") : total === 0 ? t("chart.daily_none", { n: days.length })
    : t("chart.daily_label", { from: dayMonth(first), to: dayMonth(lastDay), days: days.map((d) => t("chart.daily_day", { day: dayMonth(Date.parse(d.day)), critical: d.counts.critical || 0, high: d.counts.high || 0 })).join(" ; ") });
  const f = frame(container, 150, label, 16); const { svg, width, height, pad } = f;
  if (!days.length || total === 0) {
    svg.appendChild(svgEl("text", { class: "none", x: 20, y: 40 }, label));
    if (!days.length) return;
  }
  const max = Math.max(1, ...days.map((d) => (d.counts.critical || 0) + (d.counts.high || 0)));
  const bw = (width - pad.l - pad.r) / days.length;
  const H = height - pad.t - pad.b;
  days.forEach((d, i) => {
    const c = d.counts.critical || 0, h = d.counts.high || 0;
    const x = pad.l + i * bw + bw * 0.15, w = bw * 0.7;
    const hc = (c / max) * H, hh = (h / max) * H;
    svg.appendChild(svgEl("rect", { class: "bar-critical", x, y: pad.t + H - hc, width: w, height: hc, fill: TIER_COLOR.critical }));
    svg.appendChild(svgEl("rect", { class: "bar-high", x, y: pad.t + H - hc - hh, width: w, height: hh, fill: TIER_COLOR.high }));
    svg.appendChild(svgEl("text", { class: "tick", x: x + w / 2, y: height - 5, "text-anchor": "middle" }, dayMonth(Date.parse(d.day))));
    if (total) svg.appendChild(svgEl("text", { class: "count", x: x + w / 2, y: pad.t + H - hc - hh - 3, "text-anchor": "middle", "data-day": d.day }, num(c + h, 0)));
  });
}

// ------------------------------------------------------------------ supervision
async function loadSupervision() {
  let ready, sup;
  try {
    [ready, sup] = await Promise.all([getJSON("/readyz"), getJSON("/v1/supervision?days=7")]);
  } catch (err) {
    state.ready = null;
    noteFailure(err);
    renderSupervision();
    return;
  }
  state.ready = ready.body;
  state.supervision = sup.status === 200 ? sup.body : null;
  state.supervisionError = sup.status === 200 ? null : reasonOf(sup.body);
  renderSupervision();
  renderScorerBanner();
  loadModel();
}
// Lineage (GET /v1/models): the production model, when it was promoted, the fleet calibration.
async function loadModel() {
  try {
    const res = await getJSON("/v1/models");
    state.model = res.status === 200 ? res.body : null;
    state.modelError = res.status === 200 ? null : reasonOf(res.body);
  } catch (err) { state.model = null; state.modelError = null; } // API down: the alert says so
  renderModel();
}
function renderModel() {
  let box = $("#active-model");
  if (!box) {
    box = el("div", { id: "active-model", class: "summary" });
    $("#supervision").after(box);
  }
  box.textContent = "";
  const m = state.model;
  if (!m) {
    if (state.modelError) box.appendChild(el("p", { class: "warn" }, t("sup.model_unavailable", { detail: state.modelError })));
    return;
  }
  let value = t("sup.model_none");
  if (m.production) {
    value = m.promoted_at ? t("sup.model_value", { version: m.production, ago: ago(m.promoted_at), date: dateTime(m.promoted_at) }) : m.production;
    if (m.calibration_version) value += ` · ${t("sup.model_calibration", { version: m.calibration_version })}`;
  }
  box.appendChild(kv(t("sup.model"), value));
}
function renderSupervision() {
  const pill = $("#status-pill");
  const ready = state.ready, sup = state.supervision;
  if (!ready) { // /readyz: this API can serve reads; the scorer's state comes from /v1/supervision
    pill.textContent = state.failure && state.failure.kind === "api_down" ? t("status.unreachable") : t("status.loading");
    pill.className = `pill ${state.failure ? "bad" : ""}`;
  } else if (!ready.ready) {
    pill.textContent = t("status.degraded"); pill.className = "pill bad";
  } else if (sup && (sup.scorer_stale || !sup.scorer_ready)) {
    pill.textContent = t("status.scorer", { detail: sup.scorer_status }); pill.className = "pill bad";
  } else {
    pill.textContent = t("status.ready"); pill.className = "pill ok";
  }
  const checks = $("#checks"); checks.textContent = "";
  for (const [name, c] of Object.entries((ready && ready.checks) || {})) {
    const box = el("div", { class: `check ${c.ok ? "ok" : "bad"}` });
    box.appendChild(el("strong", {}, `${state.dict[`check.${name}`] ? t(`check.${name}`) : name} : ${c.ok ? "OK" : "KO"}`));
    box.appendChild(el("div", {}, c.detail));
    checks.appendChild(box);
  }
  const s = state.supervision; const box = $("#supervision"); box.textContent = "";
  const problems = $("#problems"); problems.textContent = "";
  if (!s) {
    problems.hidden = true;
    if (state.supervisionError) box.appendChild(el("p", { class: "warn" }, t("sup.unavailable", { detail: state.supervisionError })));
    return;
  }
  for (const text of s.problems || []) problems.appendChild(el("li", {}, text));
  problems.hidden = !problems.children.length;
  box.appendChild(kv(t("sup.events"), num(s.events_per_minute, 0)));
  box.appendChild(kv(t("sup.lag"), s.max_lag_seconds === null ? "—" : `${num(s.max_lag_seconds)} s`));
  box.appendChild(kv(t("sup.scorers"), num(s.heartbeats.filter((h) => h.age_seconds < 300).length, 0)));
  box.appendChild(kv(t("sup.batches"), t("sup.batches_value", { n: num(s.batches_last_hour, 0), errors: num(s.errors_last_hour, 0) })));
  const sw = s.last_sweep;
  box.appendChild(kv(t("sup.last_sweep"), sw ? t("sup.sweep_value", { status: t(`run.${sw.status}`), ago: ago(sw.finished_at || sw.requested_at), n: num(sw.turbines_scored, 0) }) : "—"));
  const dr = s.drift; // feature drift against the production model's training data (scorer/drift.py)
  if (dr) box.appendChild(kv(t("sup.drift"), dr.status === "never_computed" ? t("drift.never_computed") : `${t(`drift.${dr.status}`)} · ${dr.detail}`));
  drawDailyChart($("#daily-chart"), s.high_critical_daily);
}

// ------------------------------------------------------------------ policy, refresh, start
async function loadPolicy() {
  try {
    const res = await getJSON("/v1/policy");
    if (res.status === 200) { state.policy = res.body; state.policyError = null; } else state.policyError = reasonOf(res.body);
  } catch (err) { state.policyError = err.message; }
}
function renderAll() {
  renderAlert();
  renderUpdated();
  renderFilter();
  if (state.ranking) renderRanking();
  renderPlanning();
  renderSupervision();
  renderScorerBanner();
  if (state.model || state.modelError) renderModel();
  if (state.detail) renderDetail();
}
async function refresh() {
  if (document.hidden) return;
  const jobs = [loadSupervision(), refreshDetail()];
  jobs.push(state.view === "planning" ? loadPlanning() : loadRanking("refresh"));
  if (!state.policy) jobs.push(loadPolicy().then(() => { if (state.policy) renderAll(); }));
  await Promise.all(jobs);
}
async function start() {
  const { lang, remember } = initialLang();
  state.lang = lang;
  state.dict = await loadDict(lang).catch(() => ({}));
  if (remember) { try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* not remembered */ } }
  buildControls();
  readUrl();
  await loadPolicy();
  applyStatic();
  if (new URLSearchParams(location.search).has("lang")) history.replaceState(null, "", urlFor());
  showView();
  sync(null);
  loadSupervision();
  window.addEventListener("popstate", () => { const before = snapshot(); readUrl(); sync(before); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  setInterval(refresh, REFRESH_MS);
  setInterval(renderUpdated, 1000);
}
start();
