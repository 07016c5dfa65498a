// The Live page: a ticker tape, candles of the selected ticker growing bar by bar, a
// normalised multi-ticker line and the alert feed, all pushed by the server over
// Server-Sent Events (/api/live/events). Every (re)connection starts with a snapshot;
// updates are merged into local state and each chart is redrawn at most ten times a second.

import { el, clear, fmtNum, fmtPct, fmtCompact, fmtInt, tickerColor, layout, axis, plot, params, setParams } from "./common.js";

const MIN_REDRAW_MS = 100;
const TZ = "America/New_York";

const state = {
  quotes: new Map(), // ticker -> quote
  bars: { 60: new Map(), 300: new Map() }, // tf -> ticker -> Map(t -> bar)
  alerts: [],
  status: null,
  running: null,
  selected: params().get("ticker") || null,
  tf: Number(params().get("tf")) || 60,
  connected: false,
};
// Counters the browser test and the benchmark read.
const stats = { messages: 0, snapshots: 0, draws: { tape: 0, candles: 0, normalised: 0, alerts: 0 } };
window.__live = stats;

// ------------------------------------------------------------------ formatting

const clockFmt = new Intl.DateTimeFormat("sv-SE", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
/** Exchange-local time as "YYYY-MM-DD HH:MM:SS" (what Plotly reads as a date). */
function local(ms) {
  return clockFmt.format(new Date(ms)).replace(",", "");
}

// ------------------------------------------------------------------ coalesced drawing

const pending = new Map(); // name -> timer
const lastDraw = new Map();
function schedule(name, fn) {
  if (pending.has(name)) return;
  const wait = Math.max(0, MIN_REDRAW_MS - (performance.now() - (lastDraw.get(name) || 0)));
  pending.set(
    name,
    setTimeout(() => {
      requestAnimationFrame(() => {
        pending.delete(name);
        lastDraw.set(name, performance.now());
        stats.draws[name] += 1;
        fn();
      });
    }, wait),
  );
}
function redrawAll() {
  schedule("tape", drawTape);
  schedule("candles", drawCandles);
  schedule("normalised", drawNormalised);
  schedule("alerts", drawAlerts);
}

// ------------------------------------------------------------------ state

function mergeBars(tfBars) {
  for (const [tf, byTicker] of Object.entries(tfBars || {})) {
    const store = state.bars[tf] || (state.bars[tf] = new Map());
    for (const [ticker, bars] of Object.entries(byTicker)) {
      let m = store.get(ticker);
      if (!m) store.set(ticker, (m = new Map()));
      for (const b of bars) m.set(b.t, b);
      // Bounded like the server: the newest 2000 bars per ticker.
      if (m.size > 2000) {
        const keys = [...m.keys()].sort((a, b) => a - b);
        for (const k of keys.slice(0, m.size - 2000)) m.delete(k);
      }
    }
  }
}

function onSnapshot(msg) {
  stats.snapshots += 1;
  state.running = msg.running !== false;
  state.quotes = new Map((msg.quotes || []).map((q) => [q.ticker, q]));
  state.bars = { 60: new Map(), 300: new Map() };
  mergeBars(msg.bars);
  state.alerts = msg.alerts || [];
  if (msg.status) state.status = msg.status;
  if (!state.selected || !state.quotes.has(state.selected)) state.selected = [...state.quotes.keys()].sort()[0] || state.selected;
  drawStatus();
  redrawAll();
}

function alertKey(a) {
  return `${a.ticker}/${a.timeframe_s}/${a.t}`;
}

function onUpdate(msg) {
  for (const q of msg.quotes || []) state.quotes.set(q.ticker, q);
  mergeBars(msg.bars);
  if (msg.alerts && msg.alerts.length) {
    // An alert raised while a snapshot was taken comes again in the next update: keep it once.
    const seen = new Set(state.alerts.map(alertKey));
    const fresh = msg.alerts.filter((a) => !seen.has(alertKey(a))).reverse();
    state.alerts = [...fresh, ...state.alerts].slice(0, 200);
    schedule("alerts", drawAlerts);
  }
  if (msg.status) {
    state.status = msg.status;
    drawStatus();
  }
  if (!state.selected && state.quotes.size) state.selected = [...state.quotes.keys()].sort()[0];
  if (msg.quotes && msg.quotes.length) {
    schedule("tape", drawTape);
    schedule("normalised", drawNormalised);
    if (msg.quotes.some((q) => q.ticker === state.selected)) schedule("candles", drawCandles);
  }
}

// ------------------------------------------------------------------ status

const statusEl = document.getElementById("live-status");
function code(text) {
  return el("code", {}, text);
}
function drawStatus() {
  const s = state.status || {};
  let kind;
  let children;
  if (!state.connected) {
    kind = "disconnected";
    children = ["Disconnected from the server — reconnecting by itself…"];
  } else if (state.running === false || s.state === "off") {
    kind = "off";
    children = ["The live view is off on this server. Start it with ", code("tickerlake serve --live"), ", and a stream with ", code("tickerlake stream replay --speed 60x"), "."];
  } else if (s.state === "waiting" || s.state === "starting") {
    kind = "waiting";
    children = [`No stream yet (${s.detail || s.state}). Start one with `, code(`tickerlake stream replay --topic ${s.topic || "ticks"} --speed 60x`), "."];
  } else if (s.idle) {
    kind = "idle";
    children = [`No stream is running on ${s.topic}: nothing arrived for a while. Start one with `, code(`tickerlake stream replay --topic ${s.topic || "ticks"} --speed 60x`), "."];
  } else {
    kind = "live";
    children = [`Live: ${s.topic} on ${s.bootstrap_servers || "?"}, group ${s.group}`];
  }
  statusEl.dataset.state = kind;
  clear(statusEl, ...children);
  document.getElementById("stat-rate").textContent = s.events_per_s == null ? "–" : fmtInt(s.events_per_s);
  document.getElementById("stat-lag").textContent = s.lag == null ? "–" : fmtInt(s.lag);
  document.getElementById("stat-events").textContent = s.events == null ? "–" : fmtCompact(s.events);
  document.getElementById("stat-late").textContent = s.late == null ? "–" : fmtInt(s.late);
  document.getElementById("stat-clock").textContent = s.watermark_ms ? local(s.watermark_ms) + " ET" : "–";
}

// ------------------------------------------------------------------ tape

const tapeEl = document.getElementById("tape");
const lastSeen = new Map();
function drawTape() {
  const quotes = [...state.quotes.values()].sort((a, b) => a.ticker.localeCompare(b.ticker));
  if (!quotes.length) {
    clear(tapeEl, el("span", { class: "muted" }, "Waiting for trades…"));
    return;
  }
  clear(
    tapeEl,
    quotes.map((q) => {
      const dir = q.change == null || q.change === 0 ? "flat" : q.change > 0 ? "up" : "down";
      const before = lastSeen.get(q.ticker);
      lastSeen.set(q.ticker, q.last);
      const flash = before === undefined || before === q.last ? "" : before < q.last ? " flash-up" : " flash-down";
      return el(
        "div",
        {
          class: `quote ${dir}${q.ticker === state.selected ? " selected" : ""}${q.quiet ? " quiet" : ""}${flash}`,
          dataset: { ticker: q.ticker, last: String(q.last) },
          title: `VWAP ${fmtNum(q.vwap)} · open ${fmtNum(q.open)} · high ${fmtNum(q.high)} · low ${fmtNum(q.low)} · ${fmtCompact(q.volume)} shares${q.quiet ? " · quiet" : ""}`,
          onclick: () => select(q.ticker),
        },
        el("div", { class: "sym" }, q.ticker),
        el("div", { class: "px" }, fmtNum(q.last)),
        el("div", { class: "chg" }, q.change == null ? "no previous close" : `${q.change > 0 ? "+" : ""}${fmtNum(q.change)} (${fmtPct(q.change_pct)})`),
      );
    }),
  );
}

function select(ticker) {
  state.selected = ticker;
  setParams({ ticker });
  schedule("tape", drawTape);
  schedule("candles", drawCandles);
}

// ------------------------------------------------------------------ charts

const candlesEl = document.getElementById("candles");
function sortedBars(tf, ticker) {
  const m = (state.bars[tf] || new Map()).get(ticker);
  return m ? [...m.values()].sort((a, b) => a.t - b.t) : [];
}

function drawCandles() {
  const t = state.selected;
  const bars = t ? sortedBars(state.tf, t) : [];
  document.getElementById("candle-title").textContent = t ? `${t} candles` : "Candles";
  const q = t && state.quotes.get(t);
  document.getElementById("candle-sub").textContent = q ? `last ${fmtNum(q.last)} · VWAP ${fmtNum(q.vwap)} · ${bars.length} bars (ET)` : "";
  candlesEl.dataset.bars = String(bars.length);
  candlesEl.dataset.ticker = t || "";
  candlesEl.dataset.last = bars.length ? String(bars[bars.length - 1].c) : "";
  const x = bars.map((b) => local(b.t));
  // The session VWAP as it stood at each bar's end (volume-weighted over the day so far).
  const vwap = [];
  let day = null;
  let notional = 0;
  let volume = 0;
  for (const b of bars) {
    const d = Math.floor(b.t / 86400000);
    if (d !== day) [day, notional, volume] = [d, 0, 0];
    notional += (b.vwap || 0) * b.v;
    volume += b.v;
    vwap.push(volume ? notional / volume : null);
  }
  plot(
    candlesEl,
    [
      {
        type: "candlestick",
        x,
        open: bars.map((b) => b.o),
        high: bars.map((b) => b.h),
        low: bars.map((b) => b.l),
        close: bars.map((b) => b.c),
        name: t || "",
        increasing: { line: { color: "#12a150" } },
        decreasing: { line: { color: "#d92d20" } },
        yaxis: "y",
      },
      { type: "scatter", mode: "lines", x, y: vwap, name: "VWAP", line: { color: "#1b74e4", width: 1.2, dash: "dot" }, yaxis: "y", hovertemplate: "VWAP %{y:.2f}<extra></extra>" },
      { type: "bar", x, y: bars.map((b) => b.v), name: "volume", marker: { color: "#cfd6e0" }, yaxis: "y2", hovertemplate: "%{y:,} shares<extra></extra>" },
    ],
    layout({
      showlegend: false,
      // Time labels under the volume panel, at the very bottom.
      xaxis: axis({ type: "date", rangeslider: { visible: false }, anchor: "y2" }),
      yaxis: axis({ domain: [0.26, 1], title: { text: "price", font: { size: 11 } } }),
      yaxis2: axis({ domain: [0, 0.2], title: { text: "volume", font: { size: 11 } } }),
      uirevision: `${t}-${state.tf}`,
    }),
  );
}

const normEl = document.getElementById("normalised");
function drawNormalised() {
  const traces = [];
  for (const ticker of [...state.quotes.keys()].sort()) {
    const q = state.quotes.get(ticker);
    const bars = sortedBars(60, ticker).filter((b) => Math.floor(b.t / 86400000) === Math.floor(q.t / 86400000));
    if (!bars.length || !q.open) continue;
    traces.push({
      type: "scatter",
      mode: "lines",
      name: ticker,
      // Time of day on one shared axis: each ticker's current session overlays the others.
      x: bars.map((b) => "2000-01-01 " + local(b.t).slice(11)),
      y: bars.map((b) => (b.c / q.open) * 100),
      line: { color: tickerColor(ticker), width: 1.6 },
      hovertemplate: `${ticker} %{y:.2f}<extra></extra>`,
    });
  }
  normEl.dataset.traces = String(traces.length);
  plot(
    normEl,
    traces,
    layout({
      xaxis: axis({ type: "date", tickformat: "%H:%M", hoverformat: "%H:%M ET" }),
      yaxis: axis({ title: { text: "open = 100", font: { size: 11 } } }),
      uirevision: "norm",
    }),
  );
}

const alertsEl = document.getElementById("alerts");
function drawAlerts() {
  alertsEl.dataset.count = String(state.alerts.length);
  if (!state.alerts.length) {
    clear(alertsEl, el("li", { class: "muted" }, "No alerts yet."));
    return;
  }
  clear(
    alertsEl,
    state.alerts.slice(0, 100).map((a) =>
      el(
        "li",
        { class: "alert", dataset: { ticker: a.ticker } },
        el("div", {}, el("b", {}, a.ticker), " ", el("b", { class: a.ret_pct > 0 ? "up" : "down" }, fmtPct(a.ret_pct)), ` in ${a.timeframe_s / 60} min · z = ${fmtNum(a.z, 1)}`),
        el("div", { class: "when" }, `${local(a.t)} ET · ${fmtNum(a.previous_close)} → ${fmtNum(a.close)} · typical move ±${fmtNum(a.sigma_pct, 3)}%`),
      ),
    ),
  );
}

// ------------------------------------------------------------------ timeframe switch

for (const b of document.querySelectorAll("#timeframe button")) {
  b.setAttribute("aria-pressed", String(Number(b.dataset.value) === state.tf));
  b.addEventListener("click", () => {
    state.tf = Number(b.dataset.value);
    for (const o of document.querySelectorAll("#timeframe button")) o.setAttribute("aria-pressed", String(o === b));
    setParams({ tf: state.tf === 60 ? null : state.tf });
    schedule("candles", drawCandles);
  });
}

// ------------------------------------------------------------------ connection

let source = null;
let oneShot = false;
function connect() {
  source = new EventSource("/api/live/events");
  source.addEventListener("open", () => {
    state.connected = true;
    drawStatus();
  });
  source.addEventListener("live", (ev) => {
    stats.messages += 1;
    state.connected = true;
    const msg = JSON.parse(ev.data);
    oneShot = Boolean(msg.once);
    if (msg.type === "snapshot") onSnapshot(msg);
    else if (msg.type === "update") onUpdate(msg);
    else if (msg.status) {
      state.status = msg.status;
      drawStatus();
    }
  });
  source.addEventListener("error", () => {
    // A server without a live view answers once and closes: that is not a lost connection.
    if (oneShot) {
      oneShot = false;
      return;
    }
    state.connected = false;
    drawStatus();
    // EventSource retries by itself unless the server answered with an error status; then start over.
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      setTimeout(connect, 2000);
    }
  });
}
drawStatus();
connect();
