// Insights page: the QuickSight-style insight cards for the selected tickers and window.
import {
  api, axis, badge, changeClass, clear, el, fmtCompact, fmtDate, fmtNum, fmtPct, layout, markBusy, markDrawn,
  META, params, plot, qs, Selection, setParams, showError, showLoading, sortable, tickerColor, WINDOWS,
} from "./common.js";

const $ = (id) => document.getElementById(id);
const selection = new Selection({ onChange: () => renderAll() });
let tradingDays = [];
let totalSeries = null;
let anomalyResult = null;
const gens = {};

/** A per-card generation counter: answers to superseded requests are dropped. */
function nextGen(name) {
  gens[name] = (gens[name] || 0) + 1;
  return gens[name];
}

const KIND_LABELS = {
  window_change: ["Window change", ""],
  best_ticker: ["Best performer", "up"],
  worst_ticker: ["Worst performer", "down"],
  biggest_day: ["Biggest daily move", "warn"],
  drawdown: ["Drawdown", "down"],
  anomaly: ["Anomaly", "down"],
  extreme: ["Extremes", "gray"],
};

function kindPill(label, tone = "") {
  return el("span", { class: `kind ${tone}` }, label);
}

function sel() {
  return selection.apiParams();
}

function day() {
  return params().get("date") || "";
}

// ------------------------------------------------------------------ controls

$("day").addEventListener("change", () => {
  setParams({ date: $("day").value || null }, { push: true });
  renderDay();
});
$("day-prev").addEventListener("click", () => stepDay(-1));
$("day-next").addEventListener("click", () => stepDay(1));
$("movers-measure").addEventListener("change", () => {
  setParams({ mmeasure: $("movers-measure").value === "close" ? null : $("movers-measure").value });
  renderMovers();
});
$("grain").querySelectorAll("button").forEach((b) =>
  b.addEventListener("click", () => {
    setParams({ grain: b.dataset.value === "day" ? null : b.dataset.value });
    renderPeriod();
  }),
);
$("sensitivity").addEventListener("input", () => {
  $("sensitivity-value").textContent = Number($("sensitivity").value).toFixed(2);
});
$("sensitivity").addEventListener("change", () => {
  const v = Number($("sensitivity").value);
  setParams({ sensitivity: Math.abs(v - 0.5) < 1e-9 ? null : v.toFixed(2), anomaly: null });
  renderAnomalies();
});
$("forecast-ticker").addEventListener("change", () => {
  setParams({ fticker: $("forecast-ticker").value });
  renderForecast();
});
$("forecast-origin").addEventListener("change", () => {
  setParams({ origin: $("forecast-origin").value || null });
  renderForecast();
});
$("horizon").addEventListener("change", () => {
  setParams({ horizon: $("horizon").value === "30" ? null : $("horizon").value });
  renderForecast();
});
$("recession-window").addEventListener("change", () => {
  setParams({ period: $("recession-window").value });
  renderRecession();
});

/** The chosen day: the URL's if inside the window, else the window's last trading day. */
function chosenDay() {
  const d = day();
  if (d && tradingDays.length && d >= tradingDays[0] && d <= tradingDays[tradingDays.length - 1]) return d;
  return tradingDays.length ? tradingDays[tradingDays.length - 1] : d;
}

function stepDay(delta) {
  if (!tradingDays.length) return;
  const current = chosenDay();
  let i = tradingDays.indexOf(current);
  if (i < 0) i = tradingDays.findIndex((d) => d > current) - (delta > 0 ? 1 : 0);
  const j = Math.min(Math.max(i + delta, 0), tradingDays.length - 1);
  setParams({ date: tradingDays[j] }, { push: true });
  renderDay();
}

