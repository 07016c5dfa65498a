// SQL page: an editor for read-only SQL (the Athena console), built-in and saved queries,
// results streamed page by page (cancellable), a chart of the results, CSV export and the
// lake's query history.
import {
  api, axis, clear, el, fmtInt, fmtNum, layout, markBusy, markDrawn, params, plot, setParams, showError, tickerColor,
} from "./common.js";

const $ = (id) => document.getElementById(id);
const NAMED = JSON.parse($("tl-named").textContent);
const BY_NAME = Object.fromEntries(NAMED.map((q) => [q.name, { ...q, kind: "builtin" }]));
const PAGE_SIZE = 50;
const editor = $("editor");
const highlight = $("highlight");

let current = null; // the named query shown, if any
let result = null;
let page = 0;
let running = null;
let cancelKey = null;

// ------------------------------------------------------------------ syntax highlighting

const KEYWORDS = new Set((
  "select from where group by order having limit offset with as and or not in is null like ilike between case when " +
  "then else end join left right inner outer full cross on using union all distinct intersect except asc desc nulls " +
  "first last over partition rows range unbounded preceding following current row window qualify values cast " +
  "true false interval date timestamp describe show summarize explain pivot unpivot filter exists any some lateral " +
  "insert update delete drop create alter attach detach copy install load pragma set call export import table view"
).split(" "));

function escapeHtml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const TOKEN = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\$[A-Za-z_]\w*)|(\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)(?=\s*\()|([A-Za-z_][A-Za-z0-9_]*)/gi;

function highlightSql(text) {
  let out = "";
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    out += escapeHtml(text.slice(last, m.index));
    const [tok, com, str, ident, param, num, fn, word] = m;
    if (com) out += `<span class="tok-com">${escapeHtml(com)}</span>`;
    else if (str) out += `<span class="tok-str">${escapeHtml(str)}</span>`;
    else if (ident) out += escapeHtml(ident);
    else if (param) out += `<span class="tok-param">${escapeHtml(param)}</span>`;
    else if (num) out += `<span class="tok-num">${num}</span>`;
    else if (fn) out += KEYWORDS.has(fn.toLowerCase()) ? `<span class="tok-kw">${fn}</span>` : `<span class="tok-fn">${fn}</span>`;
    else if (word) out += KEYWORDS.has(word.toLowerCase()) ? `<span class="tok-kw">${word}</span>` : word;
    else out += escapeHtml(tok);
    last = m.index + tok.length;
  }
  out += escapeHtml(text.slice(last));
  // A trailing newline needs a character after it to take up a line in <pre>.
  highlight.innerHTML = out + "\n ";
  autosize();
  highlight.scrollTop = editor.scrollTop;
}

/** Grow the editor with its text (up to a limit; it scrolls beyond). */
function autosize() {
  editor.style.height = "auto";
  editor.style.height = `${Math.min(Math.max(editor.scrollHeight + 2, 190), 440)}px`;
}

editor.addEventListener("input", () => {
  highlightSql(editor.value);
  if (current && editor.value !== current.sql) $("query-title").textContent = `${current.name} (edited)`;
  else if (current) $("query-title").textContent = current.name;
});
editor.addEventListener("scroll", () => {
  highlight.scrollTop = editor.scrollTop;
});
editor.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
    e.preventDefault();
    run();
  } else if (e.key === "Tab" && !e.shiftKey) {
    e.preventDefault();
    const { selectionStart: s, selectionEnd: t } = editor;
    editor.setRangeText("    ", s, t, "end");
    highlightSql(editor.value);
  }
});

function setEditor(text) {
  editor.value = text;
  highlightSql(text);
}

// ------------------------------------------------------------------ named queries

const DEFAULTS = { start: "2022-04-01", end: "2022-06-30", tickers: "AAPL,MSFT" };

