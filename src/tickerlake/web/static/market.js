// Market page: line chart of the selected tickers (with their total, and the recession
// windows shaded), or candles + volume for one ticker; a click on a day drills down to its
// movers and period-over-period cards; recession bars and drawdowns below. The zoom and the
// chosen day live in the URL.
import {
  api, axis, clear, el, fmtCompact, fmtDate, fmtNum, fmtPct, changeClass, layout, markBusy, markDrawn,
  params, plot, qs, Selection, setParams, showError, sortable, tickerColor, WINDOWS,
} from "./common.js";

const chart = document.getElementById("market-chart");
const status = document.getElementById("chart-status");
const title = document.getElementById("chart-title");
const sub = document.getElementById("chart-sub");
const kindGroup = document.getElementById("chart-kind");
const scaleGroup = document.getElementById("y-scale");
const statsBody = document.querySelector("#stats-table tbody");
const statsSub = document.getElementById("stats-sub");
const totalBtn = document.getElementById("total-toggle");
let generation = 0;
let chartEvents = false;

const selection = new Selection({ measure: true, onChange: render });

kindGroup.querySelectorAll("button").forEach((b) =>
  b.addEventListener("click", () => {
    setParams({ chart: b.dataset.value === "line" ? "line" : null }, { push: true });
    render();
  }),
);

scaleGroup.querySelectorAll("button").forEach((b) =>
  b.addEventListener("click", () => {
    setParams({ scale: b.dataset.value === "log" ? "log" : null }, { push: true });
    render();
  }),
);

totalBtn.addEventListener("click", () => {
  setParams({ total: totalOn() ? null : "1" }, { push: true });
  render();
});

/** Whether the total across the selected tickers is drawn (the study's "total close"). */
function totalOn() {
  return params().get("total") === "1";
}

/** Linear or logarithmic value axis (log reads decades of growth as the same slope). */
function yScale() {
  return params().get("scale") === "log" ? "log" : "linear";
}

/** Candles when exactly one ticker is selected (unless lines were asked for) and the measure is a price. */
function chartKind() {
  const one = selection.tickers.length === 1;
  const price = selection.measure !== "volume";
  return one && price && params().get("chart") !== "line" ? "candle" : "line";
}

const MEASURE_TITLES = {
  close: "Close",
  adj_close: "Adjusted close",
  volume: "Volume",
  normalised: "Performance, rebased to 100",
};

async function render() {
  const gen = ++generation;
  const kind = chartKind();
  const measure = selection.measure;
  const one = selection.tickers.length === 1;
  scaleGroup.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === yScale())));
  kindGroup.querySelectorAll("button").forEach((b) => {
    b.setAttribute("aria-pressed", String(b.dataset.value === kind));
    if (b.dataset.value === "candle") b.disabled = !one || measure === "volume";
  });
  totalBtn.setAttribute("aria-pressed", String(totalOn() && kind === "line"));
  totalBtn.disabled = kind !== "line" || measure === "normalised";
  markBusy(chart);
  clear(status);
  const span = selection.span();
  title.textContent = `${MEASURE_TITLES[measure] || measure} · ${selection.tickers.length === selection.all.length ? "all tickers" : selection.tickers.join(", ")}`;
  sub.textContent = `${fmtDate(span.start)} – ${fmtDate(span.end)}${span.label && span.label !== "custom window" ? " · " + span.label : ""}`;
  try {
    if (kind === "candle") {
      const p = selection.apiParams();
      const data = await api("/api/ohlc" + qs({ ticker: selection.tickers[0], window: p.window, start: p.start, end: p.end, measure }));
      if (gen !== generation) return;
      await drawCandles(data);
      fillStats([{ ticker: data.ticker, ...data }]);
    } else {
      const total = totalOn() && measure !== "normalised";
      const data = await api("/api/bars" + qs({ ...selection.apiParams(), measure, total: total ? "true" : "" }));
      if (gen !== generation) return;
      await drawLines(data);
      fillStats(total && data.total ? [...data.series, { ticker: "Total", ...data.total, first_date: data.dates[0], last_date: data.dates[data.dates.length - 1] }] : data.series, measure);
    }
    bindChartEvents();
    if (gen === generation) markDrawn(chart, "market");
    if (gen === generation) renderRecessions(gen);
    // The day's cards follow the ticker selection.
    if (gen === generation && params().get("day")) openDay();
  } catch (err) {
    if (gen !== generation) return;
    showError(status, err);
    window.Plotly?.purge(chart);
    clear(statsBody);
    markDrawn(chart, "market");
  }
}