function syncControls() {
  const p = params();
  $("movers-measure").value = p.get("mmeasure") || "close";
  const grain = p.get("grain") || "day";
  $("grain").querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === grain)));
  const s = p.get("sensitivity") || "0.5";
  $("sensitivity").value = s;
  $("sensitivity-value").textContent = Number(s).toFixed(2);
  const tickers = selection.tickers;
  const ft = p.get("fticker");
  $("forecast-ticker").value = ft && META.tickers.includes(ft) ? ft : tickers.includes("AAPL") ? "AAPL" : tickers[0];
  $("horizon").value = p.get("horizon") || "30";
  $("forecast-origin").value = p.get("origin") || "";
  const w = p.get("window");
  const period = p.get("period") || (w && WINDOWS[w] ? w : "study-2008-focus");
  $("recession-window").value = WINDOWS[period] ? period : "study-2008-focus";
}

// ------------------------------------------------------------------ all cards

async function renderAll() {
  syncControls();
  const gen = nextGen("all");
  markBusy($("anomaly-chart"));
  try {
    const bars = await api("/api/bars" + qs({ ...sel(), measure: "close", total: true }));
    if (gen !== gens.all) return;
    tradingDays = bars.dates;
    totalSeries = bars;
  } catch (err) {
    if (gen !== gens.all) return;
    tradingDays = [];
    totalSeries = null;
    for (const id of ["summary-body", "movers-body", "period-body", "anomalies-status", "more-body"]) showError($(id), err);
    markDrawn($("anomaly-chart"), "anomalies");
    renderForecast();
    renderRecession();
    return;
  }
  const span = selection.span();
  $("summary-sub").textContent = `${fmtDate(tradingDays[0])} – ${fmtDate(tradingDays[tradingDays.length - 1])}`;
  void span;
  renderSummary();
  renderDay();
  renderAnomalies();
  renderForecast();
  renderMore();
  renderRecession();
}

function renderDay() {
  const d = chosenDay();
  $("day").value = d;
  if (tradingDays.length) {
    $("day").min = tradingDays[0];
    $("day").max = tradingDays[tradingDays.length - 1];
  }
  renderMovers();
  renderPeriod();
}

// ------------------------------------------------------------------ summary

async function renderSummary() {
  const gen = nextGen("summary");
  const body = $("summary-body");
  showLoading(body);
  try {
    const res = await api("/api/insights/summary" + qs({ ...sel(), n: 6 }));
    if (gen !== gens.summary) return;
    const items = res.insights.map((i) => {
      const [label, tone] = KIND_LABELS[i.kind] || [i.kind, "gray"];
      return el("li", { "data-kind": i.kind },
        el("span", { class: "rank" }, `${i.rank}.`),
        el("p", { class: "narrative" }, i.narrative),
        kindPill(label, tone),
      );
    });
    clear(body, items.length ? el("ol", { class: "summary-list" }, items) : el("p", { class: "muted" }, "Nothing notable in this window."));
  } catch (err) {
    if (gen === gens.summary) showError(body, err);
  }
}

// ------------------------------------------------------------------ movers

function moversTable(res) {
  const volume = res.measure === "volume";
  const f = (x) => (volume ? fmtCompact(x) : fmtNum(x));
  return el("table", { class: "data" },
    el("thead", {}, el("tr", {}, el("th", {}, "Ticker"), el("th", { class: "num" }, "Previous"), el("th", { class: "num" }, "Current"), el("th", { class: "num" }, "Change"))),
    el("tbody", {}, res.rows.map((m) =>
      el("tr", {},
        el("td", {}, el("span", { class: "tdot", style: `background:${tickerColor(m.ticker)}` }), el("b", {}, m.ticker)),
        // The previous value is on the day's basis: the title names the actions it is adjusted for.
        el("td", { class: "num", title: [fmtDate(m.previous_date), ...(m.adjusted_for || []).map((a) => `adjusted for ${a}`)].join(", ") }, f(m.previous)),
        el("td", { class: "num" }, f(m.current)),
        el("td", { class: `num ${changeClass(m.change)}` }, `${fmtPct(m.pct_change)} (${m.change > 0 ? "+" : ""}${f(m.change)})`),
      ),
    )),
  );
}