function showNamed(q, values = {}) {
  current = q;
  document.querySelectorAll("#named-list li, #saved-list li").forEach((li) => li.classList.toggle("active", li.dataset.name === q?.name));
  const box = $("params");
  if (!q) {
    box.classList.add("hidden");
    clear(box);
    $("query-title").textContent = "New query";
    return;
  }
  $("query-title").textContent = q.name;
  setEditor(q.sql);
  const fields = q.params.map((p) => {
    const type = p.type === "date" ? "date" : p.type === "int" || p.type === "float" ? "number" : "text";
    const value = values[p.name] ?? (p.optional ? "" : DEFAULTS[p.name] ?? "");
    return el("div", { class: "field" },
      el("label", { for: `param-${p.name}` }, `${p.name}${p.optional ? " (optional)" : ""}`),
      el("input", { type, id: `param-${p.name}`, "data-param": p.name, "data-type": p.type, value, title: p.doc, placeholder: p.type === "tickers" ? "AAPL,MSFT" : "" }),
    );
  });
  clear(box, fields.length ? fields : el("span", { class: "muted" }, "No parameters."));
  box.classList.toggle("hidden", !fields.length);
}

function paramValues() {
  const out = {};
  document.querySelectorAll("#params input[data-param]").forEach((input) => {
    const v = input.value.trim();
    if (!v) return;
    if (input.dataset.type === "tickers") out[input.dataset.param] = v.split(",").map((t) => t.trim().toUpperCase()).filter(Boolean);
    else if (input.dataset.type === "int") out[input.dataset.param] = Number.parseInt(v, 10);
    else if (input.dataset.type === "float") out[input.dataset.param] = Number(v);
    else out[input.dataset.param] = v;
  });
  return out;
}

document.querySelectorAll("#named-list li").forEach((li) => {
  const open = () => {
    showNamed(BY_NAME[li.dataset.name]);
    run();
  };
  li.addEventListener("click", open);
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter") open();
  });
});

// ------------------------------------------------------------------ running

/** The request body for the editor's content: the named query when unchanged, else the SQL. */
function requestBody() {
  const limit = Number($("limit").value);
  const timeout_s = Number($("timeout").value);
  if (current && editor.value === current.sql) return { named: current.name, params: paramValues(), limit, timeout_s };
  const body = { sql: editor.value, limit, timeout_s };
  if (current && /\$[A-Za-z_]/.test(editor.value)) body.params = paramValues();
  return body;
}

function urlState(body) {
  const state = { q: null, named: null, limit: body.limit === 1000 ? null : body.limit };
  for (const k of [...params().keys()]) if (k.startsWith("p.")) state[k] = null;
  if (body.named) {
    state.named = body.named;
    for (const [k, v] of Object.entries(body.params || {})) state[`p.${k}`] = Array.isArray(v) ? v.join(",") : v;
  } else {
    state.q = body.sql;
  }
  return state;
}

/** POST the query to the streaming endpoint; ``onPage`` gets the head, then each page of rows. */
async function streamQuery(body, signal, onPage) {
  const res = await fetch("/api/query/stream", {
    method: "POST", headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" }, body: JSON.stringify(body), signal,
  });
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    throw Object.assign(new Error(data.detail || `${res.status} ${res.statusText}`), { kind: data.error || "HTTPError", status: res.status });
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim()) onPage(JSON.parse(line));
    }
    if (done) return;
  }
}

function setRunning(on) {
  $("run").disabled = on;
  $("cancel").classList.toggle("hidden", !on);
}