function drawLines(data) {
  const volume = data.measure === "volume";
  const traces = data.series.map((s) => ({
    type: "scatter",
    mode: "lines",
    name: s.ticker,
    x: data.dates,
    y: s.values,
    line: { color: tickerColor(s.ticker), width: 1.6 },
    hovertemplate: volume ? "%{y:,.0f}" : "%{y:,.2f}",
    connectgaps: false,
  }));
  if (data.total) {
    traces.push({
      type: "scatter", mode: "lines", name: `Total ${volume ? "volume" : "close"}`, x: data.dates, y: data.total.values,
      yaxis: "y2", line: { color: "#1c2635", width: 2, dash: "dot" }, hovertemplate: volume ? "%{y:,.0f}" : "%{y:,.2f}",
    });
  }
  const shapes = data.measure === "normalised"
    ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100, line: { color: "#98a2b3", width: 1, dash: "dot" } }]
    : [];
  shapes.push(...windowShapes(data.dates[0], data.dates[data.dates.length - 1]));
  const lay = layout({
    shapes,
    xaxis: axis({
      type: "date",
      range: zoomRange(),
      rangeselector: {
        x: 1, xanchor: "right", y: 1.02, yanchor: "bottom",
        bgcolor: "#f4f6f9", activecolor: "#dbe8fb", font: { size: 11 },
        buttons: [
          { count: 1, label: "1M", step: "month", stepmode: "backward" },
          { count: 6, label: "6M", step: "month", stepmode: "backward" },
          { count: 1, label: "YTD", step: "year", stepmode: "todate" },
          { count: 1, label: "1Y", step: "year", stepmode: "backward" },
          { step: "all", label: "All" },
        ],
      },
    }),
    yaxis: axis({ type: yScale(), tickformat: volume ? "~s" : ",~r", title: { text: data.label, font: { size: 11, color: "#667085" } } }),
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 12 } },
    margin: { l: 64, r: 18, t: 36, b: 34 },
  });
  if (data.total) {
    // The total is a sum of prices: its own axis on the right, so the tickers stay readable.
    lay.yaxis2 = axis({ overlaying: "y", side: "right", showgrid: false, tickformat: volume ? "~s" : ",.0f", title: { text: "Total", font: { size: 11, color: "#667085" } } });
  }
  return plot(chart, traces, lay);
}

/** Weekends, and weekdays without a bar (holidays), left out of the date axis so candles touch. */
function rangebreaks(dates) {
  const breaks = [{ bounds: ["sat", "mon"] }];
  if (dates.length < 2 || dates.length > 1500) return breaks;
  const have = new Set(dates);
  const missing = [];
  const end = Date.parse(dates[dates.length - 1]);
  for (let t = Date.parse(dates[0]); t <= end; t += 86400000) {
    const d = new Date(t);
    const iso = d.toISOString().slice(0, 10);
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6 && !have.has(iso)) missing.push(iso);
  }
  if (missing.length) breaks.push({ values: missing });
  return breaks;
}