async function renderMovers() {
  const gen = nextGen("movers");
  const body = $("movers-body");
  showLoading(body);
  const common = { tickers: sel().tickers, date: chosenDay(), measure: $("movers-measure").value, n: 3 };
  try {
    const [top, bottom] = await Promise.all([
      api("/api/insights/movers" + qs(common)),
      api("/api/insights/movers" + qs({ ...common, bottom: true })),
    ]);
    if (gen !== gens.movers) return;
    const col = (res, label, tone) =>
      el("div", { class: "movers-col", "data-direction": res.direction },
        el("div", { class: "row", style: "margin-bottom:6px" }, kindPill(label, tone)),
        el("p", { class: "narrative" }, res.narrative),
        el("div", { style: "margin-top:10px" }, moversTable(res)),
      );
    const excluded = top.excluded.length
      ? el("p", { class: "excluded" }, "Not compared: " + top.excluded.map((e) => `${e.ticker} (${e.reason})`).join("; ") + ".")
      : null;
    clear(body, el("div", { class: "movers-cols" }, col(top, "Top movers", "up"), col(bottom, "Bottom movers", "down")), excluded);
  } catch (err) {
    if (gen === gens.movers) showError(body, err);
  }
}

// ------------------------------------------------------------------ period over period

async function renderPeriod() {
  const gen = nextGen("period");
  const body = $("period-body");
  showLoading(body);
  const grain = params().get("grain") || "day";
  const base = { tickers: sel().tickers, date: chosenDay() };
  try {
    const ptdGrain = grain === "day" ? "month" : grain;
    const [res, ptd] = await Promise.all([
      api("/api/insights/period" + qs({ ...base, grain })),
      api("/api/insights/period-to-date" + qs({ ...base, grain: ptdGrain })).catch((e) => ({ error: e })),
    ]);
    if (gen !== gens.period) return;
    $("period-title").textContent = `Total close · ${grain === "day" ? fmtDate(res.date) : grain + " of " + fmtDate(res.date)}`;
    const rows = res.tickers.map((t) =>
      el("tr", {},
        el("td", {}, el("span", { class: "tdot", style: `background:${tickerColor(t.ticker)}` }), el("b", {}, t.ticker)),
        el("td", { class: "num" }, fmtNum(t.previous)),
        el("td", { class: "num" }, fmtNum(t.current)),
        el("td", { class: `num ${changeClass(t.change)}` }, fmtPct(t.pct_change)),
      ),
    );
    clear(body,
      el("div", { class: "kpi" },
        el("span", { class: "value", id: "kpi-value" }, fmtNum(res.current)),
        badge(res.pct_change),
        el("span", { class: "muted" }, `${res.change > 0 ? "+" : ""}${fmtNum(res.change)} vs ${fmtNum(res.previous)} (${fmtDate(res.previous_start)}${res.previous_end !== res.previous_start ? " – " + fmtDate(res.previous_end) : ""})`),
      ),
      el("p", { class: "narrative", id: "period-narrative" }, res.narrative),
      ptd.error
        ? null
        : el("div", { style: "margin-top:10px" }, el("div", { class: "row", style: "margin-bottom:4px" }, kindPill("Period to date", "gray")), el("p", { class: "narrative" }, ptd.narrative)),
      el("div", { class: "table-wrap", style: "margin-top:10px;max-height:200px" },
        el("table", { class: "data" },
          el("thead", {}, el("tr", {}, el("th", {}, "Ticker"), el("th", { class: "num" }, "Previous"), el("th", { class: "num" }, "Current"), el("th", { class: "num" }, "Change"))),
          el("tbody", {}, rows),
        ),
      ),
    );
  } catch (err) {
    if (gen === gens.period) showError(body, err);
  }
}

// ------------------------------------------------------------------ anomalies

