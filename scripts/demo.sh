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

step "6/6 serve: dashboard and JSON API (QuickSight, Athena console, Glue catalog) — Ctrl+C stops it"
exec .venv/bin/tickerlake --lake "$LAKE" serve --host 127.0.0.1 --port "$PORT"