function drawCandles(data) {
  const up = "#16845b";
  const down = "#c8372d";
  const colors = data.close.map((c, i) => (c >= data.open[i] ? "rgba(22,132,91,0.55)" : "rgba(200,55,45,0.55)"));
  const traces = [
    {
      type: "candlestick",
      name: data.ticker,
      x: data.dates,
      open: data.open,
      high: data.high,
      low: data.low,
      close: data.close,
      increasing: { line: { color: up, width: 1 }, fillcolor: up },
      decreasing: { line: { color: down, width: 1 }, fillcolor: down },
      yaxis: "y",
    },
    { type: "bar", name: "Volume", x: data.dates, y: data.volume, marker: { color: colors }, yaxis: "y2", hovertemplate: "%{y:,.0f}" },
  ];
  const lay = layout({
    showlegend: false,
    xaxis: axis({ type: "date", rangeslider: { visible: false }, rangebreaks: rangebreaks(data.dates), range: zoomRange() }),
    yaxis: axis({ domain: [0.3, 1], type: yScale(), tickformat: ",~r", title: { text: data.label, font: { size: 11, color: "#667085" } } }),
    yaxis2: axis({ domain: [0, 0.22], tickformat: "~s", title: { text: "Volume", font: { size: 11, color: "#667085" } } }),
    margin: { l: 64, r: 18, t: 16, b: 34 },
  });
  return plot(chart, traces, lay);
}

function fillStats(series, measure = "close") {
  const volume = measure === "volume";
  const f = (x) => (volume ? fmtCompact(x) : fmtNum(x));
  const rows = series.map((s) =>
    el("tr", {},
      el("td", { "data-sort": s.ticker }, el("span", { class: "tdot", style: `background:${tickerColor(s.ticker)}` }), el("b", {}, s.ticker)),
      el("td", { "data-sort": s.first_date || "" }, s.first_date ? fmtDate(s.first_date) : "no data"),
      el("td", { class: "num", "data-sort": s.first ?? "" }, f(s.first)),
      el("td", { "data-sort": s.last_date || "" }, s.last_date ? fmtDate(s.last_date) : ""),
      el("td", { class: "num", "data-sort": s.last ?? "" }, f(s.last)),
      el("td", { class: `num ${changeClass(s.change_pct)}`, "data-sort": s.change_pct ?? -1e99 }, fmtPct(s.change_pct)),
      el("td", { class: "num", "data-sort": s.min ?? "" }, f(s.min)),
      el("td", { class: "num", "data-sort": s.max ?? "" }, f(s.max)),
    ),
  );
  clear(statsBody, rows);
  statsSub.textContent = measure === "normalised" ? "values rebased to 100 at each ticker's first day in the window" : "";
}

// ------------------------------------------------------------------ recession windows shaded

const FAMILIES = [
  ["nber-", "NBER recessions", "rgba(200,55,45,0.10)"],
  ["study-", "The study's windows", "rgba(59,111,216,0.10)"],
  ["bear-", "Bear markets", "rgba(240,140,33,0.12)"],
  ["", "Your windows", "rgba(46,157,91,0.12)"],
];

/** Shaded rectangles for the named windows inside [first, last], one legend entry per family. */
function windowShapes(first, last) {
  if (!first || !last) return [];
  const chosen = params().get("window");
  const shown = new Set();
  const shapes = [];
  for (const w of Object.values(WINDOWS)) {
    // The window being looked at is the whole chart: shading it would hide nothing but the plot.
    if (w.name === chosen || w.end < first || w.start > last) continue;
    const [, family, color] = FAMILIES.find(([prefix]) => w.name.startsWith(prefix));
    shapes.push({
      type: "rect", xref: "x", yref: "paper", x0: w.start, x1: w.end, y0: 0, y1: 1, layer: "below",
      fillcolor: color, line: { width: 0 }, name: family, legendgroup: family, showlegend: !shown.has(family),
    });
    shown.add(family);
  }
  return shapes;
}

// ------------------------------------------------------------------ zoom in the URL, and drill-down

