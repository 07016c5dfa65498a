#!/usr/bin/env bash
# The demo behind `make demo`: the historical pipeline on the simulated market, insights,
# the streaming act on a real Kafka broker, then the web server in the foreground.
set -euo pipefail
LAKE="${1:-./lake}"
PORT="${2:-8050}"
TL=".venv/bin/tickerlake --lake $LAKE"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/6 ingest: simulated FANGMANT market 1997-06-01..2023-12-12 into the raw zone"
$TL ingest sim --seed 42

step "2/6 etl: crawl the raw zone, load curated Iceberg tables"
$TL etl

step "3/6 query: read-only SQL over the catalog (Athena's role)"
$TL tables
$TL query "SELECT ticker, min(date) AS first_day, max(date) AS last_day, count(*) AS days,
                  round(max(close), 2) AS max_close
           FROM market.daily_bars GROUP BY ticker ORDER BY ticker"
$TL query --named daily_total_close --param start=2008-10-01 --param end=2008-10-10

step "4/6 insights"
$TL insights movers --date 2009-01-28
$TL insights anomalies | head -24
$TL insights recessions --period study-2008 | head -30

printf '\nLake: %s  (raw zone: %s/raw, Iceberg warehouse: %s/warehouse, catalog: %s/catalog.db)\n' "$LAKE" "$LAKE" "$LAKE" "$LAKE"
printf 'Try:  .venv/bin/tickerlake --lake %s query "SELECT * FROM market.daily_bars LIMIT 5"\n' "$LAKE"

step "5/6 stream: replay ticks through a real Kafka broker into the lake, exactly once"
$TL stream demo

step "6/6 serve: dashboard and JSON API with a live replay running — Ctrl+C stops all of it"
# A lively market in the background (60x market time, five trades a minute per ticker) into a
# topic of its own, with a sink landing it, so the Live and Pipeline pages move at once.
TOPIC="live.demo.$(date -u +%Y%m%dT%H%M%S)"
LOGS="$LAKE/_state/demo"
mkdir -p "$LOGS"
$TL stream topics --create "$TOPIC" --partitions 8 >/dev/null
$TL stream replay --topic "$TOPIC" --from 2023-10-02 --to 2023-12-12 --ticks-per-bar 1950 --speed 60x --json \
  >"$LOGS/replay.log" 2>&1 &
REPLAY=$!
$TL stream sink --topic "$TOPIC" --max-interval 5 --json >"$LOGS/sink.log" 2>&1 &
SINK=$!
# Background jobs of a script ignore Ctrl+C: stop them with SIGTERM (the sink commits its open batch).
trap 'kill -TERM $REPLAY $SINK 2>/dev/null || true; wait $REPLAY $SINK 2>/dev/null || true' EXIT
printf 'Open http://127.0.0.1:%s/live (tape, candles, alerts) and /pipeline (lag, commits, runs).\n' "$PORT"
printf 'Replay and sink logs: %s; the broker keeps running (.venv/bin/tickerlake services down).\n' "$LOGS"
.venv/bin/tickerlake --lake "$LAKE" serve --host 127.0.0.1 --port "$PORT" --live --live-topic "$TOPIC"
