"""Locust users for the ``http-load`` scenarios: the dashboard's bars, insights and SQL calls.

Run by :mod:`reliability.scenarios.http` as ``python -m locust --headless -f <this file>``
against a ``tickerlake serve`` on loopback. Every answer must be a 200 with the JSON the
dashboard expects; anything else is a locust failure (0 is the bar).

Environment:
    TL_LOAD_TICKERS: Comma-separated tickers of the lake (default AAPL,MSFT,NVDA).
    TL_LOAD_START, TL_LOAD_END: A date span inside the lake (default 2006-01-01..2010-12-31).
    TL_LOAD_CHECKSUM: When set, users also run the one-statement count+checksum query.
    TL_LOAD_OBSERVED: File where each checksum answer is appended as a JSON line
        (``{"t": unix time, "n": rows, "checksum": value}``), for the snapshot-mix check.
    TL_LOAD_TOKENS: Comma-separated bearer tokens; each user takes the next one (a server
        with access control rate-limits SQL per token, as it would per person).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from typing import Any

from locust import HttpUser, between, task

TICKERS = [t for t in os.environ.get("TL_LOAD_TICKERS", "AAPL,MSFT,NVDA").split(",") if t]
START = os.environ.get("TL_LOAD_START", "2006-01-01")
END = os.environ.get("TL_LOAD_END", "2010-12-31")
CHECKSUM = bool(os.environ.get("TL_LOAD_CHECKSUM"))
OBSERVED = os.environ.get("TL_LOAD_OBSERVED", "")
# Must stay the same statement as reliability.scenarios.http.CHECKSUM_SQL (this file is
# loaded by locust on its own, so it cannot import the scenario module).
CHECKSUM_SQL = (
    "SELECT count(*) AS n, "
    "sum(hash(ticker, date, close, volume) % 1000000007) AS checksum "
    "FROM market.daily_bars"
)
SQL = [
    "SELECT ticker, count(*) AS days, avg(close) AS avg_close FROM market.daily_bars GROUP BY ticker ORDER BY ticker",
    "SELECT date, sum(volume) AS volume FROM market.daily_bars GROUP BY date ORDER BY volume DESC LIMIT 10",
    "SELECT ticker, max(high) AS high, min(low) AS low FROM market.daily_bars "
    "WHERE date BETWEEN DATE '2008-01-01' AND DATE '2008-12-31' GROUP BY ticker",
    "SELECT * FROM market.daily_bars ORDER BY date DESC, ticker LIMIT 50",
]
WINDOWS = [(START, END), ("2008-01-01", "2009-06-30"), ("2007-06-01", "2007-12-31")]

TOKENS = [t for t in os.environ.get("TL_LOAD_TOKENS", "").split(",") if t]
_next_token = itertools.count()
_write_lock = threading.Lock()


def _json_ok(resp: Any, *keys: str) -> dict[str, Any] | list[Any] | None:
    """The answer's JSON when it is a 200 holding ``keys``; marks the request failed otherwise."""
    if resp.status_code != 200:
        resp.failure(f"{resp.status_code}: {resp.text[:200]}")
        return None
    try:
        body = resp.json()
    except ValueError:
        resp.failure("200 without JSON")
        return None
    missing = [k for k in keys if not isinstance(body, dict) or k not in body]
    if missing:
        resp.failure(f"answer without {', '.join(missing)}")
        return None
    resp.success()
    return body


class DashboardUser(HttpUser):
    """One dashboard user: charts, insight panels and SQL, with short think times."""

    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        if TOKENS:
            token = TOKENS[next(_next_token) % len(TOKENS)]
            self.client.headers["Authorization"] = f"Bearer {token}"

    def _span(self) -> dict[str, str]:
        start, end = random.choice(WINDOWS)
        return {"start": start, "end": end}

    def _tickers(self) -> str:
        return ",".join(random.sample(TICKERS, k=random.randint(1, len(TICKERS))))

    @task(4)
    def bars(self) -> None:
        params = {
            **self._span(),
            "tickers": self._tickers(),
            "measure": random.choice(["close", "normalised"]),
        }
        with self.client.get("/api/bars", params=params, name="/api/bars", catch_response=True) as resp:
            _json_ok(resp)

    @task(2)
    def ohlc(self) -> None:
        params = {**self._span(), "ticker": random.choice(TICKERS)}
        with self.client.get("/api/ohlc", params=params, name="/api/ohlc", catch_response=True) as resp:
            _json_ok(resp)

    @task(2)
    def movers(self) -> None:
        params = {"n": random.randint(1, 3), "bottom": random.choice(["true", "false"])}
        with self.client.get(
            "/api/insights/movers", params=params, name="/api/insights/movers", catch_response=True
        ) as resp:
            _json_ok(resp)

    @task(2)
    def summary(self) -> None:
        with self.client.get(
            "/api/insights/summary", params=self._span(), name="/api/insights/summary", catch_response=True
        ) as resp:
            _json_ok(resp)

    @task(1)
    def anomalies(self) -> None:
        params = {**self._span(), "sensitivity": random.choice([0.3, 0.5, 0.8])}
        with self.client.get(
            "/api/insights/anomalies", params=params, name="/api/insights/anomalies", catch_response=True
        ) as resp:
            _json_ok(resp)

    @task(1)
    def forecast(self) -> None:
        params = {"ticker": random.choice(TICKERS), "horizon": random.choice([10, 30])}
        with self.client.get(
            "/api/insights/forecast", params=params, name="/api/insights/forecast", catch_response=True
        ) as resp:
            _json_ok(resp)

    @task(1)
    def recessions(self) -> None:
        with self.client.get(
            "/api/insights/recessions", name="/api/insights/recessions", catch_response=True
        ) as resp:
            _json_ok(resp)

    @task(4)
    def sql(self) -> None:
        body = {"sql": random.choice(SQL)}
        with self.client.post("/api/query", json=body, name="/api/query", catch_response=True) as resp:
            _json_ok(resp, "rows", "columns")

    @task(4)
    def checksum(self) -> None:
        if not CHECKSUM:
            return
        with self.client.post(
            "/api/query", json={"sql": CHECKSUM_SQL}, name="/api/query (checksum)", catch_response=True
        ) as resp:
            body = _json_ok(resp, "rows")
            if not isinstance(body, dict):
                return
            try:
                n, checksum = body["rows"][0]
            except (IndexError, TypeError, ValueError):
                resp.failure(f"checksum answer without one row: {str(body)[:200]}")
                return
            if OBSERVED:
                line = json.dumps({"t": time.time(), "n": n, "checksum": checksum}) + "\n"
                with _write_lock, open(OBSERVED, "a") as f:
                    f.write(line)
