-- Daily drawdown of each ticker: close against its running peak close since the start
-- of the window, in percent (0 at a new high, negative below it).
-- param start date: first day, inclusive (YYYY-MM-DD)
-- param end date: last day, inclusive (YYYY-MM-DD)
-- param tickers tickers optional: comma-separated tickers (default: all)
WITH window_bars AS (
    SELECT ticker, date, close
    FROM market.daily_bars
    WHERE date BETWEEN $start::DATE AND $end::DATE
      AND close IS NOT NULL
      AND ($tickers::VARCHAR[] IS NULL OR list_contains($tickers::VARCHAR[], ticker))
), with_peak AS (
    SELECT
        ticker,
        date,
        close,
        max(close) OVER (PARTITION BY ticker ORDER BY date ROWS UNBOUNDED PRECEDING) AS peak
    FROM window_bars
)
SELECT ticker, date, close, peak, 100.0 * (close / peak - 1) AS drawdown_pct
FROM with_peak
ORDER BY ticker, date
