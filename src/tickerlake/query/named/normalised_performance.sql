-- Each ticker's close normalised to 100 at its first trading day in the window
-- (close / first close in the window × 100), to compare performance across tickers.
-- param start date: first day, inclusive (YYYY-MM-DD)
-- param end date: last day, inclusive (YYYY-MM-DD)
-- param tickers tickers optional: comma-separated tickers (default: all)
WITH window_bars AS (
    SELECT ticker, date, close
    FROM market.daily_bars
    WHERE date BETWEEN $start::DATE AND $end::DATE
      AND close IS NOT NULL
      AND ($tickers::VARCHAR[] IS NULL OR list_contains($tickers::VARCHAR[], ticker))
)
SELECT
    ticker,
    date,
    close,
    100.0 * close / first_value(close) OVER (PARTITION BY ticker ORDER BY date) AS normalised
FROM window_bars
ORDER BY ticker, date
