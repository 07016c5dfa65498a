// Shared helpers of the dashboard pages: API calls, URL state, formatting, colours,
// the ticker/window selection bar and Plotly defaults.

const bootEl = document.getElementById("tl-boot");
export const BOOT = bootEl ? JSON.parse(bootEl.textContent) : { meta: { tickers: [] }, windows: [] };
export const META = BOOT.meta;
export const WINDOWS = Object.fromEntries((BOOT.windows || []).map((w) => [w.name, w]));

// ------------------------------------------------------------------ API

/** Fetch JSON from the API; a non-2xx answer throws an Error carrying the server's message. */
export async function api(path, { method = "GET", body = null, signal } = {}) {
  const opts = { method, headers: { Accept: "application/json" }, signal };
  if (body !== null) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    const err = new Error("the server cannot be reached (is `tickerlake serve` still running?)");
    err.kind = "NetworkError";
    throw err;
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new Error((data && data.detail) || `${res.status} ${res.statusText}`);
    err.kind = (data && data.error) || "HTTPError";
    err.status = res.status;
    throw err;
  }
  return data;
}

/** A query string from an object, leaving out empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") p.set(k, String(v));
  }
  const s = p.toString();
  return s ? "?" + s : "";
}

// ------------------------------------------------------------------ URL state

export function params() {
  return new URLSearchParams(location.search);
}

/** Update the page URL (the shareable selection). Empty values are removed. */
export function setParams(updates, { push = false } = {}) {
  const p = params();
  for (const [k, v] of Object.entries(updates)) {
    if (v === null || v === undefined || v === "") p.delete(k);
    else p.set(k, String(v));
  }
  const q = p.toString();
  const url = location.pathname + (q ? "?" + q : "");
  if (url !== location.pathname + location.search) {
    history[push ? "pushState" : "replaceState"](null, "", url);
  }
  syncNav();
}

/** Carry the shared selection (tickers and window) over to the other pages' links. */
export function syncNav() {
  const p = params();
  const shared = new URLSearchParams();
  for (const k of ["tickers", "window", "start", "end"]) {
    if (p.get(k)) shared.set(k, p.get(k));
  }
  const q = shared.toString();
  document.querySelectorAll("a[data-nav]").forEach((a) => {
    if (a.dataset.nav === "market" || a.dataset.nav === "insights") {
      const base = a.getAttribute("href").split("?")[0];
      a.setAttribute("href", base + (q ? "?" + q : ""));
    }
  });
}

// ------------------------------------------------------------------ formatting

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "2022-06-30" → "Jun 30, 2022" (the narratives' style). */
export function fmtDate(iso) {
  if (!iso) return "n/a";
  const [y, m, d] = String(iso).slice(0, 10).split("-").map(Number);
  return `${MONTHS[m - 1]} ${d}, ${y}`;
}

/** Thousands separators, at most two decimals (tiny values keep two significant digits). */
export function fmtNum(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return "n/a";
  const ax = Math.abs(x);
  if (ax > 0 && ax < 0.005) return x.toPrecision(2);
  return x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtInt(x) {
  if (x === null || x === undefined) return "n/a";
  return Math.round(x).toLocaleString("en-US");
}

/** Compact numbers for volumes: 1.2K, 3.4M, 5.6B. */
export function fmtCompact(x) {
  if (x === null || x === undefined) return "n/a";
  return Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 }).format(x);
}