async function renderAnomalies() {
  const gen = nextGen("anomalies");
  const chart = $("anomaly-chart");
  markBusy(chart);
  clear($("anomalies-status"));
  $("anomalies-narrative").textContent = "";
  clear($("anomaly-chips"));
  try {
    const res = await api("/api/insights/anomalies" + qs({ ...sel(), sensitivity: params().get("sensitivity") || "" }));
    if (gen !== gens.anomalies) return;
    anomalyResult = res;
    $("anomalies-narrative").textContent = res.narrative;
    await drawAnomalies(res);
    clear($("anomaly-chips"), res.anomalies.map((a) =>
      el("button", { type: "button", class: "anomaly-chip", "data-date": a.date, "aria-pressed": "false", onclick: () => openAnomaly(a.date, true) },
        `${fmtDate(a.date)} `, el("span", { class: "score", title: a.view }, `${a.market_wide ? "market" : a.scored_series} z ${a.score.toFixed(1)}`)),
    ));
    const wanted = params().get("anomaly");
    if (wanted && res.anomalies.some((a) => a.date === wanted)) openAnomaly(wanted, false);
    else showContribHint(res);
    markDrawn(chart, "anomalies");
  } catch (err) {
    if (gen !== gens.anomalies) return;
    showError($("anomalies-status"), err);
    window.Plotly?.purge(chart);
    clear($("contrib"));
    markDrawn(chart, "anomalies");
  }
}

function showContribHint(res) {
  clear($("contrib"), el("p", { class: "muted" }, res.anomalies.length
    ? "Click an anomaly on the chart or in the list to see which tickers drove it."
    : "No anomaly in this window at this sensitivity; raise the sensitivity to see smaller ones."));
}

function drawAnomalies(res) {
  const dates = totalSeries ? totalSeries.dates : [];
  const total = totalSeries && totalSeries.total ? totalSeries.total.values : [];
  const byDate = new Map(dates.map((d, i) => [d, total[i]]));
  const xs = res.anomalies.map((a) => a.date);
  const traces = [
    {
      type: "scatter", mode: "lines", name: "Total close", x: dates, y: total,
      line: { color: "#3b6fd8", width: 1.5 }, hovertemplate: "%{y:,.2f}",
    },
    {
      type: "scatter", mode: "markers", name: "Anomaly", x: xs,
      y: res.anomalies.map((a) => byDate.get(a.date) ?? a.actual),
      customdata: res.anomalies.map((a) => [a.score, a.pct_deviation, a.top.map((c) => c.ticker).join(", ")]),
      marker: {
        color: res.anomalies.map((a) => (a.direction === "lower" ? "#c8372d" : "#16845b")),
        size: res.anomalies.map((a) => Math.min(18, 8 + a.score / 2)),
        line: { color: "#fff", width: 1.5 },
        symbol: "circle",
      },
      hovertemplate: "anomaly · z %{customdata[0]:.1f} · %{customdata[1]:+.2f}% vs expected · driven by %{customdata[2]}<extra></extra>",
    },
  ];
  const lay = layout({
    showlegend: false,
    // Unified hover: a click anywhere on an anomaly's day (not only on its marker) opens it.
    hovermode: "x unified",
    margin: { l: 60, r: 18, t: 8, b: 34 },
    yaxis: axis({ tickformat: ",~r", title: { text: "Total close", font: { size: 11, color: "#667085" } } }),
  });
  return plot($("anomaly-chart"), traces, lay).then((gd) => {
    if (!gd.__tlClick) {
      gd.on("plotly_click", (ev) => {
        const pt = ev.points.find((p) => p.curveNumber === 1);
        if (pt) openAnomaly(String(pt.x).slice(0, 10), true);
      });
      gd.__tlClick = true;
    }
    return gd;
  });
}