function zoomRange() {
  const z = params().get("zoom");
  if (!z || !z.includes("..")) return undefined;
  const [a, b] = z.split("..");
  return [a, b];
}

function day10(x) {
  return String(x).slice(0, 10);
}

function bindChartEvents() {
  if (chartEvents || !chart.on) return;
  chartEvents = true;
  chart.on("plotly_relayout", (ev) => {
    if (ev["xaxis.autorange"]) setParams({ zoom: null });
    else if (ev["xaxis.range[0]"] !== undefined) setParams({ zoom: `${day10(ev["xaxis.range[0]"])}..${day10(ev["xaxis.range[1]"])}` });
    else if (Array.isArray(ev["xaxis.range"])) setParams({ zoom: `${day10(ev["xaxis.range"][0])}..${day10(ev["xaxis.range"][1])}` });
  });
  chart.on("plotly_click", (ev) => {
    const point = ev.points && ev.points[0];
    if (!point) return;
    setParams({ day: day10(point.x) }, { push: true });
    openDay();
  });
}

const PERIODS = [["day", "Day over day"], ["week", "Week over week"], ["month", "Month over month"], ["year", "Year over year"]];

async function openDay() {
  const day = params().get("day");
  const card = document.getElementById("day-card");
  if (!day) {
    card.classList.add("hidden");
    return;
  }
  card.classList.remove("hidden");
  const body = document.getElementById("day-body");
  markBusy(body);
  document.getElementById("day-title").textContent = fmtDate(day);
  clear(document.getElementById("day-status"));
  const tickers = selection.apiParams().tickers;
  try {
    const [top, bottom, ...periods] = await Promise.all([
      api("/api/insights/movers" + qs({ date: day, n: 3, tickers })),
      api("/api/insights/movers" + qs({ date: day, n: 3, bottom: "true", tickers })),
      ...PERIODS.map(([grain]) => api("/api/insights/period" + qs({ date: day, grain, tickers }))),
    ]);
    if (params().get("day") !== day) return;
    document.getElementById("day-title").textContent = fmtDate(top.date);
    const moverRows = (res, label) => res.rows.map((r) =>
      el("tr", {},
        el("td", {}, label),
        el("td", { "data-sort": r.ticker }, el("span", { class: "tdot", style: `background:${tickerColor(r.ticker)}` }), el("b", {}, r.ticker)),
        el("td", { class: "num", "data-sort": r.previous }, fmtNum(r.previous)),
        el("td", { class: "num", "data-sort": r.current }, fmtNum(r.current)),
        el("td", { class: `num ${changeClass(r.pct_change)}`, "data-sort": r.pct_change }, fmtPct(r.pct_change))));
    clear(document.getElementById("day-movers"),
      el("table", { class: "data", id: "day-movers-table" },
        el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "Ticker"), el("th", { class: "num" }, "Previous"), el("th", { class: "num" }, "Close"), el("th", { class: "num" }, "Change"))),
        el("tbody", {}, moverRows(top, "top"), moverRows(bottom, "bottom"))));
    clear(document.getElementById("day-periods"), periods.map((p, i) =>
      el("div", { class: "period-card", "data-grain": PERIODS[i][0] },
        el("div", { class: "muted", style: "font-size:12px" }, PERIODS[i][1]),
        el("div", { class: "kpi" }, el("span", { class: "value" }, fmtNum(p.current)), el("span", { class: changeClass(p.pct_change) }, fmtPct(p.pct_change))),
        el("div", { class: "muted", style: "font-size:11.5px" }, `${fmtDate(p.period_start)}${p.period_end !== p.period_start ? " – " + fmtDate(p.period_end) : ""} vs ${fmtDate(p.previous_start)}${p.previous_end !== p.previous_start ? " – " + fmtDate(p.previous_end) : ""}: ${fmtNum(p.previous)}`))));
  } catch (err) {
    showError(document.getElementById("day-status"), err);
    clear(document.getElementById("day-movers"));
    clear(document.getElementById("day-periods"));
  }
  markDrawn(body, "day");
}