/** "+5.18%", "-1.81%". */
export function fmtPct(x, { signed = true, digits = 2 } = {}) {
  if (x === null || x === undefined || Number.isNaN(x)) return "n/a";
  const s = Math.abs(x).toLocaleString("en-US", { maximumFractionDigits: digits });
  if (s === "0") return "0%";
  return (signed ? (x > 0 ? "+" : "-") : x < 0 ? "-" : "") + s + "%";
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "n/a";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toLocaleString("en-US", { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}

/** A signed-change badge element. */
export function badge(pct) {
  const cls = pct === null || pct === undefined || Math.abs(pct) < 1e-9 ? "flat" : pct > 0 ? "up" : "down";
  return el("span", { class: `badge ${cls}` }, fmtPct(pct));
}

export function changeClass(x) {
  if (x === null || x === undefined || Math.abs(x) < 1e-12) return "";
  return x > 0 ? "up-text" : "down-text";
}

// ------------------------------------------------------------------ DOM

/** Create an element: el("td", {class: "num"}, "text", child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

export function showError(node, err) {
  clear(node, el("div", { class: "error-box", role: "alert" }, el("b", {}, (err.kind || "Error") + ": "), err.message));
}

export function showLoading(node, text = "Loading…") {
  clear(node, el("div", { class: "loading" }, text));
}

/** Record that a view is fully drawn (the browser tests and the benchmark wait for it). */
export function markDrawn(node, name) {
  if (node) node.dataset.drawn = "true";
  window.__tl = window.__tl || {};
  window.__tl[name] = performance.now();
}

export function markBusy(node) {
  if (node) node.dataset.drawn = "false";
}

/** Make a table's headers sort its rows (values from each cell's data-sort or text). */
export function sortable(table, { onSort } = {}) {
  const heads = [...table.querySelectorAll("thead th")];
  heads.forEach((th, i) => {
    if (th.dataset.nosort !== undefined) return;
    th.classList.add("sortable");
    th.addEventListener("click", () => {
      const asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      const body = table.tBodies[0];
      const rows = [...body.rows];
      const key = (r) => {
        const c = r.cells[i];
        const raw = c.dataset.sort ?? c.textContent;
        const n = Number(raw);
        return raw !== "" && !Number.isNaN(n) ? n : String(raw).toLowerCase();
      };
      rows.sort((a, b) => {
        const x = key(a);
        const y = key(b);
        if (x === y) return 0;
        if (typeof x === "number" && typeof y === "number") return asc ? x - y : y - x;
        return asc ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
      });
      body.append(...rows);
      if (onSort) onSort(i, asc);
    });
  });
}

// ------------------------------------------------------------------ colours and charts

const COLORS = {
  META: "#3b6fd8",
  AAPL: "#7b5bd6",
  NFLX: "#e0453a",
  GOOGL: "#2e9d5b",
  MSFT: "#0ea5c6",
  AMZN: "#f08c21",
  NVDA: "#b39b12",
  TSLA: "#d6457f",
};
const EXTRA = ["#4e79a7", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2", "#e15759", "#edc948", "#bab0ac"];

export function tickerColor(ticker) {
  if (COLORS[ticker]) return COLORS[ticker];
  let h = 0;
  for (const ch of ticker) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return EXTRA[h % EXTRA.length];
}

export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", Arial, sans-serif';

export function axis(extra = {}) {
  return {
    gridcolor: "#eef1f5",
    linecolor: "#cfd6e0",
    zeroline: false,
    tickfont: { color: "#667085", size: 11 },
    automargin: true,
    ...extra,
  };
}

export function layout(extra = {}) {
  return {
    margin: { l: 56, r: 18, t: 12, b: 34 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    font: { family: FONT, size: 12, color: "#344054" },
    hovermode: "x unified",
    hoverlabel: { bgcolor: "#ffffff", bordercolor: "#cfd6e0", font: { family: FONT, size: 12, color: "#1c2635" } },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 12 } },
    xaxis: axis({ type: "date" }),
    yaxis: axis(),
    ...extra,
  };
}

export const PLOT_CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d", "toggleSpikelines"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

/** Draw with Plotly (waits until the deferred plotly.js script has run). */
export async function plot(node, data, lay, config = PLOT_CONFIG) {
  if (!window.Plotly) {
    await new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
  }
  if (!window.Plotly) throw Object.assign(new Error("plotly.js did not load (pip install plotly==7.1.0)"), { kind: "ChartError" });
  return window.Plotly.react(node, data, lay, config);
}

// ------------------------------------------------------------------ selection bar

function isoMinusYears(iso, years) {
  const [y, m, d] = iso.split("-").map(Number);
  const t = new Date(Date.UTC(y - years, m - 1, d) + 86400000);
  return t.toISOString().slice(0, 10);
}

/**
 * The ticker chips, window preset and dates (and the measure switch on the Market page),
 * kept in the URL: tickers=AAPL,MSFT (absent = all), window=NAME or start=&end=, measure=.
 */
export class Selection {
  constructor({ onChange, measure = false } = {}) {
    this.onChange = onChange || (() => {});
    this.all = META.tickers || [];
    this.chips = [...document.querySelectorAll("#ticker-chips .chip[data-ticker]")];
    this.select = document.getElementById("window-select");
    this.startInput = document.getElementById("start");
    this.endInput = document.getElementById("end");
    this.measureGroup = measure ? document.getElementById("measure") : null;
    for (const chip of this.chips) this.wire(chip);
    // A universe: the search box adds a ticker (shows it alone when every ticker is shown).
    const search = document.getElementById("ticker-search");
    this.universe = Boolean(search);
    search?.addEventListener("change", () => {
      const t = search.value.trim().toUpperCase();
      if (!this.all.includes(t)) return;
      search.value = "";
      const now = this.tickers;
      this.setTickers(now.length === this.all.length ? [t] : [...new Set([...now, t])]);
    });
    document.getElementById("tickers-all")?.addEventListener("click", () => this.setTickers(this.all));
    document.getElementById("tickers-only")?.remove();
    this.select?.addEventListener("change", () => this.choosePreset(this.select.value));
    for (const input of [this.startInput, this.endInput]) {
      input?.addEventListener("change", () => this.chooseDates());
    }
    this.measureGroup?.querySelectorAll("button").forEach((b) =>
      b.addEventListener("click", () => {
        setParams({ measure: b.dataset.value === "close" ? null : b.dataset.value }, { push: true });
        this.refresh();
        this.onChange("measure");
      }),
    );
    window.addEventListener("popstate", () => {
      this.refresh();
      this.onChange("history");
    });
    this.refresh();
    syncNav();
  }

  /** A chip's colour and handlers. */
  wire(chip) {
    chip.querySelector(".dot").style.background = tickerColor(chip.dataset.ticker);
    chip.addEventListener("click", () => this.toggle(chip.dataset.ticker));
    chip.addEventListener("dblclick", () => this.solo(chip.dataset.ticker));
    chip.title = "Click to show or hide; double-click to show it alone";
  }

  /** A chip for every selected ticker the page was not rendered with (a universe's search). */
  ensureChips(chosen) {
    if (chosen.length === this.all.length) return;
    const have = new Set(this.chips.map((c) => c.dataset.ticker));
    const before = document.getElementById("ticker-search") || document.getElementById("tickers-all");
    for (const t of chosen) {
      if (have.has(t) || !before) continue;
      const chip = el("button", { type: "button", class: "chip", "data-ticker": t, "aria-pressed": "true" },
        el("span", { class: "dot" }), t);
      before.before(chip);
      this.wire(chip);
      this.chips.push(chip);
    }
  }

  get tickers() {
    const raw = params().get("tickers");
    if (!raw) return [...this.all];
    const wanted = raw.split(",").map((t) => t.trim().toUpperCase()).filter(Boolean);
    const known = this.all.filter((t) => wanted.includes(t));
    return known.length ? known : [...this.all];
  }

  get measure() {
    return params().get("measure") || "close";
  }

  /** The selection as API query parameters. */
  apiParams() {
    const p = params();
    const t = this.tickers;
    return {
      tickers: t.length === this.all.length ? "" : t.join(","),
      window: p.get("window") || "",
      start: p.get("start") || "",
      end: p.get("end") || "",
    };
  }

  /** First and last day of the selected window as ISO dates (data bounds when open). */
  span() {
    const p = params();
    const w = WINDOWS[p.get("window")];
    return {
      start: p.get("start") || (w ? w.start : META.first_date),
      end: p.get("end") || (w ? w.end : META.last_date),
      label: w ? w.label : p.get("start") || p.get("end") ? "custom window" : "whole history",
    };
  }

  setTickers(list) {
    const keep = this.all.filter((t) => list.includes(t));
    if (!keep.length) return;
    setParams({ tickers: keep.length === this.all.length ? null : keep.join(",") }, { push: true });
    this.refresh();
    this.onChange("tickers");
  }

  toggle(ticker) {
    const now = this.tickers;
    // A universe shown whole: a chip shows its ticker alone (not thousands minus one).
    if (this.universe && now.length === this.all.length) return this.solo(ticker);
    const next = now.includes(ticker) ? now.filter((t) => t !== ticker) : [...now, ticker];
    if (!next.length) return; // at least one ticker stays selected
    this.setTickers(next);
  }

  solo(ticker) {
    this.setTickers([ticker]);
  }

  choosePreset(value) {
    if (value === "custom") {
      setParams({ window: null, start: this.startInput.value, end: this.endInput.value }, { push: true });
    } else if (value === "all") {
      setParams({ window: null, start: null, end: null }, { push: true });
    } else if (value === "last-1y" || value === "last-5y") {
      const end = META.last_date;
      setParams({ window: null, start: isoMinusYears(end, value === "last-1y" ? 1 : 5), end }, { push: true });
    } else {
      setParams({ window: value, start: null, end: null }, { push: true });
    }
    this.refresh();
    this.onChange("window");
  }

  chooseDates() {
    let s = this.startInput.value;
    let e = this.endInput.value;
    if (s && e && s > e) [s, e] = [e, s];
    setParams({ window: null, start: s || null, end: e || null }, { push: true });
    this.refresh();
    this.onChange("window");
  }

  /** Show the URL's selection in the controls. */
  refresh() {
    const chosen = this.tickers;
    this.ensureChips(chosen);
    for (const chip of this.chips) chip.setAttribute("aria-pressed", String(chosen.includes(chip.dataset.ticker)));
    const p = params();
    const span = this.span();
    if (this.select) {
      let value = "all";
      if (p.get("window") && WINDOWS[p.get("window")]) value = p.get("window");
      else if (p.get("start") || p.get("end")) {
        value = "custom";
        if (p.get("end") === META.last_date && p.get("start") === isoMinusYears(META.last_date, 1)) value = "last-1y";
        if (p.get("end") === META.last_date && p.get("start") === isoMinusYears(META.last_date, 5)) value = "last-5y";
      }
      this.select.value = value;
    }
    if (this.startInput) this.startInput.value = span.start || "";
    if (this.endInput) this.endInput.value = span.end || "";
    if (this.measureGroup) {
      const m = this.measure;
      this.measureGroup.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === m)));
    }
  }
}

