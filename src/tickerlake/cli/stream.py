"""``tickerlake stream replay|sink|status|topics|demo``: the real-time half on Apache Kafka.

Heavy modules (confluent-kafka, pyiceberg, numpy) are imported inside the commands so that
``tickerlake --help`` and every other command start fast.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from typing import Any

import typer

from tickerlake.cli._app import app
from tickerlake.cli._common import (
    JsonOpt,
    console,
    err_console,
    fail,
    progress,
    render,
    render_rows,
    settings_of,
    user_errors,
)

__all__ = ["parse_speed", "stream_app"]

stream_app = typer.Typer(
    help="Real-time pipeline: replay bars/ticks into Kafka, sink them exactly once into the lake.",
    no_args_is_help=True,
)
app.add_typer(stream_app, name="stream")

BootstrapOpt = typer.Option(
    None,
    "--bootstrap-servers",
    envvar="TICKERLAKE_BOOTSTRAP_SERVERS",
    help="Kafka bootstrap servers [default: settings, else the dev broker of `tickerlake services up`].",
)
TopicOpt = typer.Option("ticks", "--topic", "-t", help="Kafka topic.")
ModeOpt = typer.Option("ticks", "--mode", help="ticks (intraday trades) or bars (daily bars).")


def parse_speed(value: str | None) -> float | None:
    """``60x``, ``60`` or ``max`` → 60.0, 60.0, None.

    Raises:
        ValueError: Anything else, or a speed that is not positive.
    """
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("max", "inf", ""):
        return None
    speed = float(text[:-1] if text.endswith("x") else text)
    if not speed > 0:
        raise ValueError(value)
    return speed


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date (use YYYY-MM-DD)") from None


def _tickers(value: str | None) -> list[str] | None:
    names = [t.strip().upper() for t in (value or "").split(",") if t.strip()]
    return names or None


def _mode(value: str) -> str:
    if value not in ("ticks", "bars"):
        raise fail(f"--mode: {value!r} is not ticks or bars")
    return value


@stream_app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    mode: str = ModeOpt,
    topic: str = TopicOpt,
    rate: float = typer.Option(None, "--rate", help="Events per second (bars; or ticks instead of --speed)."),
    speed: str = typer.Option(
        None, "--speed", help="Ticks: market-clock speed-up, e.g. 60x, or max [default: max]."
    ),
    start: str = typer.Option(None, "--from", help="First date (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--to", help="Last date (YYYY-MM-DD)."),
    tickers: str = typer.Option(None, "--tickers", help="Comma-separated tickers [default: all]."),
    seed: int = typer.Option(42, "--seed", help="Seed of the synthesized tick paths."),
    partitions: int = typer.Option(8, "--partitions", min=1, help="Partitions if the topic is created."),
    ticks_per_bar: int = typer.Option(
        390, "--ticks-per-bar", min=4, help="Trades synthesized per daily bar."
    ),
    csv: str = typer.Option(None, "--csv", help="Read bars from this long-format CSV instead of the lake."),
    compression: str = typer.Option("lz4", "--compression", help="lz4, zstd, snappy, gzip or none."),
    bootstrap: str = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Publish daily bars, or intraday ticks synthesized from them, to a Kafka topic.

    Replaying a slice into a topic whose sink already saw later events of the same
    tickers sends them to the dead-letter topic as out of order: use a new topic.
    """
    settings = settings_of(ctx)
    mode = _mode(mode)
    try:
        speed_v = parse_speed(speed)
    except ValueError:
        raise fail(f"--speed: {speed!r} is not a speed (use e.g. 60x or max)") from None
    start_d, end_d = _date(start, "--from"), _date(end, "--to")
    with user_errors():
        from tickerlake.stream.replay import load_bars, replay

        bars = load_bars(settings, _tickers(tickers), start_d, end_d, csv)
        total = bars.num_rows * (ticks_per_bar if mode == "ticks" else 1)
        stop = threading.Event()
        with progress(disable=as_json) as bar:
            task = bar.add_task(f"replay {mode} → {topic}", total=total)
            try:
                report = replay(
                    settings,
                    bars,
                    topic,
                    mode,
                    bootstrap=bootstrap,
                    partitions=partitions,
                    rate=rate,
                    speed=speed_v,
                    ticks_per_bar=ticks_per_bar,
                    seed=seed,
                    compression=compression,
                    stop=stop,
                    on_progress=lambda n: bar.update(task, completed=n),
                )
            except KeyboardInterrupt:
                raise fail("interrupted") from None

    def text() -> None:
        rows = [(t, f"{n:,}") for t, n in sorted(report.by_ticker.items())]
        render_rows(f"replay {report.mode} → {report.topic}", ["ticker", "events"], rows)
        console.print(
            f"{report.delivered:,} delivered, {report.failed:,} failed, "
            f"{report.elapsed_s:.2f} s ({report.events_per_s:,.0f} events/s); "
            f"topic has {report.partitions} partitions{' (created)' if report.topic_created else ''}",
            highlight=False,
        )
        if report.first_event:
            console.print(f"market time {report.first_event} → {report.last_event}", highlight=False)
        for s in report.skipped_bars:
            console.print(f"[yellow]skipped bar:[/] {s}", highlight=False)
        for e in report.errors:
            console.print(f"[red]delivery error:[/] {e}", highlight=False)

    render(report, as_json, text)
    if report.failed:
        raise typer.Exit(1)


