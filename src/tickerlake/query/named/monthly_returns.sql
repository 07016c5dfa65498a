-- Monthly return of each ticker: last close of the month against the last close of the
-- previous month in the window, in percent (NULL for the first month of the window).
-- param start date: first day, inclusive (YYYY-MM-DD)
-- param end date: last day, inclusive (YYYY-MM-DD)
-- param tickers tickers optional: comma-separated tickers (default: all)
WITH month_end AS (
    SELECT
        ticker,
        date_trunc('month', date)::DATE AS month,
        arg_max(close, date) AS close,
        max(date) AS last_day
    FROM market.daily_bars
    WHERE date BETWEEN $start::DATE AND $end::DATE
      AND close IS NOT NULL
      AND ($tickers::VARCHAR[] IS NULL OR list_contains($tickers::VARCHAR[], ticker))
    GROUP BY ticker, date_trunc('month', date)
)
SELECT
    ticker,
    month,
    last_day,
    close,
    100.0 * (close / lag(close) OVER (PARTITION BY ticker ORDER BY month) - 1) AS return_pct
FROM month_end
ORDER BY ticker, month