async function run({ push = true } = {}) {
  const body = requestBody();
  if (!body.named && !body.sql.trim()) {
    showError($("query-error"), { kind: "Empty", message: "write a SQL statement first" });
    return;
  }
  if (running) running.abort();
  running = new AbortController();
  const signal = running.signal;
  cancelKey = `q${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
  body.cancel_key = cancelKey;
  setParams(urlState(body), { push });
  clear($("query-error"));
  setRunning(true);
  $("status").textContent = "Running…";
  markBusy($("results-wrap"));
  const started = performance.now();
  try {
    let done = null;
    await streamQuery(body, signal, (line) => {
      if (line.columns) {
        result = { ...line, rows: [] };
        page = 0;
        renderTable();
      } else if (line.rows) {
        result.rows.push(...line.rows);
        // The first page is shown as soon as it arrives; later pages extend the pager.
        if (result.rows.length <= PAGE_SIZE || result.rows.length === line.rows.length) renderTable();
        else renderPager();
        $("status").textContent = `${fmtInt(result.rows.length)} rows so far…`;
      } else if (line.error) {
        throw Object.assign(new Error(line.detail), { kind: line.error });
      } else if (line.done) {
        done = line;
      }
    });
    Object.assign(result, done);
    renderTable();
    setupChart();
    const note = done.truncated ? ` · truncated at the ${fmtInt(result.limit)}-row limit` : "";
    $("status").innerHTML = `<b>${fmtInt(done.row_count)}</b> row${done.row_count === 1 ? "" : "s"} in <b>${fmtNum(done.elapsed_ms, 1)} ms</b>${note}`;
  } catch (err) {
    if (err.name === "AbortError") return;
    result = null;
    showError($("query-error"), err);
    clear($("results-wrap"));
    $("pager").classList.add("hidden");
    $("status").textContent = `${err.message === "query cancelled" ? "cancelled" : "failed"} after ${fmtNum(performance.now() - started, 0)} ms`;
  } finally {
    if (!signal.aborted) {
      setRunning(false);
      markDrawn($("results-wrap"), "sql");
      loadHistory();
    }
  }
}

$("run").addEventListener("click", run);
$("cancel").addEventListener("click", async () => {
  // The server stops the query; its answer (400 "query cancelled") then ends the run.
  await api("/api/query/cancel", { method: "POST", body: { cancel_key: cancelKey } }).catch(() => null);
});

// ------------------------------------------------------------------ results table

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL.*)$/i;
const TEMPORAL = /^(DATE|TIMESTAMP.*|TIME)$/i;

function cellText(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 6 });
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function renderTable() {
  const wrap = $("results-wrap");
  if (!result) return;
  const types = result.types;
  const head = el("tr", {}, result.columns.map((c, i) =>
    el("th", { class: NUMERIC.test(types[i] || "") ? "num" : "", title: types[i] || "" }, c)));
  const rows = result.rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((row) =>
    el("tr", {}, row.map((v, i) => {
      const text = cellText(v);
      const cls = [NUMERIC.test(types[i] || "") ? "num" : "", text === null ? "null" : ""].join(" ").trim();
      return el("td", { class: cls || null }, text === null ? "NULL" : text);
    })));
  clear(wrap, el("table", { class: "data results-table", id: "results-table" }, el("thead", {}, head), el("tbody", {}, rows)));
  renderPager();
}

function renderPager() {
  const pages = Math.max(1, Math.ceil(result.rows.length / PAGE_SIZE));
  $("pager").classList.toggle("hidden", result.rows.length <= PAGE_SIZE);
  const first = result.rows.length ? page * PAGE_SIZE + 1 : 0;
  const last = Math.min((page + 1) * PAGE_SIZE, result.rows.length);
  $("pager-info").textContent = `Rows ${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(result.rows.length)} · page ${page + 1} of ${pages}`;
  $("page-prev").disabled = page === 0;
  $("page-next").disabled = page >= pages - 1;
}

$("page-prev").addEventListener("click", () => {
  page = Math.max(0, page - 1);
  renderTable();
});
$("page-next").addEventListener("click", () => {
  page += 1;
  renderTable();
});

// ------------------------------------------------------------------ chart

function selectOptions(select, options, value) {
  clear(select, options.map(([v, label]) => el("option", { value: v }, label)));
  select.value = value;
}

/** Guess a chart: x = first date (else first text) column, y = first number, split by a text column. */
function setupChart() {
  if (!result) return;
  const cols = result.columns.map((c, i) => ({ name: c, i, type: result.types[i] || "" }));
  const numeric = cols.filter((c) => NUMERIC.test(c.type));
  const temporal = cols.filter((c) => TEMPORAL.test(c.type));
  const text = cols.filter((c) => !NUMERIC.test(c.type) && !TEMPORAL.test(c.type));
  const x = temporal[0] || text[0] || cols[0];
  const y = numeric.find((c) => c !== x) || numeric[0];
  const split = temporal.length && text.length ? text[0] : null;
  const all = cols.map((c) => [String(c.i), c.name]);
  selectOptions($("chart-x"), all, x ? String(x.i) : "0");
  selectOptions($("chart-y"), numeric.map((c) => [String(c.i), c.name]), y ? String(y.i) : "");
  selectOptions($("chart-split"), [["", "none"], ...text.map((c) => [String(c.i), c.name])], split ? String(split.i) : "");
  $("chart-type").value = temporal.includes(x) ? "line" : "bar";
  if (!$("pane-chart").classList.contains("hidden")) drawChart();
}

async function drawChart() {
  const node = $("results-chart");
  markBusy(node);
  if (!result || $("chart-y").value === "") {
    window.Plotly?.purge(node);
    clear(node, el("div", { class: "loading" }, "No numeric column to chart."));
    markDrawn(node, "sql-chart");
    return;
  }
  const xi = Number($("chart-x").value);
  const yi = Number($("chart-y").value);
  const si = $("chart-split").value === "" ? null : Number($("chart-split").value);
  const kind = $("chart-type").value;
  const groups = new Map();
  for (const row of result.rows) {
    const key = si === null ? result.columns[yi] : String(row[si]);
    if (!groups.has(key)) groups.set(key, { x: [], y: [] });
    const g = groups.get(key);
    g.x.push(row[xi]);
    g.y.push(row[yi]);
  }
  const traces = [...groups.entries()].slice(0, 30).map(([name, g], k) => ({
    type: kind === "bar" ? "bar" : "scatter",
    mode: kind === "scatter" ? "markers" : "lines",
    name,
    x: g.x,
    y: g.y,
    marker: { color: si === null ? "#3b6fd8" : tickerColor(name) },
    line: { color: si === null ? "#3b6fd8" : tickerColor(name), width: 1.6 },
    legendrank: k,
  }));
  const temporal = TEMPORAL.test(result.types[xi] || "");
  const lay = layout({
    margin: { l: 60, r: 16, t: 30, b: 40 },
    showlegend: traces.length > 1,
    barmode: "group",
    xaxis: axis({ type: temporal ? "date" : "-", title: { text: result.columns[xi], font: { size: 11, color: "#667085" } } }),
    yaxis: axis({ title: { text: result.columns[yi], font: { size: 11, color: "#667085" } } }),
  });
  clear(node);
  await plot(node, traces, lay);
  markDrawn(node, "sql-chart");
}

for (const id of ["chart-x", "chart-y", "chart-split", "chart-type"]) $(id).addEventListener("change", drawChart);

function showTab(name) {
  $("tab-table").setAttribute("aria-selected", String(name === "table"));
  $("tab-chart").setAttribute("aria-selected", String(name === "chart"));
  $("pane-table").classList.toggle("hidden", name !== "table");
  $("pane-chart").classList.toggle("hidden", name !== "chart");
  if (name === "chart") drawChart();
}
$("tab-table").addEventListener("click", () => showTab("table"));
$("tab-chart").addEventListener("click", () => showTab("chart"));

// ------------------------------------------------------------------ export and share

$("export").addEventListener("click", async () => {
  const body = requestBody();
  clear($("query-error"));
  try {
    const res = await fetch("/api/query/csv", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      throw Object.assign(new Error(data.detail || res.statusText), { kind: data.error || "HTTPError" });
    }
    const blob = await res.blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `${exportName(body)}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    showError($("query-error"), err);
  }
});