// ------------------------------------------------------------------ exports (CSV of every table and chart, PNG of every chart)

/** Save a blob under a file name (the browser's download). */
export function download(blob, filename) {
  const a = el("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function csvField(v) {
  if (v === null || v === undefined) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV text of a header and rows. */
export function csvText(columns, rows) {
  return [columns, ...rows].map((r) => r.map(csvField).join(",")).join("\n") + "\n";
}

/** A table's rows as CSV: each cell's data-csv, else its numeric data-sort, else its text. */
export function tableRows(table) {
  const columns = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  const rows = [...table.querySelectorAll("tbody tr")].map((tr) =>
    [...tr.cells].map((td) => {
      if (td.dataset.csv !== undefined) return td.dataset.csv;
      const n = Number(td.dataset.sort);
      if (td.dataset.sort !== undefined && td.dataset.sort !== "" && Number.isFinite(n) && Math.abs(n) < 1e90) return n;
      return td.textContent.trim();
    }));
  return { columns, rows };
}

/** The rows of a card's tables: one table as it is; several with the same columns (top and
 * bottom movers) stacked, with a first column naming each one's part. */
function cardRows(card) {
  const tables = [...card.querySelectorAll("table.data")].filter((t) => !t.closest(".hidden"));
  const parts = tables.map(tableRows);
  const same = parts.every((p) => p.columns.join("\u0000") === parts[0].columns.join("\u0000"));
  if (parts.length < 2 || !same) return parts[0] || { columns: [], rows: [] };
  const name = (t, i) => {
    // The nearest label above the table inside the card (e.g. "Top movers").
    for (let n = t.parentElement; n && n !== card; n = n.parentElement) {
      const label = n.querySelector(".kind, h3, h4");
      if (label && !label.closest(".card-head")) return label.textContent.trim();
    }
    return `table ${i + 1}`;
  };
  return {
    columns: ["part", ...parts[0].columns],
    rows: parts.flatMap((p, i) => p.rows.map((r) => [name(tables[i], i), ...r])),
  };
}

/** A chart's data as CSV rows, one per point: series, x and the trace's values (y, or open/high/low/close). */
export function chartRows(node) {
  const traces = (node.data || []).filter((t) => t.x && t.visible !== false && t.visible !== "legendonly");
  const fields = ["y", "open", "high", "low", "close"].filter((f) => traces.some((t) => Array.isArray(t[f])));
  const rows = [];
  for (const t of traces) {
    t.x.forEach((x, i) => rows.push([t.name ?? "", x, ...fields.map((f) => (Array.isArray(t[f]) ? t[f][i] : null))]));
  }
  return { columns: ["series", "x", ...fields], rows };
}

/** The page's selection as file-name words: tickers, window or dates, measure, day. */
export function selectionSlug() {
  const p = params();
  const parts = [p.get("tickers") ? p.get("tickers").split(",").join("-") : "all"];
  if (p.get("window")) parts.push(p.get("window"));
  if (p.get("start") || p.get("end")) parts.push(`${p.get("start") || "first"}_${p.get("end") || "last"}`);
  for (const k of ["measure", "day", "zoom"]) if (p.get(k)) parts.push(p.get(k).replace("..", "_"));
  return parts.join("-");
}

function fileName(card, what) {
  const page = location.pathname.replace(/^\/+|\/+$/g, "") || "market";
  const title = card.dataset.export || card.querySelector(".card-head h2")?.textContent || what;
  return ["tickerlake", page, title, selectionSlug()].join("-").toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-").replace(/-+/g, "-").replace(/-$/, "").slice(0, 150);
}

/** Add CSV (and, for charts, PNG) export buttons to every card with a chart or a data table. */
export function installExports(root = document) {
  for (const card of root.querySelectorAll(".card")) {
    const head = card.querySelector(".card-head");
    if (!head || head.querySelector(".export")) continue;
    const chartNode = card.querySelector(".chart");
    if (!chartNode && !card.querySelector("table.data")) continue;
    const box = el("span", { class: "export" });
    box.append(el("button", {
      type: "button", class: "export-csv", title: "Download the data as CSV",
      onclick: () => {
        const { columns, rows } = chartNode && !chartNode.closest(".hidden") ? chartRows(chartNode) : cardRows(card);
        download(new Blob([csvText(columns, rows)], { type: "text/csv" }), `${fileName(card, "data")}.csv`);
      },
    }, "CSV"));
    if (chartNode) {
      box.append(el("button", {
        type: "button", class: "export-png", title: "Download the chart as PNG",
        onclick: () => window.Plotly?.downloadImage(chartNode, {
          format: "png", filename: fileName(card, "chart"), width: chartNode.offsetWidth, height: chartNode.offsetHeight, scale: 2,
        }),
      }, "PNG"));
    }
    head.append(box);
  }
}

// Every page gets its export buttons, also on tables and charts drawn later.
installExports();
let exportsQueued = false;
new MutationObserver(() => {
  if (exportsQueued) return;
  exportsQueued = true;
  requestAnimationFrame(() => {
    exportsQueued = false;
    installExports();
  });
}).observe(document.body, { childList: true, subtree: true });
