// Catalog page: curated (Iceberg) and raw (crawled) tables with schema, partitions, row
// counts and snapshots, and the last crawl's report (the Glue catalog console).
import { api, clear, el, fmtBytes, fmtInt, markBusy, markDrawn, params, qs, setParams, showError } from "./common.js";

const $ = (id) => document.getElementById(id);
let catalog = null;
let gen = 0;

function when(iso) {
  if (!iso) return "n/a";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short" });
}

function kindPill(t) {
  return t.kind === "raw"
    ? el("span", { class: "pill raw" }, `raw · ${t.format}`)
    : el("span", { class: "pill iceberg" }, "iceberg");
}

function renderList() {
  const chosen = params().get("table");
  const groups = [
    ["Curated (Iceberg)", catalog.tables.filter((t) => t.kind !== "raw")],
    ["Raw (crawled files)", catalog.tables.filter((t) => t.kind === "raw")],
  ];
  const items = [];
  for (const [label, tables] of groups) {
    items.push(el("li", { class: "group" }, label));
    for (const t of tables) {
      items.push(el("li", { class: t.name === chosen ? "active" : "", "data-table": t.name, tabindex: "0", onclick: () => choose(t.name, true) },
        el("span", { class: "tname" }, t.name),
        el("span", { class: "muted num", style: "font-size:12px" }, t.row_count === null ? "" : `${fmtInt(t.row_count)} rows`),
        t.error ? el("span", { class: "pill bad", title: t.error }, "error") : null,
      ));
    }
  }
  clear($("table-list"), items);
}

async function choose(name, push) {
  if (push) setParams({ table: name }, { push: true });
  document.querySelectorAll("#table-list li[data-table]").forEach((li) => li.classList.toggle("active", li.dataset.table === name));
  const g = ++gen;
  const body = $("detail-body");
  markBusy(body);
  $("detail-name").textContent = name;
  $("detail-query").href = "/sql" + qs({ q: `SELECT *\nFROM ${name}\nLIMIT 100` });
  try {
    const res = await api(`/api/catalog/tables/${encodeURIComponent(name)}`);
    if (g !== gen) return;
    renderDetail(res.table, res.snapshots);
  } catch (err) {
    if (g !== gen) return;
    showError(body, err);
  } finally {
    if (g === gen) markDrawn(body, "catalog");
  }
}

function renderDetail(t, snapshots) {
  clear($("detail-kind"), kindPill(t));
  const props = [
    ["Location", el("span", { class: "mono" }, t.location)],
    ["Format", t.format],
    ["Rows", t.row_count === null ? "not counted" : fmtInt(t.row_count)],
    ["Data files", `${fmtInt(t.files)} · ${fmtBytes(t.size_bytes)}`],
    ["Partitioned by", t.partition_keys.length ? t.partition_keys.join(", ") : "not partitioned"],
    ["Last updated", when(t.last_updated)],
  ];
  if (t.kind !== "raw") props.push(["Current snapshot", t.current_snapshot_id === null ? "none yet" : el("span", { class: "mono" }, String(t.current_snapshot_id))]);
  if (t.error) props.push(["Error", el("span", { class: "down-text" }, t.error)]);
  const schema = el("table", { class: "data", id: "schema-table" },
    el("thead", {}, el("tr", {}, el("th", { class: "num" }, "#"), el("th", {}, "Column"), el("th", {}, "Type"), el("th", {}, "Nullable"), el("th", {}, ""))),
    el("tbody", {}, t.columns.map((c, i) =>
      el("tr", {},
        el("td", { class: "num muted" }, String(i + 1)),
        el("td", { class: "mono" }, el("b", {}, c.name)),
        el("td", { class: "mono" }, c.type),
        el("td", {}, c.nullable ? "yes" : el("b", {}, "required")),
        el("td", {}, c.partition ? el("span", { class: "pill raw" }, "partition key") : ""),
      ))),
  );
  const parts = t.partitions.length
    ? [el("h3", { class: "section-title" }, `Partitions (${t.partitions.length})`), el("div", { class: "tag-list" }, t.partitions.map((p) => el("span", { class: "pill mono" }, p)))]
    : [];
  let snaps = [];
  if (t.kind !== "raw") {
    snaps = [
      el("h3", { class: "section-title" }, `Snapshots (${snapshots.length}) · Iceberg history, newest first`),
      snapshots.length
        ? el("div", { class: "table-wrap", style: "max-height:320px" }, el("table", { class: "data", id: "snapshot-table" },
            el("thead", {}, el("tr", {}, el("th", {}, "Snapshot"), el("th", {}, "Committed"), el("th", {}, "Operation"),
              el("th", { class: "num" }, "Added rows"), el("th", { class: "num" }, "Total rows"), el("th", { class: "num" }, "Files"), el("th", {}, "Written by"))),
            el("tbody", {}, snapshots.map((s) =>
              el("tr", { class: s.current ? "selected" : "" },
                el("td", { class: "mono" }, String(s.snapshot_id), s.current ? el("span", { class: "pill ok", style: "margin-left:6px" }, "current") : null),
                el("td", {}, when(s.timestamp)),
                el("td", {}, s.operation),
                el("td", { class: "num" }, fmtInt(Number(s.summary["added-records"] || 0))),
                el("td", { class: "num" }, fmtInt(Number(s.summary["total-records"] || 0))),
                el("td", { class: "num" }, fmtInt(Number(s.summary["total-data-files"] || 0))),
                el("td", { class: "mono muted wrap", style: "font-size:11.5px" }, writer(s.summary)),
              )))))
        : el("p", { class: "muted" }, "No snapshot yet: the table is empty."),
    ];
  }
  clear($("detail-body"),
    el("dl", { class: "props" }, props.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("h3", { class: "section-title" }, `Schema (${t.columns.length} columns)`),
    el("div", { class: "table-wrap", style: "max-height:none" }, schema),
    parts,
    snaps,
  );
}

function writer(summary) {
  const keys = Object.keys(summary).filter((k) => k.startsWith("tickerlake."));
  return keys.map((k) => `${k.replace("tickerlake.", "")}=${summary[k]}`).join(" ") || "";
}

function renderCrawl(report) {
  const body = $("crawl-body");
  if (!report) {
    $("crawl-sub").textContent = "";
    clear(body, el("p", { class: "muted" }, "No crawl yet: run `tickerlake crawl` (or `tickerlake etl`)."));
    return;
  }
  if (report.error && !report.tables) {
    clear(body, el("div", { class: "error-box" }, report.error));
    return;
  }
  $("crawl-sub").textContent = `${when(report.started_at)} · ${fmtInt(report.files_scanned)} of ${fmtInt(report.files_total)} files scanned`;
  const statusPill = (s) => el("span", { class: `pill ${s === "new" ? "iceberg" : s === "removed" ? "bad" : s === "updated" ? "raw" : ""}` }, s);
  const rows = (report.tables || []).map((t) =>
    el("tr", {},
      el("td", { class: "mono" }, el("b", {}, `raw.${t.table}`)),
      el("td", {}, statusPill(t.status)),
      el("td", { class: "wrap" }, t.new_columns.length ? `${t.new_columns.length}: ${t.new_columns.join(", ")}` : "–"),
      el("td", { class: "wrap" }, t.type_changes.length ? t.type_changes.map(([c, a, b]) => `${c}: ${a} → ${b}`).join("; ") : "–"),
      el("td", { class: "wrap" }, t.new_partitions.length ? t.new_partitions.join(", ") : "–"),
      el("td", { class: "num" }, `+${t.files_added} / −${t.files_removed}`),
      el("td", { class: "wrap" }, t.problems.length ? el("span", { class: "down-text" }, t.problems.join("; ")) : "none"),
    ));
  clear(body,
    el("p", { class: "narrative" }, report.changed ? "The last crawl changed the catalog:" : "The last crawl found nothing new."),
    el("div", { class: "table-wrap", style: "margin-top:8px" }, el("table", { class: "data", id: "crawl-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Table"), el("th", {}, "Status"), el("th", {}, "New columns"), el("th", {}, "Type changes"),
        el("th", {}, "New partitions"), el("th", { class: "num" }, "Files"), el("th", {}, "Problems"))),
      el("tbody", {}, rows))),
  );
}