function openAnomaly(date, push) {
  if (!anomalyResult) return;
  const a = anomalyResult.anomalies.find((x) => x.date === date);
  if (!a) return;
  if (push) setParams({ anomaly: date });
  document.querySelectorAll("#anomaly-chips .anomaly-chip").forEach((c) => c.setAttribute("aria-pressed", String(c.dataset.date === date)));
  const rows = a.contributions.map((c) =>
    el("tr", { class: c.anomalous ? "selected" : "" },
      el("td", {}, el("span", { class: "tdot", style: `background:${tickerColor(c.ticker)}` }), el("b", {}, c.ticker)),
      el("td", { class: "num" }, fmtNum(c.previous)),
      el("td", { class: "num" }, fmtNum(c.actual)),
      el("td", { class: "num" }, fmtNum(c.expected)),
      el("td", { class: `num ${changeClass(c.contribution)}` }, `${c.contribution > 0 ? "+" : ""}${fmtNum(c.contribution)}`),
      el("td", { class: `num ${changeClass(c.pct_deviation)}` }, fmtPct(c.pct_deviation)),
      el("td", { class: "num" }, c.z === null ? "n/a" : c.z.toFixed(1)),
      el("td", {}, c.anomalous ? el("span", { class: "pill bad" }, "unusual") : el("span", { class: "pill" }, "normal")),
    ),
  );
  clear($("contrib"),
    el("div", { class: "row", style: "margin-bottom:6px" },
      kindPill("Anomaly", "down"),
      el("b", {}, fmtDate(a.date)),
      el("span", { class: "muted" }, `score ${a.score.toFixed(1)} · total ${fmtNum(a.actual)} vs ${fmtNum(a.expected)} expected`),
      badge(a.pct_deviation),
      a.market_wide ? el("span", { class: "pill bad" }, "market-wide move") : null,
    ),
    el("p", { class: "narrative", id: "anomaly-narrative" }, a.narrative),
    el("h3", { class: "section-title" }, "Contributors, ranked by contribution"
      + (a.contributors > a.contributions.length
        ? ` (the leading ${a.contributions.length} of ${a.contributors.toLocaleString()}; ${a.unusual.toLocaleString()} moved unusually)`
        : "")),
    el("div", { class: "table-wrap" },
      el("table", { class: "data", id: "contrib-table" },
        el("thead", {}, el("tr", {},
          el("th", {}, "Ticker"), el("th", { class: "num" }, "Previous"), el("th", { class: "num" }, "Actual"), el("th", { class: "num" }, "Expected"),
          el("th", { class: "num" }, "Contribution"), el("th", { class: "num" }, "Deviation"), el("th", { class: "num" }, "z"), el("th", {}, ""))),
        el("tbody", {}, rows),
      ),
    ),
  );
  const gd = $("anomaly-chart");
  if (window.Plotly && gd.data) {
    window.Plotly.relayout(gd, {
      shapes: [{ type: "line", x0: a.date, x1: a.date, yref: "paper", y0: 0, y1: 1, line: { color: "#c8372d", width: 1, dash: "dot" } }],
    });
  }
}

// ------------------------------------------------------------------ forecast