$("share").addEventListener("click", async () => {
  setParams(urlState(requestBody()));
  try {
    await navigator.clipboard.writeText(location.href);
    $("share").textContent = "Link copied";
  } catch {
    $("share").textContent = "Link in the address bar";
  }
  setTimeout(() => ($("share").textContent = "Copy link"), 1800);
});

// ------------------------------------------------------------------ file names of exports

/** The export's file name: the query and its parameters, e.g. tickerlake-drawdown-2022-04-01-2022-06-30-AAPL-MSFT. */
function exportName(body) {
  const parts = ["tickerlake", body.named || "query"];
  for (const v of Object.values(body.params || {})) parts.push(Array.isArray(v) ? v.join("-") : String(v));
  return parts.join("-").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120);
}

// ------------------------------------------------------------------ saved queries (in the lake)

async function loadSaved() {
  let saved = [];
  try {
    saved = await api("/api/saved");
  } catch (err) {
    clear($("saved-list"), el("li", { class: "muted" }, err.message));
    return;
  }
  for (const name of Object.keys(BY_NAME)) if (BY_NAME[name].kind === "saved") delete BY_NAME[name];
  for (const q of saved) BY_NAME[q.name] = q;
  $("saved-empty").classList.toggle("hidden", saved.length > 0);
  clear($("saved-list"), saved.map((q) =>
    el("li", { "data-name": q.name, tabindex: "0", class: current?.name === q.name ? "active" : null, onclick: () => { showNamed(BY_NAME[q.name]); run(); } },
      el("div", { class: "name" }, q.name),
      el("div", { class: "desc" }, q.description || q.sql.replace(/\s+/g, " ")))));
}