function renderSuspected(splits) {
  const body = $("suspected-body");
  if (!splits || !splits.length) {
    clear(body, el("p", { class: "muted" }, "None: every split in the lake is known (an actions file) or inferred from an adjusted close."));
  } else {
    const ratio = (r) => (r >= 1 ? `${r}:1` : `1:${Math.round(1 / r)}`);
    clear(body,
      el("p", { class: "narrative" },
        "A one-day jump matching a split ratio in prices without an adjusted close. The close is left as traded; " +
        "insights take the jump out of returns. Confirm a split with a corporate-actions file to apply it."),
      el("div", { class: "table-wrap", style: "margin-top:8px" }, el("table", { class: "data", id: "suspected-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "Ticker"), el("th", {}, "Date"), el("th", { class: "num" }, "Ratio"))),
        el("tbody", {}, splits.map((s) => el("tr", {},
          el("td", { class: "mono" }, el("b", {}, s.ticker)), el("td", {}, s.date), el("td", { class: "num" }, ratio(s.ratio))))))),
    );
  }
  markDrawn(body, "suspected");
}

async function start() {
  try {
    catalog = await api("/api/catalog");
  } catch (err) {
    showError($("catalog-status"), err);
    clear($("table-list"));
    markDrawn($("detail-body"), "catalog");
    return;
  }
  const curated = catalog.tables.filter((t) => t.kind !== "raw");
  const raw = catalog.tables.filter((t) => t.kind === "raw");
  $("stat-tables").textContent = `${curated.length} + ${raw.length} raw`;
  $("stat-rows").textContent = fmtInt(curated.reduce((a, t) => a + (t.row_count || 0), 0));
  $("stat-files").textContent = fmtInt(raw.reduce((a, t) => a + (t.files || 0), 0));
  $("stat-snapshots").textContent = fmtInt(curated.reduce((a, t) => a + (t.snapshot_count || 0), 0));
  $("stat-crawl").textContent = catalog.crawl && catalog.crawl.started_at ? when(catalog.crawl.started_at) : "never";
  renderList();
  renderCrawl(catalog.crawl);
  renderSuspected(catalog.suspected_splits);
  const wanted = params().get("table");
  const first = catalog.tables.find((t) => t.name === wanted) || catalog.tables.find((t) => t.name === "market.daily_bars") || catalog.tables[0];
  if (first) choose(first.name, false);
  else {
    clear($("detail-body"), el("p", { class: "muted" }, "The catalog is empty: run `tickerlake ingest sim` and `tickerlake etl`."));
    markDrawn($("detail-body"), "catalog");
  }
}

window.addEventListener("popstate", () => {
  if (catalog && params().get("table")) choose(params().get("table"), false);
});

start();
