"""``tickerlake insights KIND``: QuickSight-style insights over the curated daily bars.

A thin shell over :mod:`tickerlake.service.insights`, the operations the web API calls
too: parse the options into the operation's parameters, call it on the lake's bars, and
print its narrative and numbers (or, with ``--json``, the whole result, the same JSON the
API answers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

from tickerlake.cli._app import app
from tickerlake.cli._common import JsonOpt, console, render, render_rows, settings_of, user_errors
from tickerlake.service.selection import GRAINS, MEASURES, PRICE_MEASURES, RANK_BY, TO_DATE_GRAINS, parse_date

__all__ = ["insights_app"]

insights_app = typer.Typer(
    name="insights",
    help="Movers, period-over-period, anomalies, forecasts, recession analysis and summaries.",
    no_args_is_help=True,
)
app.add_typer(insights_app, name="insights")


def _choice(choices: Sequence[str]) -> Callable[[str], str]:
    """A parser accepting one of ``choices`` (a usage error, exit 2, otherwise)."""

    def parse(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _one_of(default: str, names: tuple[str, ...], choices: Sequence[str], text: str) -> Any:
    # Choices come from the service's vocabulary, so the CLI and the API accept the same values.
    return typer.Option(
        default, *names, parser=_choice(choices), help=f"{text.rstrip('.')}: {', '.join(choices)}."
    )


MeasureOpt = _one_of("close", ("--measure", "-m"), MEASURES, "The value to analyse.")
PriceOpt = _one_of("close", ("--measure", "-m"), PRICE_MEASURES, "The price to analyse.")
TickersOpt = typer.Option(None, "--tickers", "-t", help="Only these tickers (comma-separated).")
WindowOpt = typer.Option(
    None,
    "--window",
    "-w",
    help="A named window (see `insights recessions --list`); --start/--end override it.",
)
StartOpt = typer.Option(None, "--start", help="First day YYYY-MM-DD (default: first in the data).")
EndOpt = typer.Option(None, "--end", help="Last day YYYY-MM-DD (default: last in the data).")
NOpt = typer.Option(3, "--n", "-n", min=1, help="How many to show.")
BottomOpt = typer.Option(False, "--bottom", help="Biggest decreases (or smallest) first.")


def _grain_opt(default: str, choices: Sequence[str], text: str) -> Any:
    return _one_of(default, ("--grain", "-g"), choices, text)


def _run(
    ctx: typer.Context, op: Callable[..., Any], make: Callable[[], Any], define: Sequence[str] = ()
) -> Any:
    """``op(market, make(), windows)`` on the lake's current bars; errors as one line."""
    from tickerlake.service.market import MarketStore
    from tickerlake.service.selection import all_windows

    settings = settings_of(ctx)
    with user_errors():
        params = make()  # parses dates: a bad one is a one-line error like any other
        windows = all_windows(settings, define)
        return op(MarketStore(settings).market(), params, windows)


def _windowed(tickers: str | None, window: str | None, start: str | None, end: str | None) -> dict[str, Any]:
    """The selection and window parameters shared by the windowed insights (dates parsed)."""
    return {
        "tickers": tickers,
        "window": window,
        "start": parse_date(start, "start"),
        "end": parse_date(end, "end"),
    }


def _ops() -> Any:
    # The insights (numpy, pandas) are imported when a command runs, not at CLI start-up.
    import tickerlake.service.insights as ops

    return ops


def _fmt() -> Any:
    import tickerlake.insights.narrative as narrative

    return narrative


def _num(x: float | None) -> str:
    return str(_fmt().fmt_num(x))


def _pct(x: float | None) -> str:
    return str(_fmt().fmt_signed_pct(x))


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


#: A table of more rows than this shows its first and last half of it and says how many are left out.
SCREEN_ROWS = 20
# Exclusions listed one per line up to this many; beyond, counted by reason on one line each.
_EXCLUDED_LINES = 5