document.getElementById("day-close").addEventListener("click", () => {
  setParams({ day: null }, { push: true });
  openDay();
});
window.addEventListener("popstate", openDay);

// ------------------------------------------------------------------ recession charts

const metricGroup = document.getElementById("recession-metric");
metricGroup.querySelectorAll("button").forEach((b) =>
  b.addEventListener("click", () => {
    setParams({ rmetric: b.dataset.value === "return_pct" ? null : b.dataset.value }, { push: true });
    renderRecessions(generation);
  }),
);

let recessionKey = null;
let recessionData = null;

async function renderRecessions(gen) {
  const metric = params().get("rmetric") || "return_pct";
  metricGroup.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === metric)));
  const barsNode = document.getElementById("recession-chart");
  const ddNode = document.getElementById("drawdown-chart");
  markBusy(barsNode);
  markBusy(ddNode);
  const sel = selection.apiParams();
  try {
    const key = sel.tickers;
    if (key !== recessionKey || !recessionData) {
      recessionData = await api("/api/insights/recessions/compare" + qs({ tickers: sel.tickers }));
      recessionKey = key;
    }
    const closes = await api("/api/bars" + qs({ ...sel, measure: "close" }));
    if (gen !== generation) return;
    await drawRecessionBars(barsNode, recessionData, metric);
    await drawDrawdowns(ddNode, closes);
  } catch (err) {
    if (gen !== generation) return;
    showError(document.getElementById("recession-status"), err);
  }
  markDrawn(barsNode, "recession-bars");
  markDrawn(ddNode, "drawdowns");
}

function drawRecessionBars(node, cmp, metric) {
  const windows = cmp.windows.filter((w) => !w.error);
  const names = windows.map((w) => w.name);
  const series = [...cmp.tickers, "Basket"];
  const traces = series.map((t) => ({
    type: "bar",
    name: t === "Basket" ? "Equal-weight basket" : t,
    x: names,
    y: windows.map((w) => (t === "Basket" ? w.basket[metric] : w.tickers[t]?.[metric] ?? null)),
    marker: { color: t === "Basket" ? "#1c2635" : tickerColor(t) },
    hovertemplate: "%{y:.2f}%",
    customdata: windows.map((w) => w.label),
  }));
  const lay = layout({
    barmode: "group",
    hovermode: "x unified",
    margin: { l: 56, r: 18, t: 30, b: 60 },
    xaxis: axis({ type: "category", tickangle: -20 }),
    yaxis: axis({ ticksuffix: "%", title: { text: metric === "return_pct" ? "Return in the window" : "Maximum drawdown", font: { size: 11, color: "#667085" } } }),
  });
  return plot(node, traces, lay);
}

/** Each ticker's close against its running peak since the start of the selection, in percent. */
function drawdowns(values) {
  let peak = null;
  return values.map((v) => {
    if (v === null || v === undefined) return null;
    peak = peak === null ? v : Math.max(peak, v);
    return (v / peak) * 100 - 100;
  });
}

function drawDrawdowns(node, data) {
  const traces = data.series.map((s) => ({
    type: "scatter", mode: "lines", name: s.ticker, x: data.dates, y: drawdowns(s.values),
    line: { color: tickerColor(s.ticker), width: 1.4 }, hovertemplate: "%{y:.1f}%", connectgaps: false,
  }));
  const lay = layout({
    shapes: windowShapes(data.dates[0], data.dates[data.dates.length - 1]),
    yaxis: axis({ ticksuffix: "%", title: { text: "Drawdown", font: { size: 11, color: "#667085" } } }),
    xaxis: axis({ type: "date", range: zoomRange() }),
    margin: { l: 56, r: 18, t: 30, b: 34 },
  });
  return plot(node, traces, lay);
}

sortable(document.getElementById("stats-table"));
render();