async function renderForecast() {
  const gen = nextGen("forecast");
  const chart = $("forecast-chart");
  markBusy(chart);
  clear($("forecast-status"));
  $("forecast-narrative").textContent = "";
  const ticker = $("forecast-ticker").value;
  const horizon = $("horizon").value;
  const origin = $("forecast-origin").value;
  try {
    const res = await api("/api/insights/forecast" + qs({ ticker, horizon, origin }));
    const from = new Date(Date.parse(res.last_date) - 270 * 86400000).toISOString().slice(0, 10);
    const hist = await api("/api/bars" + qs({ tickers: ticker, start: from, end: res.last_date, measure: "close" }));
    if (gen !== gens.forecast) return;
    $("forecast-title").textContent = origin
      ? `${ticker} · ${res.horizon} trading days from ${fmtDate(res.last_date)}`
      : `${ticker} · next ${res.horizon} trading days`;
    $("forecast-narrative").textContent = res.narrative;
    const xs = [res.last_date, ...res.points.map((p) => p.date)];
    const at = (k) => [res.last_value, ...res.points.map((p) => p[k])];
    const color = tickerColor(ticker);
    const traces = [
      { type: "scatter", mode: "lines", name: ticker, x: hist.dates, y: hist.series[0].values, line: { color, width: 1.6 }, hovertemplate: "%{y:,.2f}" },
      { type: "scatter", mode: "lines", name: "95% low", x: xs, y: at("lo95"), line: { width: 0 }, showlegend: false, hovertemplate: "%{y:,.2f}" },
      { type: "scatter", mode: "lines", name: "95% interval", x: xs, y: at("hi95"), fill: "tonexty", fillcolor: "rgba(27,116,228,0.12)", line: { width: 0 }, hovertemplate: "%{y:,.2f}" },
      { type: "scatter", mode: "lines", name: "80% low", x: xs, y: at("lo80"), line: { width: 0 }, showlegend: false, hovertemplate: "%{y:,.2f}" },
      { type: "scatter", mode: "lines", name: "80% interval", x: xs, y: at("hi80"), fill: "tonexty", fillcolor: "rgba(27,116,228,0.24)", line: { width: 0 }, hovertemplate: "%{y:,.2f}" },
      { type: "scatter", mode: "lines", name: "Forecast", x: xs, y: at("point"), line: { color: "#0f1e36", width: 2, dash: "dash" }, hovertemplate: "%{y:,.2f}" },
    ];
    // From a past origin: what actually happened, beside the bands.
    const seen = res.points.filter((p) => p.actual !== null);
    if (seen.length) {
      traces.push({ type: "scatter", mode: "lines", name: "Actual", x: [res.last_date, ...seen.map((p) => p.date)], y: [res.last_value, ...seen.map((p) => p.actual)], line: { color, width: 2 }, hovertemplate: "%{y:,.2f}" });
    }
    const lay = layout({ margin: { l: 56, r: 14, t: 30, b: 34 }, yaxis: axis({ tickformat: ",~r" }) });
    await plot(chart, traces, lay);
    markDrawn(chart, "forecast");
  } catch (err) {
    if (gen !== gens.forecast) return;
    showError($("forecast-status"), err);
    window.Plotly?.purge(chart);
    markDrawn(chart, "forecast");
  }
}

// ------------------------------------------------------------------ more insights

async function renderMore() {
  const gen = nextGen("more");
  const body = $("more-body");
  showLoading(body);
  const s = sel();
  const ask = (path, extra = {}) => api(path + qs({ ...s, ...extra })).catch((e) => ({ error: e }));
  const [top, bottom, ext, grow] = await Promise.all([
    ask("/api/insights/ranked"),
    ask("/api/insights/ranked", { bottom: true }),
    ask("/api/insights/extremes"),
    ask("/api/insights/growth", { grain: "month" }),
  ]);
  if (gen !== gens.more) return;
  const item = (label, tone, res, id) =>
    el("div", { style: "margin-bottom:14px", id },
      el("div", { class: "row", style: "margin-bottom:4px" }, kindPill(label, tone)),
      res.error
        ? el("div", { class: "error-box" }, el("b", {}, (res.error.kind || "Error") + ": "), res.error.message)
        : el("p", { class: "narrative" }, res.narrative),
    );
  clear(body,
    item("Top ranked", "up", top, "ranked-top"),
    item("Bottom ranked", "down", bottom, "ranked-bottom"),
    item("Extremes", "gray", ext, "extremes"),
    item("Growth rate", "", grow, "growth"),
  );
}

// ------------------------------------------------------------------ recessions

function recovery(r) {
  if (r.recovered === null) return el("span", { class: "muted" }, "n/a (no history before)");
  if (!r.recovered) return el("span", { class: "pill bad" }, "not recovered");
  if (r.recovery_days === 0) return el("span", { class: "pill ok" }, "never below the peak");
  return el("span", {}, `${r.recovery_days} trading days (${fmtDate(r.recovery_date)})`);
}