def _screen(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """At most a screen of ``rows``: the first and last rows of a long list, and how many are left out."""
    if len(rows) <= SCREEN_ROWS:
        return rows
    half = SCREEN_ROWS // 2
    gap = (f"… {len(rows) - 2 * half:,} more (--json has all)", *([""] * (width - 1)))
    return [*rows[:half], gap, *rows[-half:]]


def _table(title: str | None, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """``render_rows`` of at most a screen (see :func:`_screen`)."""
    render_rows(title, columns, _screen(rows, len(columns)))


def _excluded(res: Any) -> None:
    """Each exclusion on a line when few; else one line per reason, with a count and examples."""
    if len(res.excluded) <= _EXCLUDED_LINES:
        for e in res.excluded:
            console.print(f"[dim]excluded {e.ticker}: {e.reason}[/]", highlight=False)
        return
    by: dict[str, list[str]] = {}
    for e in res.excluded:
        # "no bar on Dec 12, 2023 (first bar Jan 3, 2024)": the part before the details.
        by.setdefault(e.reason.split(" (")[0], []).append(e.ticker)
    console.print(f"[dim]excluded {len(res.excluded):,} tickers (--json lists each with its reason):[/]")
    ranked = sorted(by.items(), key=lambda kv: -len(kv[1]))
    for reason, who in ranked[:3]:
        names = ", ".join(who[:3]) + (", …" if len(who) > 3 else "")
        console.print(f"[dim]  {len(who):,} {reason} ({names})[/]", highlight=False)
    if len(ranked) > 3:
        rest = sum(len(w) for _, w in ranked[3:])
        console.print(f"[dim]  {rest:,} for {len(ranked) - 3} other reasons[/]", highlight=False)


@insights_app.command("movers")
def movers_cmd(
    ctx: typer.Context,
    date: str = typer.Option(None, "--date", "-d", help="Trading day YYYY-MM-DD (default: the last one)."),
    bottom: bool = BottomOpt,
    n: int = NOpt,
    measure: str = MeasureOpt,
    rank_by: str = _one_of("pct_change", ("--rank-by",), RANK_BY, "Percent or absolute change."),
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Top (or bottom) movers of a day against each ticker's previous trading day."""
    ops = _ops()
    res = _run(
        ctx,
        ops.movers,
        lambda: ops.MoversParams(
            tickers=tickers, date=parse_date(date), n=n, bottom=bottom, measure=measure, rank_by=rank_by
        ),
    )

    def text() -> None:
        _say(res.narrative)
        rows = [
            (m.rank, m.ticker, m.previous_date, _num(m.previous), _num(m.current), _num(m.change),
             _pct(m.pct_change))
            for m in res.rows
        ]  # fmt: skip
        render_rows(
            None, ["rank", "ticker", "previous date", "previous", "current", "change", "change %"], rows
        )
        _excluded(res)

    render(res, as_json, text)


def _print_period(res: Any) -> None:
    _say(res.narrative)
    rows = [
        (t.ticker, t.from_date or "", _num(t.previous), t.to_date or "", _num(t.current), _num(t.change),
         _pct(t.pct_change))
        for t in res.tickers
    ]  # fmt: skip
    _table(None, ["ticker", "from", "previous", "to", "current", "change", "change %"], rows)
    _excluded(res)


@insights_app.command("period")
def period_cmd(
    ctx: typer.Context,
    date: str = typer.Option(
        None, "--date", "-d", help="A day of the period YYYY-MM-DD (default: the last trading day)."
    ),
    grain: str = _grain_opt("day", GRAINS, "Period length."),
    measure: str = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The total across tickers for the period containing a day, against the previous period."""
    ops = _ops()
    res = _run(
        ctx,
        ops.period,
        lambda: ops.PeriodParams(tickers=tickers, date=parse_date(date), grain=grain, measure=measure),
    )
    render(res, as_json, lambda: _print_period(res))


@insights_app.command("period-to-date")
def period_to_date_cmd(
    ctx: typer.Context,
    date: str = typer.Option(
        None, "--date", "-d", help="The 'to date' day YYYY-MM-DD (default: the last one)."
    ),
    grain: str = _grain_opt("month", TO_DATE_GRAINS, "Period length."),
    measure: str = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Week/month/quarter/year-to-date total against the end (or same part) of the previous period."""
    ops = _ops()
    res = _run(
        ctx,
        ops.period_to_date,
        lambda: ops.PeriodToDateParams(tickers=tickers, date=parse_date(date), grain=grain, measure=measure),
    )
    render(res, as_json, lambda: _print_period(res))


@insights_app.command("growth")
def growth_cmd(
    ctx: typer.Context,
    window: str = WindowOpt,
    start: str = StartOpt,
    end: str = EndOpt,
    grain: str = _grain_opt("month", GRAINS, "The rate is per this period."),
    measure: str = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Compound growth rate of the total (and of each ticker) over a window."""
    ops = _ops()
    res = _run(
        ctx,
        ops.growth,
        lambda: ops.GrowthParams(
            **_windowed(tickers, window, start, end),
            grain=grain, measure=measure,
        ),
    )  # fmt: skip

    def text() -> None:
        _say(res.narrative)
        rows = [
            (t.ticker, t.first_date, _num(t.first_value), t.last_date, _num(t.last_value), _pct(t.rate_pct),
             "yes" if t.partial else "")
            for t in res.tickers
        ]  # fmt: skip
        _table(None, ["ticker", "from", "first", "to", "last", f"per {res.grain}", "partial"], rows)

    render(res, as_json, text)


@insights_app.command("ranked")
def ranked_cmd(
    ctx: typer.Context,
    window: str = WindowOpt,
    start: str = StartOpt,
    end: str = EndOpt,
    bottom: bool = BottomOpt,
    n: int = NOpt,
    measure: str = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Tickers ranked by their change (prices) or total (volume) over a window."""
    ops = _ops()
    res = _run(
        ctx,
        ops.ranked,
        lambda: ops.RankedParams(
            **_windowed(tickers, window, start, end),
            n=n, bottom=bottom, measure=measure,
        ),
    )  # fmt: skip

    def text() -> None:
        _say(res.narrative)
        rows = [
            (r.rank, r.ticker, r.first_date, _num(r.first_value), r.last_date, _num(r.last_value),
             _pct(r.pct_change), _num(r.total))
            for r in res.ranked
        ]  # fmt: skip
        render_rows(None, ["rank", "ticker", "from", "first", "to", "last", "change %", "total"], rows)

    render(res, as_json, text)


@insights_app.command("extremes")
def extremes_cmd(
    ctx: typer.Context,
    window: str = WindowOpt,
    start: str = StartOpt,
    end: str = EndOpt,
    measure: str = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Highest and lowest total (and per-ticker values) over a window, with their dates."""
    ops = _ops()
    res = _run(
        ctx,
        ops.extremes,
        lambda: ops.ExtremesParams(
            **_windowed(tickers, window, start, end),
            measure=measure,
        ),
    )  # fmt: skip

    def text() -> None:
        _say(res.narrative)
        rows = [(t.ticker, _num(t.max_value), t.max_date, _num(t.min_value), t.min_date) for t in res.tickers]
        _table(None, ["ticker", "max", "on", "min", "on"], rows)

    render(res, as_json, text)


@insights_app.command("anomalies")
def anomalies_cmd(
    ctx: typer.Context,
    window: str = WindowOpt,
    start: str = StartOpt,
    end: str = EndOpt,
    sensitivity: float = typer.Option(
        0.5, "--sensitivity", "-s", min=0.0, max=1.0, help="0 (fewest) to 1 (most anomalies)."
    ),
    top_n: int = typer.Option(3, "--top-n", min=1, max=20, help="Contributors named per anomaly."),
    measure: str = PriceOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Unusual days, found on returns, with the tickers that drove them."""
    ops = _ops()
    res = _run(
        ctx,
        ops.anomalies,
        lambda: ops.AnomaliesParams(
            **_windowed(tickers, window, start, end),
            sensitivity=sensitivity, measure=measure, top_n=top_n,
        ),
    )  # fmt: skip

    def text() -> None:
        _say(res.narrative)
        # A screen of them on a universe: the strongest, in date order.
        shown = sorted(res.anomalies, key=lambda a: -a.score)[:SCREEN_ROWS]
        rows: list[tuple[Any, ...]] = [
            (a.date, a.view, a.scored_series, _pct(a.scored_pct), f"{a.score:.1f}", _num(a.actual),
             _num(a.expected), ", ".join(f"{c.ticker} {_num(c.actual)} vs {_num(c.expected)}" for c in a.top))
            for a in res.anomalies if a in shown
        ]  # fmt: skip
        if len(res.anomalies) > len(shown):
            rows.append((f"… {len(res.anomalies) - len(shown):,} weaker (--json has all)", *[""] * 7))
        # The deviation shown is the scored series' (the basket's, or the named ticker's).
        cols = ["date", "view", "scored", "deviation", "score", "total", "expected",
                "top contributors (actual vs expected)"]  # fmt: skip
        render_rows(
            None, cols, rows, ["date", "view", "deviation", cols[7], "scored", "score", "total", "expected"]
        )

    render(res, as_json, text)


@insights_app.command("forecast")
def forecast_cmd(
    ctx: typer.Context,
    ticker: str = typer.Option(None, "--ticker", help="The one ticker to forecast."),
    tickers: str = typer.Option(
        None,
        "--tickers",
        "-t",
        help="Forecast the total close of these tickers (comma-separated; default: all).",
    ),
    horizon: int = typer.Option(30, "--horizon", help="Trading days ahead (exchange calendar)."),
    origin: str = typer.Option(
        None,
        "--origin",
        help="Forecast from this day YYYY-MM-DD (default: the last bar); shows what happened next.",
    ),
    measure: str = PriceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Point forecast with 80% and 95% prediction intervals, from any origin."""
    ops = _ops()
    res = _run(
        ctx,
        ops.forecast,
        lambda: ops.ForecastParams(
            ticker=ticker,
            tickers=tickers,
            horizon=horizon,
            measure=measure,
            origin=parse_date(origin, "origin"),
        ),
    )

    def text() -> None:
        _say(res.narrative)
        rows = [
            (
                p.step,
                p.date,
                _num(p.point),
                f"{_num(p.lo80)} – {_num(p.hi80)}",
                f"{_num(p.lo95)} – {_num(p.hi95)}",
                "" if p.actual is None else _num(p.actual),
            )
            for p in res.points
        ]
        render_rows(None, ["step", "date", "forecast", "80% interval", "95% interval", "actual"], rows)

    render(res, as_json, text)


@insights_app.command("recessions")
def recessions_cmd(
    ctx: typer.Context,
    period: str = typer.Option(None, "--period", "-p", help="A window name (see --list)."),
    start: str = typer.Option(None, "--start", help="Window start YYYY-MM-DD (instead of --period)."),
    end: str = typer.Option(None, "--end", help="Window end YYYY-MM-DD (instead of --period)."),
    define: list[str] = typer.Option(
        None, "--define", help="Extra window NAME=YYYY-MM-DD..YYYY-MM-DD[:label] (repeatable)."
    ),
    list_: bool = typer.Option(False, "--list", help="List the known windows."),
    compare: bool = typer.Option(False, "--compare", help="Every window side by side."),
    measure: str = PriceOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """How each ticker fared in a downturn: return, drawdown, volatility, beta, recovery."""
    if list_:
        _list_windows(ctx, define or [], as_json)
        return
    ops = _ops()
    if compare:
        cmp = _run(
            ctx, ops.recession_compare, lambda: ops.RecessionCompareParams(tickers=tickers, measure=measure),
            define or [],
        )  # fmt: skip
        render(cmp, as_json, lambda: _print_comparison(cmp))
        return
    res = _run(
        ctx,
        ops.recessions,
        lambda: ops.RecessionParams(
            tickers=tickers, period=period, start=parse_date(start, "start"), end=parse_date(end, "end"),
            measure=measure,
        ),
        define or [],
    )  # fmt: skip

    def text() -> None:
        _say(res.narrative)
        rows = [
            (r.rank or "", r.ticker, _pct(r.return_pct), _pct(r.max_drawdown_pct),
             f"{r.peak_date} → {r.trough_date}", _pct(r.volatility_pct).lstrip("+"),
             f"{_pct(r.worst_day_pct)} {r.worst_day or ''}", f"{_pct(r.best_day_pct)} {r.best_day or ''}",
             _num(r.beta), _num(r.correlation), _recovery(r))
            for r in (*res.tickers, res.basket)
        ]  # fmt: skip
        rows = [*_screen(rows[:-1], len(rows[-1])), rows[-1]]
        cols = ["rank", "ticker", "return", "max drawdown", "peak → trough", "vol (ann.)", "worst day",
                "best day", "beta", "corr", "recovery"]  # fmt: skip
        render_rows(f"{res.window.label}: {res.first_date} to {res.last_date}", cols, rows,
                    ["ticker", "return", "max drawdown", "recovery", "vol (ann.)", "peak → trough", "beta", "rank"])  # fmt: skip

    render(res, as_json, text)


def _list_windows(ctx: typer.Context, define: Sequence[str], as_json: bool) -> None:
    from tickerlake.service.market import windows

    with user_errors():
        known = windows(settings_of(ctx), define)
    rows = [(w.name, w.start, w.end, w.label) for w in known]
    render(known, as_json, lambda: render_rows("analysis windows", ["name", "start", "end", "label"], rows))


def _print_comparison(cmp: Any) -> None:
    rows: list[tuple[Any, ...]] = []
    for w in cmp.windows:
        if w.error:
            rows.append((w.name, w.start, w.end, "", "", "", "", w.error))
            continue
        b = w.basket
        rows.append(
            (w.name, w.first_date, w.last_date, _pct(b.return_pct), _pct(b.max_drawdown_pct),
             w.best or "", w.worst or "", "")
        )  # fmt: skip
    cols = ["window", "from", "to", "basket return", "basket drawdown", "best", "worst", "note"]
    if not any(w.error for w in cmp.windows):  # the note column only says why a window is empty
        cols, rows = cols[:-1], [r[:-1] for r in rows]
    who = ", ".join(cmp.tickers) if len(cmp.tickers) <= 8 else f"{len(cmp.tickers):,} tickers"
    render_rows(f"every window ({cmp.measure}, equal-weight basket of {who})", cols, rows)


def _recovery(r: Any) -> str:
    if r.recovered is None:
        return "n/a"
    if not r.recovered:
        return "not recovered"
    if r.recovery_days == 0:
        return "never below peak"
    return f"{r.recovery_days} days ({r.recovery_date})"


@insights_app.command("summary")
def summary_cmd(
    ctx: typer.Context,
    window: str = WindowOpt,
    start: str = StartOpt,
    end: str = EndOpt,
    n: int = typer.Option(5, "--n", "-n", min=1, help="How many insights."),
    measure: str = PriceOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The few most important insights of a window, ranked."""
    ops = _ops()
    res = _run(
        ctx,
        ops.summary,
        lambda: ops.SummaryParams(
            **_windowed(tickers, window, start, end),
            n=n, measure=measure,
        ),
    )  # fmt: skip

    def text() -> None:
        for i in res.insights:
            _say(f"{i.rank}. {i.narrative}  [dim]({i.kind}, importance {i.importance:.1f})[/]")

    render(res, as_json, text)
