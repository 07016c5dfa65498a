"""The Live and Pipeline pages in a real browser on a real broker: the page says no stream
runs, a replay makes the tape and the candles advance, an injected jump raises an alert,
and after the server is killed and restarted the page reconnects by itself. Screenshots
go to ``artifacts/screenshots/live-*.png``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tickerlake.config import Settings
from tickerlake.services import down, up
from tickerlake.stream import _kafka
from tickerlake.stream.schema import encode_ticks

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OPEN_UTC = 1_584_451_800_000_000  # 2020-03-17T13:30:00Z, the 09:30 open (EDT)
MINUTE = 60_000_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dev Kafka broker of this module's own (the integration fixtures are not visible here)."""
    root = tmp_path_factory.mktemp("live-e2e")
    settings = Settings(lake=str(root / "lake"), state_dir=str(root / "state"), bootstrap_servers="")
    (kafka,) = up(settings, only="kafka")
    assert kafka.endpoint is not None
    try:
        yield kafka.endpoint
    finally:
        down(settings, only="kafka")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}


class Server:
    """``tickerlake serve --live`` as a user runs it, restartable on the same port."""

    def __init__(self, lake: Path, bootstrap: str, topic: str) -> None:
        self.args = [
            str(Path(sys.executable).with_name("tickerlake")),
            "--lake",
            str(lake),
            "serve",
            "--host",
            "127.0.0.1",
            "--json",
            "--live",
            "--live-topic",
            topic,
            "--live-from",
            "earliest",
            "--bootstrap-servers",
            bootstrap,
        ]
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        self.proc = subprocess.Popen(
            [*self.args, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"serve did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
        self.url = json.loads(line)["url"]
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
        return self.url

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def _wait_state(page: Any, state: str, timeout_ms: int = 30_000) -> None:
    """Wait for the status line's state; on timeout say what the page showed."""
    try:
        page.wait_for_function(
            f"document.getElementById('live-status').dataset.state === '{state}'", timeout=timeout_ms
        )
    except Exception as e:
        shown = page.evaluate(
            "(() => { const s = document.getElementById('live-status'); return s.dataset.state + ': ' + s.innerText; })()"
        )
        raise AssertionError(f"the Live page never showed {state!r}; it shows {shown!r}") from e


def _jump_events(ticker: str, minutes: int, jump: float) -> tuple[list[bytes], list[bytes]]:
    """One trade a minute with ±0.1 % wiggles, then a jump, then one more trade to close its minute."""
    price = 50.0
    prices, ts = [], []
    for k in range(minutes):
        price *= 1.001 if k % 2 == 0 else 0.999
        prices.append(round(price, 4))
        ts.append(OPEN_UTC + k * MINUTE + 7_000_000)
    for k in (minutes, minutes + 1):
        prices.append(round(price * jump, 4))
        ts.append(OPEN_UTC + k * MINUTE + 7_000_000)
    n = len(prices)
    values = encode_ticks(
        [ticker] * n,
        np.array(ts, dtype=np.int64),
        np.array(prices, dtype=np.float64),
        np.full(n, 100, dtype=np.int64),
        np.arange(1, n + 1, dtype=np.int64),
    )
    return [ticker.encode()] * n, values


def test_live_page_follows_a_replay_alerts_and_reconnects(
    sim_lake_path: Path, broker: str, browser: Any, shots: Callable[[Any, str], Path]
) -> None:
    topic = f"live-e2e-{int(time.time())}"
    server = Server(sim_lake_path, broker, topic)
    url = server.start()
    replay: subprocess.Popen[str] | None = None
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.set_default_timeout(30_000)
    try:
        page.goto(url + "live")
        status = page.locator("#live-status")
        # No stream yet: the page says so and how to start one.
        _wait_state(page, "waiting")
        assert "tickerlake stream replay" in status.inner_text()
        shots(page, "live-no-stream")

        replay = subprocess.Popen(
            [
                *server.args[:3],
                "stream",
                "replay",
                "--topic",
                topic,
                "--tickers",
                "AAPL,MSFT,NVDA",
                "--from",
                "2020-03-16",
                "--to",
                "2020-03-17",
                "--speed",
                "300x",
                "--bootstrap-servers",
                broker,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        _wait_state(page, "live")
        page.wait_for_selector("#tape .quote[data-ticker='AAPL']")
        page.wait_for_function("Number(document.getElementById('candles').dataset.bars) >= 3")
        bars_before = int(page.locator("#candles").get_attribute("data-bars") or 0)
        last_before = page.locator("#tape .quote[data-ticker='AAPL']").get_attribute("data-last")
        # The chart grows bar by bar and the tape moves.
        page.wait_for_function(
            f"Number(document.getElementById('candles').dataset.bars) >= {bars_before + 5}", timeout=60_000
        )
        page.wait_for_function(
            f"document.querySelector(\"#tape .quote[data-ticker='AAPL']\").dataset.last !== '{last_before}'",
            timeout=60_000,
        )
        assert page.locator("#tape .quote").count() == 3
        assert int(page.locator("#normalised").get_attribute("data-traces") or 0) == 3
        # Redraws are coalesced: never more than ~10 a second per chart.
        draws0 = page.evaluate("window.__live.draws.candles")
        time.sleep(3)
        draws = page.evaluate("window.__live.draws.candles") - draws0
        assert draws <= 33, draws
        shots(page, "live-streaming")

        # An injected jump: forty quiet minutes, then +12 %.
        producer = _kafka.new_producer(Settings(bootstrap_servers=""), broker, {})
        for key, value in zip(*_jump_events("JUMPY", 40, 1.12), strict=True):
            producer.produce(topic, value, key)
        assert producer.flush(10) == 0
        page.wait_for_selector("#alerts li.alert[data-ticker='JUMPY']")
        # One alert: the jump, not the ±0.1 % flips before it.
        assert page.locator("#alerts li.alert[data-ticker='JUMPY']").count() == 1
        text = page.locator("#alerts li.alert[data-ticker='JUMPY']").inner_text()
        assert "+12%" in text and "z =" in text
        shots(page, "live-alert")

        # Kill the server: the page shows it is disconnected, then reconnects by itself.
        server.kill()
        _wait_state(page, "disconnected")
        shots(page, "live-disconnected")
        snapshots = page.evaluate("window.__live.snapshots")
        server.start()
        page.wait_for_function(f"window.__live.snapshots > {snapshots}", timeout=60_000)
        _wait_state(page, "live")
        page.wait_for_selector("#tape .quote[data-ticker='JUMPY']")
        page.wait_for_selector("#alerts li.alert[data-ticker='JUMPY']")
        shots(page, "live-reconnected")

        # The Pipeline page: lag per partition for the live group, the ETL run of the lake.
        page.goto(url + "pipeline")
        page.wait_for_function("document.querySelectorAll('#p-partitions tbody tr').length === 8")
        page.wait_for_function("document.querySelectorAll('#p-etl tbody tr').length >= 1")
        assert "live group tickerlake-live" in page.locator("#p-groups").inner_text()
        assert page.locator("#p-crawls tbody tr").count() >= 1
        shots(page, "live-pipeline")
    finally:
        page.close()
        if replay is not None and replay.poll() is None:
            replay.send_signal(signal.SIGINT)
            try:
                replay.wait(15)
            except subprocess.TimeoutExpired:
                replay.kill()
        server.stop()
    assert not errors, errors


def test_without_live_the_api_says_how_to_turn_it_on(server: str) -> None:
    import urllib.request

    with urllib.request.urlopen(server + "api/live/snapshot", timeout=30) as resp:
        snap = json.load(resp)
    assert snap["running"] is False and snap["status"]["state"] == "off"
    assert "serve --live" in snap["status"]["detail"]
    # The event stream answers once (the browser asks again after its retry) instead of hanging.
    with urllib.request.urlopen(server + "api/live/events", timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        body = resp.read().decode()
    assert body.startswith("retry: 5000\n\n") and body.count("event: live") == 1
    assert json.loads(body.split("data: ", 1)[1])["running"] is False
    with urllib.request.urlopen(server + "openapi.json", timeout=30) as resp:
        paths = json.load(resp)["paths"]
    assert {
        "/api/live/snapshot",
        "/api/live/events",
        "/api/live/pipeline",
        "/api/live/pipeline/events",
    } <= set(paths)


def test_live_routes_need_a_token_once_the_lake_has_one(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tickerlake.web.app import create_app
    from tickerlake.web.auth import TokenStore

    (tmp_path / "lake").mkdir()
    settings = Settings(lake=str(tmp_path / "lake"))
    store = TokenStore(settings)
    _, secret = store.create("reader", "read")
    client = TestClient(create_app(settings, tokens=store))
    for path in ("/api/live/snapshot", "/api/live/events", "/api/live/pipeline", "/api/live/pipeline/events"):
        assert client.get(path).status_code == 401, path
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/live/snapshot", headers=auth).json()["running"] is False
    events = client.get("/api/live/events", headers=auth)
    assert events.status_code == 200 and "event: live" in events.text
