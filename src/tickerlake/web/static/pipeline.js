// The Pipeline page: stream health (events/s, lag per partition for the sink and the live
// view, the sink's last commit, dead letters) and the last crawls and ETL runs, pushed by
// the server every 2 s over Server-Sent Events (/api/live/pipeline/events).

import { el, clear, fmtInt, fmtNum } from "./common.js";

const statusEl = document.getElementById("pipe-status");
let connected = false;
window.__pipeline = { messages: 0 };

function text(id, value) {
  document.getElementById(id).textContent = value;
}
function n(x) {
  return x === null || x === undefined ? "–" : fmtInt(x);
}
function age(s) {
  if (s === null || s === undefined) return "never";
  if (s < 120) return `${fmtNum(s, 1)} s ago`;
  if (s < 7200) return `${fmtNum(s / 60, 0)} min ago`;
  return `${fmtNum(s / 3600, 1)} h ago`;
}

function draw(msg) {
  const s = msg.stream || {};
  if (!connected) {
    statusEl.dataset.state = "disconnected";
    statusEl.textContent = "Disconnected from the server — reconnecting by itself…";
  } else if (s.problem) {
    statusEl.dataset.state = "waiting";
    clear(statusEl, `Stream ${s.topic}: ${s.problem}. Start the broker with `, el("code", {}, "tickerlake services up"), " and a stream with ", el("code", {}, "tickerlake stream replay --speed 60x"), ".");
  } else {
    statusEl.dataset.state = "live";
    statusEl.textContent = `${s.topic} → ${s.table} · read ${msg.at}`;
  }
  text("p-rate", n(s.events_per_s));
  text("p-sink-lag", n(s.sink_lag));
  text("p-live-lag", n(s.live_lag));
  text("p-commit", s.last_commit_at ? `${age(s.commit_age_s)} · ${n(s.last_commit_rows)} rows` : "never");
  text("p-dlq", s.dead_letters === null || s.dead_letters === undefined ? "no DLQ" : n(s.dead_letters));
  text("p-topic", `${s.topic || "topic"} partitions`);
  text("p-groups", `sink group ${s.sink_group || "?"} · live group ${s.live_group || "?"}`);
  clear(
    document.querySelector("#p-partitions tbody"),
    (s.partitions || []).map((p) =>
      el("tr", {}, ...[p.partition, p.high, p.sink_offset, p.sink_group_offset, p.sink_lag, p.live_offset, p.live_lag].map((v) => el("td", { class: "num" }, n(v)))),
    ),
  );
  const dead = s.latest_dead_letters || [];
  clear(
    document.getElementById("p-dead"),
    dead.length
      ? dead.map((d) => el("li", {}, el("div", {}, d.reason), el("div", { class: "when" }, `partition ${n(d.partition)} offset ${n(d.offset)} · ${d.rejected_at || ""}`)))
      : [el("li", { class: "muted" }, "None.")],
  );
  clear(
    document.querySelector("#p-etl tbody"),
    (msg.etl_runs || []).map((r) =>
      el(
        "tr",
        {},
        el("td", { class: "mono" }, String(r.run_id).slice(0, 12)),
        el("td", {}, r.at),
        el("td", {}, r.tables.map((t) => t.table).join(", ")),
        el("td", { class: "num" }, r.tables.some((t) => t.files !== null) ? n(r.tables.reduce((a, t) => a + (t.files || 0), 0)) : "–"),
        el("td", { class: "num" }, r.read === null ? "not recorded" : n(r.read)),
        el("td", { class: "num" }, n(r.loaded)),
        el("td", { class: "num" }, r.duplicates === null ? "not recorded" : n(r.duplicates)),
        el("td", { class: "num" }, n(r.quarantined)),
        el("td", {}, r.reconciles === null ? "–" : el("span", { class: `pill ${r.reconciles ? "ok" : "bad"}` }, r.reconciles ? "yes" : "no")),
      ),
    ),
  );
  clear(
    document.querySelector("#p-crawls tbody"),
    (msg.crawls || []).map((c) =>
      el(
        "tr",
        {},
        el("td", {}, c.started_at),
        el("td", { class: "num" }, n(c.files_scanned)),
        el("td", { class: "num" }, n(c.files_total)),
        el("td", {}, Object.entries(c.tables).filter(([, st]) => st !== "unchanged").map(([t, st]) => `${t} (${st})`).join(", ") || "unchanged"),
        el("td", {}, (c.problems || []).join("; ") || "–"),
      ),
    ),
  );
  if (msg.problem) document.querySelector("#p-etl tbody").append(el("tr", {}, el("td", { colspan: "9" }, msg.problem)));
}

let last = {};
let source = null;
let oneShot = false;
function connect() {
  source = new EventSource("/api/live/pipeline/events");
  source.addEventListener("open", () => {
    connected = true;
  });
  source.addEventListener("pipeline", (ev) => {
    window.__pipeline.messages += 1;
    connected = true;
    last = JSON.parse(ev.data);
    oneShot = Boolean(last.once);
    draw(last);
  });
  source.addEventListener("error", () => {
    // A server without a live view answers once and closes: that is not a lost connection.
    if (oneShot) {
      oneShot = false;
      return;
    }
    connected = false;
    draw(last);
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      setTimeout(connect, 2000);
    }
  });
}
connect();