@stream_app.command("sink")
def sink_cmd(
    ctx: typer.Context,
    topic: str = TopicOpt,
    mode: str = ModeOpt,
    group: str = typer.Option("tickerlake-sink", "--group", help="Consumer group id."),
    max_records: int = typer.Option(100_000, "--max-records", min=1, help="Records per micro-batch at most."),
    max_interval: float = typer.Option(1.0, "--max-interval", help="Seconds a micro-batch may stay open."),
    dlq_topic: str = typer.Option(None, "--dlq-topic", help="Dead-letter topic [default: <topic>.dlq]."),
    once: bool = typer.Option(False, "--once", help="Drain what is in the topic, then exit."),
    timeout: float = typer.Option(
        300.0,
        "--timeout",
        help="With --once: seconds to wait for the partitions and drain them before giving up (exit 1).",
    ),
    known_tickers: str = typer.Option(
        "lake",
        "--known-tickers",
        help="Reference tickers: 'lake' (those in market.daily_bars), 'any', or a comma-separated list.",
    ),
    max_lateness: float = typer.Option(
        1.0, "--max-lateness", help="Out-of-order tolerance for ticks, seconds."
    ),
    instance_id: str = typer.Option(
        None,
        "--instance-id",
        help="Static group member id: a restarted sink gets its partitions back at once.",
    ),
    keep_snapshots: int = typer.Option(
        500, "--keep-snapshots", help="Snapshots kept when expiring (0: never)."
    ),
    maintain_every: float = typer.Option(
        0.0,
        "--maintain-every",
        min=0.0,
        help="Seconds between runs of `maintain` on the table in the background (0: never).",
    ),
    fields: str = typer.Option(
        None,
        "--fields",
        help="This topic's keys for event fields, e.g. date=d,close=px_last (over the built-in spellings).",
    ),
    bootstrap: str = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write a topic into the lake exactly once: raw JSON-lines files + one Iceberg commit per batch.

    Runs until SIGTERM/Ctrl-C (the open batch is committed first) or, with --once, until
    every partition is in the table up to the end offsets seen at start; if that does not
    happen within --timeout it exits 1 and prints the lag per partition.
    """
    settings = settings_of(ctx)
    mode = _mode(mode)
    if max_interval <= 0:
        raise fail("--max-interval must be positive")
    known: frozenset[str] | None
    spec = known_tickers.strip()
    if spec.lower() == "lake":
        known = None
    elif spec.lower() == "any":
        known = frozenset()
    else:
        known = frozenset(_tickers(spec) or [])
    from tickerlake.stream.schema import parse_fields

    try:
        field_map = parse_fields(fields or "", mode)
    except ValueError as e:
        raise fail(f"--fields: {e}") from None
    with user_errors():
        from tickerlake.stream.sink import SinkOptions, SinkReport, StreamSink

        options = SinkOptions(
            topic=topic,
            mode=mode,
            group=group,
            bootstrap=bootstrap,
            max_records=max_records,
            max_interval_s=max_interval,
            dlq_topic=dlq_topic,
            once=once,
            once_timeout_s=timeout,
            fields=field_map,
            known_tickers=known,
            max_lateness_s=max_lateness,
            instance_id=instance_id,
            keep_snapshots=keep_snapshots,
            maintain_every_s=maintain_every,
        )
        status = None if as_json else err_console.status(f"sink {topic} → {options.mode}: starting")

        def on_commit(r: SinkReport) -> None:
            if status is not None:
                to_go = f", {sum(r.lag.values()):,} records to go" if r.lag else ""
                status.update(
                    f"sink {topic}: {r.batches:,} batches, {r.accepted:,} rows, {r.rejected:,} dead letters{to_go}"
                )

        sink = StreamSink(settings, options, on_commit=on_commit)
        if status is not None:
            status.start()
        try:
            report = sink.run()
        finally:
            # Done or failing: a SIGTERM now (a service manager's repeat) must not cut the report
            # short. Python resets its own handlers at shutdown; an ignored signal stays ignored.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if status is not None:
                status.stop()

    def text() -> None:
        console.print(
            f"{report.records:,} records → {report.accepted:,} rows in {report.table}, "
            f"{report.rejected:,} dead letters, {report.raw_files:,} raw files, {report.batches:,} commits "
            f"in {report.elapsed_s:.1f} s ({report.stopped_by})",
            highlight=False,
        )
        for code, n in sorted(report.rejections.items()):
            console.print(f"  dead letters {code}: {n:,}", highlight=False)
        if report.offsets:
            offsets = ", ".join(f"{p}:{o}" for p, o in sorted(report.offsets.items()))
            console.print(f"table offsets of {report.topic}: {offsets}", highlight=False)

    render(report, as_json, text)
    if report.complete is False:
        lag = ", ".join(f"{p}:{n:,}" for p, n in sorted(report.lag.items()) if n)
        err_console.print(
            f"[red]error:[/] not drained within {timeout:g} s; records still missing per partition: {lag}",
            highlight=False,
        )
        raise typer.Exit(1)


@stream_app.command("status")
def status_cmd(
    ctx: typer.Context,
    topic: str = TopicOpt,
    mode: str = ModeOpt,
    group: str = typer.Option("tickerlake-sink", "--group", help="Consumer group whose offsets are shown."),
    bootstrap: str = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Lag per partition: Kafka log end vs offsets committed in the stream table (and the group's)."""
    settings = settings_of(ctx)
    mode = _mode(mode)
    with user_errors():
        from tickerlake.stream.status import stream_status

        st = stream_status(settings, topic, mode, group, bootstrap)

    def text() -> None:
        rows: list[tuple[Any, ...]] = [
            (ps.partition, ps.low, ps.high, ps.table_offset, ps.group_offset, ps.lag) for ps in st.partitions
        ]
        render_rows(
            f"{st.topic} → {st.table}",
            ["partition", "low", "high", "table offset", "group offset", "lag"],
            rows,
        )
        dl = "no dead-letter topic" if st.dead_letters is None else f"{st.dead_letters:,} dead letters"
        console.print(f"lag {st.lag:,}; {dl}", highlight=False)

    render(st, as_json, text)


@stream_app.command("topics")
def topics_cmd(
    ctx: typer.Context,
    create: str = typer.Option(None, "--create", help="Create this topic if it is missing."),
    partitions: int = typer.Option(8, "--partitions", min=1, help="Partitions for --create."),
    bootstrap: str = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List the topics on the cluster with their sizes (or create one)."""
    settings = settings_of(ctx)
    with user_errors():
        from tickerlake.stream import _kafka
        from tickerlake.stream.status import list_topics

        created = None
        if create:
            address = _kafka.resolve_bootstrap(settings, bootstrap)
            made, n = _kafka.ensure_topic(_kafka.admin_client(settings, address), create, partitions, address)
            created = {"topic": create, "created": made, "partitions": n}
        topics = list_topics(settings, bootstrap)

    def text() -> None:
        if created:
            state = "created" if created["created"] else "already there"
            console.print(f"{created['topic']}: {state}, {created['partitions']} partitions", highlight=False)
        render_rows(
            None,
            ["topic", "partitions", "messages"],
            [(t.topic, t.partitions, f"{t.messages:,}") for t in topics],
        )

    render({"created": created, "topics": topics}, as_json, text)


@stream_app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    tickers: str = typer.Option(None, "--tickers", help="Tickers [default: AAPL,MSFT,NVDA]."),
    days: int = typer.Option(5, "--days", min=1, help="Latest trading days to replay."),
    ticks_per_bar: int = typer.Option(390, "--ticks-per-bar", min=4, help="Trades per daily bar."),
    topic: str = typer.Option(None, "--topic", help="Topic [default: a new demo.ticks.<UTC time> per run]."),
    bootstrap: str = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The streaming act: replay a slice of ticks through Kafka, sink it, compare sent and arrived."""
    settings = settings_of(ctx)
    with user_errors():
        from tickerlake.stream.demo import run_demo

        status = None if as_json else err_console.status("stream demo")
        if status is not None:
            status.start()
        try:
            report = run_demo(
                settings,
                _tickers(tickers),
                days,
                ticks_per_bar,
                topic,
                bootstrap,
                on_step=(lambda s: status.update(s)) if status is not None else None,
            )
        finally:
            if status is not None:
                status.stop()

    def text() -> None:
        s, a = report.sent, report.arrived
        render_rows(
            f"stream demo: {', '.join(report.tickers)} {report.start} → {report.end} via {report.topic}",
            ["", "sent", "arrived"],
            [
                ("tick events", f"{s['events']:,}", f"{a['table_rows']:,} rows in stream.ticks"),
                ("malformed events", f"{s['malformed']:,}", f"{a['dead_letters']:,} in {report.topic}.dlq"),
                ("total", f"{s['total']:,}", f"{a['table_rows'] + a['dead_letters']:,}"),
                ("raw files", "", f"{a['raw_files']:,} JSON-lines files"),
                (
                    "daily bars",
                    f"{report.bars_expected}",
                    f"{report.bars_reproduced} rebuilt exactly from ticks",
                ),
            ],
        )
        for ex in a.get("examples", []):
            console.print(
                f"  dead letter p{ex['partition']}@{ex['offset']}: {ex['reason']}",
                highlight=False,
                soft_wrap=True,
            )
        verdict = "[green]reconciles[/]" if report.reconciles else "[red]does NOT reconcile[/]"
        console.print(f"sent = table rows + dead letters: {verdict} ({report.seconds:.1f} s)")

    render(report, as_json, text)
    if not report.reconciles:
        raise typer.Exit(1)


@stream_app.command("live")
def live_cmd(
    ctx: typer.Context,
    topic: str = TopicOpt,
    start: str = typer.Option(
        "300", "--from", help="Where to start: earliest, latest or seconds to look back (300, 5m, 1h)."
    ),
    duration: float = typer.Option(
        0.0,
        "--duration",
        min=0.0,
        help="Seconds to watch, then print the final state [default: until Ctrl+C].",
    ),
    group: str = typer.Option(
        "tickerlake-live", "--group", help="Consumer group of the live view (never the sink's)."
    ),
    bootstrap: str = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Watch a tick topic live: per ticker last, change, VWAP, 1- and 5-minute bars and anomaly alerts.

    Reads every partition in its own consumer group (the sink's offsets never move) and
    keeps the state in bounded memory; `serve --live` runs the same view for the browser.
    With --json it prints the final state (quotes, bars, alerts, reader status) once.
    """
    import time

    from rich.live import Live

    from tickerlake.service.live import LiveFeed, LiveOptions
    from tickerlake.stream.live.consumer import parse_start

    settings = settings_of(ctx)
    try:
        start_at = parse_start(start)
    except ValueError:
        raise fail(f"--from: {start!r} is not earliest, latest or a number of seconds") from None
    if group.strip() == "tickerlake-sink":
        raise fail("--group: the live view never uses the sink's group")
    with user_errors():
        feed = LiveFeed(
            settings, LiveOptions(topic=topic, start=start_at, bootstrap=bootstrap, group=group.strip())
        ).start()
    deadline = time.monotonic() + duration if duration else None
    try:
        if as_json:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        else:
            with Live(_live_table(feed.snapshot(1)), console=console, refresh_per_second=4) as view:
                while deadline is None or time.monotonic() < deadline:
                    time.sleep(0.25)
                    view.update(_live_table(feed.snapshot(1)))
    except KeyboardInterrupt:
        pass
    finally:
        feed.stop()
    if as_json:
        render(feed.snapshot(), True)


def _live_table(snap: dict[str, Any]) -> Any:
    """The terminal view: one row per ticker, then the newest alerts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    st = snap["status"]
    rate = f"{st['events_per_s']:,.0f}/s" if st.get("events_per_s") is not None else "–"
    title = (
        f"{st['topic']}: {st['state']} · {st['events']:,} events ({rate}) · lag {st['lag'] if st['lag'] is not None else '–'}"
        f" · late {st['late']:,}"
    )
    table = Table(title=title, title_justify="left")
    for col in ("ticker", "last", "change", "%", "VWAP", "high", "low", "volume", "1m close", "z"):
        table.add_column(col, justify="left" if col == "ticker" else "right")
    for q in snap["quotes"]:
        style = "green" if (q["change"] or 0) > 0 else "red" if (q["change"] or 0) < 0 else ""
        bars = snap["bars"].get("60", {}).get(q["ticker"]) or []

        def num(x: float | None, fmt: str = ",.2f") -> str:
            return "–" if x is None else format(x, fmt)

        table.add_row(
            q["ticker"] + (" (quiet)" if q["quiet"] else ""),
            num(q["last"]),
            Text(num(q["change"], "+,.2f"), style=style),
            Text(num(q["change_pct"], "+.2f"), style=style),
            num(q["vwap"]),
            num(q["high"]),
            num(q["low"]),
            f"{q['volume']:,}",
            num(bars[-1]["c"]) if bars else "–",
            num(q["z"], "+.1f"),
        )
    parts: list[Any] = [table]
    if st["state"] != "reading":
        parts.append(
            Text(
                f"{st['detail']} — start a stream with `tickerlake stream replay --topic {st['topic']} --speed 60x`"
            )
        )
    for a in snap["alerts"][:5]:
        parts.append(
            Text(
                f"alert {a['ticker']} {a['ret_pct']:+.2f}% in {a['timeframe_s'] // 60} min (z {a['z']:+.1f})",
                style="bold yellow",
            )
        )
    return Group(*parts)
