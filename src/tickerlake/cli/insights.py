"""``tickerlake insights KIND``: QuickSight-style insights over the curated daily bars.

A thin shell: load ``market.daily_bars`` (and ``market.corporate_actions``) from the
lake, call one function of :mod:`tickerlake.insights`, print its narrative and numbers
(or, with ``--json``, the whole result).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import typer

from tickerlake.cli._app import app
from tickerlake.cli._common import JsonOpt, console, render, render_rows, settings_of, user_errors
from tickerlake.config import Settings

if TYPE_CHECKING:
    from tickerlake.insights import Window


class _Lazy:
    """Imports the insights package (pandas, numpy) on first use, not at CLI start-up."""

    def __getattr__(self, name: str) -> Any:
        import tickerlake.insights as ins
        import tickerlake.insights.narrative as narrative

        return getattr(ins, name) if hasattr(ins, name) else getattr(narrative, name)


ins = _Lazy()

__all__ = ["Grain", "Measure", "insights_app", "load_bars", "user_windows"]

insights_app = typer.Typer(
    name="insights",
    help="Movers, period-over-period, anomalies, forecasts, recession analysis and summaries.",
    no_args_is_help=True,
)
app.add_typer(insights_app, name="insights")


class Measure(StrEnum):
    """Measures an insight can be computed on."""

    close = "close"
    adj_close = "adj_close"
    volume = "volume"
    open = "open"
    high = "high"
    low = "low"


class PriceMeasure(StrEnum):
    """Price measures (for returns-based insights)."""

    close = "close"
    adj_close = "adj_close"


class Grain(StrEnum):
    """Calendar grains."""

    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


MeasureOpt = typer.Option(Measure.close, "--measure", "-m", help="The value to analyse.")
PriceOpt = typer.Option(PriceMeasure.close, "--measure", "-m", help="The price to analyse.")
TickersOpt = typer.Option(None, "--tickers", "-t", help="Only these tickers (comma-separated).")
StartOpt = typer.Option(None, "--start", help="First day YYYY-MM-DD (default: first in the data).")
EndOpt = typer.Option(None, "--end", help="Last day YYYY-MM-DD (default: last in the data).")
NOpt = typer.Option(3, "--n", "-n", help="How many to show.")
BottomOpt = typer.Option(False, "--bottom", help="Biggest decreases (or smallest) first.")


def _split(tickers: str | None) -> list[str]:
    return [t.strip().upper() for t in (tickers or "").split(",") if t.strip()]


def load_bars(settings: Settings, tickers: Sequence[str] = ()) -> tuple[pa.Table, pa.Table]:
    """The curated bars (only ``tickers`` if given) and corporate actions.

    Raises:
        UnknownTicker: A requested ticker that the lake does not hold.
    """
    from tickerlake.lake.contract import read_actions, read_bars

    bars, actions = read_bars(settings), read_actions(settings)
    if tickers:
        have = set(pc.unique(bars.column("ticker")).to_pylist()) if bars.num_rows else set()
        missing = [t for t in tickers if t not in have]
        if missing:
            known = ", ".join(sorted(have)) or "none: the lake is empty"
            raise ins.UnknownTicker(f"unknown ticker {', '.join(missing)} (the lake has {known})")
        bars = bars.filter(pc.is_in(bars.column("ticker"), value_set=pa.array(list(tickers))))
    return bars, actions


def user_windows(settings: Settings, defined: Sequence[str] = ()) -> dict[str, Window]:
    """User-defined recession windows: ``settings.recession_windows`` (when configured) plus ``--define``."""
    text = str(getattr(settings, "recession_windows", "") or "")
    return {**ins.parse_windows(text), **ins.parse_windows(";".join(defined))}


def _run(ctx: typer.Context, tickers: str | None, call: Callable[[pa.Table, pa.Table], Any]) -> Any:
    settings = settings_of(ctx)
    with user_errors():
        bars, actions = load_bars(settings, _split(tickers))
        return call(bars, actions)


def _num(x: float | None) -> str:
    return ins.fmt_num(x)


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


@insights_app.command("movers")
def movers_cmd(
    ctx: typer.Context,
    date: str = typer.Option(None, "--date", "-d", help="Trading day YYYY-MM-DD (default: the last one)."),
    bottom: bool = BottomOpt,
    n: int = NOpt,
    measure: Measure = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Top (or bottom) movers of a day against each ticker's previous trading day."""
    res = _run(ctx, tickers, lambda b, a: ins.movers(b, date, n, bottom, measure.value, corporate_actions=a))

    def text() -> None:
        _say(res.narrative)
        rows = [
            (
                m.rank,
                m.ticker,
                m.previous_date,
                _num(m.previous),
                _num(m.current),
                _num(m.change),
                ins.fmt_signed_pct(m.pct_change),
            )
            for m in res.rows
        ]
        render_rows(
            None, ["rank", "ticker", "previous date", "previous", "current", "change", "change %"], rows
        )
        for e in res.excluded:
            console.print(f"[dim]excluded {e.ticker}: {e.reason}[/]", highlight=False)

    render(res, as_json, text)