function recessionRow(r, basket = false) {
  const pct = (x) => el("td", { class: `num ${changeClass(x)}`, "data-sort": x ?? "" }, fmtPct(x));
  return el("tr", { class: basket ? "basket" : "" },
    el("td", { class: "num", "data-sort": basket ? 999 : r.rank }, basket ? "" : String(r.rank)),
    el("td", { "data-sort": r.ticker }, basket ? el("b", {}, "Equal-weight basket") : [el("span", { class: "tdot", style: `background:${tickerColor(r.ticker)}` }), el("b", {}, r.ticker), r.partial ? el("span", { class: "muted" }, " (partial)") : null]),
    pct(r.return_pct),
    pct(r.max_drawdown_pct),
    el("td", { "data-sort": r.peak_date }, `${fmtDate(r.peak_date)} → ${fmtDate(r.trough_date)}`),
    el("td", { class: "num", "data-sort": r.volatility_pct ?? "" }, fmtPct(r.volatility_pct, { signed: false })),
    el("td", { class: "num down-text", "data-sort": r.worst_day_pct ?? "", title: fmtDate(r.worst_day) }, `${fmtPct(r.worst_day_pct)} · ${r.worst_day ? fmtDate(r.worst_day) : ""}`),
    el("td", { class: "num up-text", "data-sort": r.best_day_pct ?? "", title: fmtDate(r.best_day) }, `${fmtPct(r.best_day_pct)} · ${r.best_day ? fmtDate(r.best_day) : ""}`),
    el("td", { class: "num", "data-sort": r.beta ?? "" }, r.beta === null ? "n/a" : r.beta.toFixed(2)),
    el("td", { class: "num", "data-sort": r.correlation ?? "" }, r.correlation === null ? "n/a" : r.correlation.toFixed(2)),
    el("td", { "data-sort": r.recovery_days ?? 1e9 }, basket ? "" : recovery(r)),
  );
}

async function renderRecession() {
  const gen = nextGen("recession");
  clear($("recession-status"));
  $("recession-narrative").textContent = "";
  const table = $("recession-table");
  const period = $("recession-window").value;
  try {
    const res = await api("/api/insights/recessions" + qs({ period, tickers: sel().tickers }));
    if (gen !== gens.recession) return;
    $("recession-narrative").textContent = res.narrative;
    clear(table.tBodies[0], res.tickers.map((r) => recessionRow(r)));
    clear(table.tFoot, recessionRow(res.basket, true));
    table.querySelectorAll("th").forEach((th) => th.removeAttribute("aria-sort"));
  } catch (err) {
    if (gen !== gens.recession) return;
    showError($("recession-status"), err);
    clear(table.tBodies[0]);
    clear(table.tFoot);
  }
  renderCompare();
}

async function renderCompare() {
  const gen = nextGen("compare");
  const wrap = $("compare-wrap");
  try {
    const res = await api("/api/insights/recessions/compare" + qs({ tickers: sel().tickers }));
    if (gen !== gens.compare) return;
    const cell = (x) => el("td", { class: `num ${changeClass(x)}`, "data-sort": x ?? -1e99 }, x === null || x === undefined ? "–" : fmtPct(x));
    const head = el("tr", {},
      el("th", {}, "Window"), el("th", {}, "Dates"), el("th", { class: "num" }, "Basket return"), el("th", { class: "num" }, "Basket max drawdown"),
      el("th", {}, "Most resilient"), el("th", {}, "Hardest hit"),
      res.tickers.map((t) => el("th", { class: "num" }, t)),
    );
    const rows = res.windows.map((w) =>
      el("tr", { class: "clickable", onclick: () => { $("recession-window").value = w.name; setParams({ period: w.name }); renderRecession(); } },
        el("td", { "data-sort": w.label }, el("b", {}, w.label[0].toUpperCase() + w.label.slice(1))),
        el("td", { "data-sort": w.start }, `${fmtDate(w.start)} – ${fmtDate(w.end)}`),
        cell(w.basket ? w.basket.return_pct : null),
        cell(w.basket ? w.basket.max_drawdown_pct : null),
        el("td", {}, w.best || ""),
        el("td", {}, w.worst || ""),
        res.tickers.map((t) => cell(w.tickers[t] ? w.tickers[t].return_pct : null)),
      ),
    );
    const table = el("table", { class: "data", id: "compare-table" }, el("thead", {}, head), el("tbody", {}, rows));
    clear(wrap, table);
    sortable(table);
  } catch (err) {
    if (gen === gens.compare) showError(wrap, err);
  }
}

sortable($("recession-table"));
renderAll();
