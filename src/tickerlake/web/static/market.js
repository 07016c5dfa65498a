// Market page: line chart of the selected tickers, or candles + volume for one ticker.
import {
  api, axis, clear, el, fmtCompact, fmtDate, fmtNum, fmtPct, changeClass, layout, markBusy, markDrawn,
  params, plot, qs, Selection, setParams, showError, sortable, tickerColor,
} from "./common.js";

const chart = document.getElementById("market-chart");
const status = document.getElementById("chart-status");
const title = document.getElementById("chart-title");
const sub = document.getElementById("chart-sub");
const kindGroup = document.getElementById("chart-kind");
const scaleGroup = document.getElementById("y-scale");
const statsBody = document.querySelector("#stats-table tbody");
const statsSub = document.getElementById("stats-sub");
let generation = 0;

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
      const data = await api("/api/bars" + qs({ ...selection.apiParams(), measure }));
      if (gen !== generation) return;
      await drawLines(data);
      fillStats(data.series, measure);
    }
    if (gen === generation) markDrawn(chart, "market");
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
  const shapes = data.measure === "normalised"
    ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100, line: { color: "#98a2b3", width: 1, dash: "dot" } }]
    : [];
  const lay = layout({
    shapes,
    xaxis: axis({
      type: "date",
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
    xaxis: axis({ type: "date", rangeslider: { visible: false }, rangebreaks: rangebreaks(data.dates) }),
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

sortable(document.getElementById("stats-table"));
render();