def _print_period(res: Any) -> None:
    _say(res.narrative)
    rows = [
        (
            t.ticker,
            t.from_date or "",
            _num(t.previous),
            t.to_date or "",
            _num(t.current),
            _num(t.change),
            ins.fmt_signed_pct(t.pct_change),
        )
        for t in res.tickers
    ]
    render_rows(None, ["ticker", "from", "previous", "to", "current", "change", "change %"], rows)
    for e in res.excluded:
        console.print(f"[dim]excluded {e.ticker}: {e.reason}[/]", highlight=False)


@insights_app.command("period")
def period_cmd(
    ctx: typer.Context,
    date: str = typer.Option(
        None, "--date", "-d", help="A day of the period YYYY-MM-DD (default: the last trading day)."
    ),
    grain: Grain = typer.Option(Grain.day, "--grain", "-g", help="Period length."),
    measure: Measure = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The total across tickers for the period containing a day, against the previous period."""
    res = _run(ctx, tickers, lambda b, a: ins.period_over_period(b, date, grain.value, measure.value, a))
    render(res, as_json, lambda: _print_period(res))


@insights_app.command("period-to-date")
def period_to_date_cmd(
    ctx: typer.Context,
    date: str = typer.Option(
        None, "--date", "-d", help="The 'to date' day YYYY-MM-DD (default: the last one)."
    ),
    grain: Grain = typer.Option(Grain.month, "--grain", "-g", help="week, month, quarter or year."),
    measure: Measure = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Week/month/quarter/year-to-date total against the end (or same part) of the previous period."""
    res = _run(ctx, tickers, lambda b, a: ins.period_to_date(b, date, grain.value, measure.value, a))
    render(res, as_json, lambda: _print_period(res))


@insights_app.command("growth")
def growth_cmd(
    ctx: typer.Context,
    start: str = StartOpt,
    end: str = EndOpt,
    grain: Grain = typer.Option(Grain.month, "--grain", "-g", help="The rate is per this period."),
    measure: Measure = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Compound growth rate of the total (and of each ticker) over a window."""
    res = _run(ctx, tickers, lambda b, a: ins.growth(b, start, end, grain.value, measure.value, a))

    def text() -> None:
        _say(res.narrative)
        rows = [
            (
                t.ticker,
                t.first_date,
                _num(t.first_value),
                t.last_date,
                _num(t.last_value),
                ins.fmt_signed_pct(t.rate_pct),
                "yes" if t.partial else "",
            )
            for t in res.tickers
        ]
        render_rows(None, ["ticker", "from", "first", "to", "last", f"per {res.grain}", "partial"], rows)

    render(res, as_json, text)


@insights_app.command("ranked")
def ranked_cmd(
    ctx: typer.Context,
    start: str = StartOpt,
    end: str = EndOpt,
    bottom: bool = BottomOpt,
    n: int = NOpt,
    measure: Measure = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Tickers ranked by their change (prices) or total (volume) over a window."""
    res = _run(ctx, tickers, lambda b, a: ins.ranked(b, start, end, n, bottom, measure.value, a))

    def text() -> None:
        _say(res.narrative)
        rows = [
            (
                r.rank,
                r.ticker,
                r.first_date,
                _num(r.first_value),
                r.last_date,
                _num(r.last_value),
                ins.fmt_signed_pct(r.pct_change),
                _num(r.total),
            )
            for r in res.ranked
        ]
        render_rows(None, ["rank", "ticker", "from", "first", "to", "last", "change %", "total"], rows)

    render(res, as_json, text)


@insights_app.command("extremes")
def extremes_cmd(
    ctx: typer.Context,
    start: str = StartOpt,
    end: str = EndOpt,
    measure: Measure = MeasureOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Highest and lowest total (and per-ticker values) over a window, with their dates."""
    res = _run(ctx, tickers, lambda b, a: ins.extremes(b, start, end, measure.value, a))

    def text() -> None:
        _say(res.narrative)
        rows = [(t.ticker, _num(t.max_value), t.max_date, _num(t.min_value), t.min_date) for t in res.tickers]
        render_rows(None, ["ticker", "max", "on", "min", "on"], rows)

    render(res, as_json, text)


@insights_app.command("anomalies")
def anomalies_cmd(
    ctx: typer.Context,
    start: str = StartOpt,
    end: str = EndOpt,
    sensitivity: float = typer.Option(0.5, "--sensitivity", "-s", help="0 (fewest) to 1 (most anomalies)."),
    measure: PriceMeasure = PriceOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Unusual days, found on returns, with the tickers that drove them."""
    res = _run(
        ctx,
        tickers,
        lambda b, a: ins.anomalies(b, start, end, sensitivity, measure.value, corporate_actions=a),
    )

    def text() -> None:
        _say(res.narrative)
        rows = [
            (
                a.date,
                f"{a.score:.1f}",
                _num(a.actual),
                _num(a.expected),
                ins.fmt_signed_pct(a.pct_deviation),
                ", ".join(f"{c.ticker} {_num(c.actual)} vs {_num(c.expected)}" for c in a.top),
                "yes" if a.market_wide else "",
            )
            for a in res.anomalies
        ]
        cols = [
            "date",
            "score",
            "actual",
            "expected",
            "deviation",
            "top contributors (actual vs expected)",
            "market",
        ]
        render_rows(None, cols, rows)

    render(res, as_json, text)


@insights_app.command("forecast")
def forecast_cmd(
    ctx: typer.Context,
    ticker: str = typer.Option(..., "--ticker", help="The ticker to forecast."),
    horizon: int = typer.Option(30, "--horizon", help="Trading days ahead."),
    measure: PriceMeasure = PriceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Point forecast with 80% and 95% prediction intervals."""
    res = _run(ctx, None, lambda b, a: ins.forecast(b, ticker, horizon, measure.value, a))

    def text() -> None:
        _say(res.narrative)
        rows = [
            (
                p.step,
                p.date,
                _num(p.point),
                f"{_num(p.lo80)} – {_num(p.hi80)}",
                f"{_num(p.lo95)} – {_num(p.hi95)}",
            )
            for p in res.points
        ]
        render_rows(None, ["step", "date", "forecast", "80% interval", "95% interval"], rows)

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
    measure: PriceMeasure = PriceOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """How each ticker fared in a downturn: return, drawdown, volatility, beta, recovery."""
    settings = settings_of(ctx)
    with user_errors():
        extra = user_windows(settings, define or [])
    if list_:
        windows = {**ins.BUILTIN_WINDOWS, **extra}
        rows = [(w.name, w.start, w.end, w.label) for w in windows.values()]

        def listing() -> None:
            render_rows("analysis windows", ["name", "start", "end", "label"], rows)

        render(list(windows.values()), as_json, listing)
        return
    if not period and not (start and end):
        period = "study-2008-focus"
    res = _run(ctx, tickers, lambda b, a: ins.recession(b, period, start, end, extra, measure.value, a))

    def text() -> None:
        _say(res.narrative)
        rows = [
            (
                r.rank or "",
                r.ticker,
                ins.fmt_signed_pct(r.return_pct),
                ins.fmt_signed_pct(r.max_drawdown_pct),
                f"{r.peak_date} → {r.trough_date}",
                ins.fmt_signed_pct(r.volatility_pct).lstrip("+"),
                f"{ins.fmt_signed_pct(r.worst_day_pct)} {r.worst_day or ''}",
                f"{ins.fmt_signed_pct(r.best_day_pct)} {r.best_day or ''}",
                _num(r.beta),
                _num(r.correlation),
                _recovery(r),
            )
            for r in (*res.tickers, res.basket)
        ]
        cols = [
            "rank",
            "ticker",
            "return",
            "max drawdown",
            "peak → trough",
            "vol (ann.)",
            "worst day",
            "best day",
            "beta",
            "corr",
            "recovery",
        ]
        render_rows(f"{res.window.label}: {res.first_date} to {res.last_date}", cols, rows)

    render(res, as_json, text)


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
    start: str = StartOpt,
    end: str = EndOpt,
    n: int = typer.Option(5, "--n", "-n", help="How many insights."),
    measure: PriceMeasure = PriceOpt,
    tickers: str = TickersOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The few most important insights of a window, ranked."""
    res = _run(ctx, tickers, lambda b, a: ins.summary(b, start, end, n, measure.value, a))

    def text() -> None:
        for i in res.insights:
            _say(f"{i.rank}. {i.narrative}  [dim]({i.kind}, importance {i.importance:.1f})[/]")

    render(res, as_json, text)