const PARAM_TYPES = ["text", "date", "int", "float", "tickers"];

/** The $name parameters of the SQL, in order of first use (string literals and comments skipped). */
function sqlParams(sql) {
  const names = [];
  const code = sql.replace(/'(?:[^']|'')*'|--[^\n]*|\/\*[\s\S]*?\*\//g, " ");
  for (const m of code.matchAll(/\$([A-Za-z_]\w*)/g)) if (!names.includes(m[1])) names.push(m[1]);
  return names;
}

/** A parameter's type: as declared by the query shown, else guessed from its name. */
function guessType(name) {
  const known = (current?.params || []).find((p) => p.name === name);
  if (known) return known.type;
  if (/^(start|end|date|day|from|to|since|until)(_|$)/i.test(name) || /_(date|day)$/i.test(name)) return "date";
  if (/^tickers?$/i.test(name)) return "tickers";
  if (/^(n|limit|top|days|count)$/i.test(name)) return "int";
  return "text";
}

/** A type chooser per parameter of the editor's SQL. */
function renderSaveParams() {
  clear($("save-params"), sqlParams(editor.value).map((name) =>
    el("label", {}, `$${name}`,
      el("select", { "data-param": name }, PARAM_TYPES.map((t) => el("option", { value: t, selected: t === guessType(name) }, t))))));
}

function openSave() {
  const form = $("save-form");
  const editing = current?.kind === "saved";
  $("save-name").value = editing ? current.name : "";
  $("save-desc").value = editing ? current.description : "";
  renderSaveParams();
  $("save-delete").classList.toggle("hidden", !editing);
  form.classList.remove("hidden");
  $("save-name").focus();
}

$("save").addEventListener("click", openSave);
editor.addEventListener("input", () => {
  if (!$("save-form").classList.contains("hidden")) renderSaveParams();
});
$("save-close").addEventListener("click", () => $("save-form").classList.add("hidden"));
$("save-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("save-name").value.trim();
  const sql = editor.value;
  const declared = [...document.querySelectorAll("#save-params select")].map((select) => {
    const known = (current?.params || []).find((p) => p.name === select.dataset.param);
    return { name: select.dataset.param, type: select.value, optional: known?.optional ?? false, doc: known?.doc ?? "" };
  });
  const body = { name, sql, description: $("save-desc").value, params: declared, replace: BY_NAME[name]?.kind === "saved" };
  clear($("query-error"));
  try {
    const saved = await api("/api/saved", { method: "POST", body });
    BY_NAME[saved.name] = saved;
    await loadSaved();
    showNamed(saved, paramValuesAsText());
    $("save-form").classList.add("hidden");
    $("status").textContent = `saved as ${saved.name}`;
  } catch (err) {
    showError($("query-error"), err);
  }
});
$("save-delete").addEventListener("click", async () => {
  if (current?.kind !== "saved" || !window.confirm(`Delete the saved query ${current.name} for everyone on this lake?`)) return;
  try {
    await api(`/api/saved/${encodeURIComponent(current.name)}`, { method: "DELETE" });
    const sql = editor.value;
    showNamed(null);
    setEditor(sql);
    $("save-form").classList.add("hidden");
    await loadSaved();
  } catch (err) {
    showError($("query-error"), err);
  }
});

function paramValuesAsText() {
  const out = {};
  document.querySelectorAll("#params input[data-param]").forEach((input) => (out[input.dataset.param] = input.value));
  return out;
}

// ------------------------------------------------------------------ history (kept in the lake)

async function loadHistory() {
  let items = [];
  try {
    items = await api("/api/history?limit=30");
  } catch {
    items = [];
  }
  $("history-empty").classList.toggle("hidden", items.length > 0);
  clear($("history-list"), items.map((h) =>
    el("li", { title: h.sql, onclick: () => reopen(h) },
      el("div", { class: "sql" }, h.named ? `${h.named}(${Object.entries(h.params || {}).map(([k, v]) => `${k}=${v}`).join(", ")})` : h.sql.replace(/\s+/g, " ")),
      el("div", { class: "meta" },
        new Date(h.started_at).toLocaleTimeString(),
        " · ",
        el("span", { class: h.status === "ok" ? "status-ok" : h.status === "cancelled" ? "status-cancelled" : "status-bad" }, h.status),
        " · ",
        h.error ? el("span", { class: "bad" }, h.error.slice(0, 80)) : `${fmtInt(h.row_count)} rows · ${fmtNum(h.duration_ms, 0)} ms`,
        h.user ? ` · ${h.user}` : ""),
    )));
}

function reopen(h) {
  if (h.named && BY_NAME[h.named]) {
    const values = {};
    for (const [k, v] of Object.entries(h.params || {})) values[k] = Array.isArray(v) ? v.join(",") : v;
    showNamed(BY_NAME[h.named], values);
  } else {
    showNamed(null);
    setEditor(h.sql || "");
  }
  run();
}

$("history-clear").addEventListener("click", async () => {
  if (!window.confirm("Clear the query history of this lake for everyone?")) return;
  await api("/api/history", { method: "DELETE" }).catch((err) => showError($("query-error"), err));
  loadHistory();
});

// ------------------------------------------------------------------ tables list

async function loadTables() {
  try {
    const cat = await api("/api/catalog");
    clear($("sql-tables"), cat.tables.map((t) =>
      el("li", { title: `${t.columns.length} columns`, onclick: () => { showNamed(null); setEditor(`SELECT *\nFROM ${t.name}\nLIMIT 100`); run(); } },
        el("div", { class: "name" }, t.name, " ", el("span", { class: `pill ${t.kind === "raw" ? "raw" : "iceberg"}` }, t.kind === "raw" ? t.format : "iceberg")),
        el("div", { class: "desc" }, t.columns.map((c) => c.name).join(", ")),
      )));
  } catch (err) {
    clear($("sql-tables"), el("li", { class: "muted" }, err.message));
  }
}

// ------------------------------------------------------------------ start

function restore() {
  const p = params();
  if (p.get("limit")) $("limit").value = [...$("limit").options].some((o) => o.value === p.get("limit")) ? p.get("limit") : $("limit").value;
  if (p.get("named") && BY_NAME[p.get("named")]) {
    const values = {};
    for (const [k, v] of p.entries()) if (k.startsWith("p.")) values[k.slice(2)] = v;
    showNamed(BY_NAME[p.get("named")], values);
    return true;
  }
  showNamed(null);
  if (p.get("q")) {
    setEditor(p.get("q"));
    return true;
  }
  setEditor("SELECT ticker, count(*) AS days, min(date) AS first_day, max(date) AS last_day,\n       round(avg(close), 2) AS avg_close\nFROM market.daily_bars\nGROUP BY ticker\nORDER BY ticker");
  return false;
}

window.addEventListener("popstate", () => {
  if (restore()) run({ push: false });
});

loadHistory();
loadTables();
// Saved queries first: a link may name one.
loadSaved().then(() => {
  if (restore()) run({ push: false });
  else markDrawn($("results-wrap"), "sql");
});
