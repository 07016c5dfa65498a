-- Sum of the closing prices of all tickers (or the chosen ones) per trading day,
-- with the number of tickers that traded that day.
-- param start date: first day, inclusive (YYYY-MM-DD)
-- param end date: last day, inclusive (YYYY-MM-DD)
-- param tickers tickers optional: comma-separated tickers (default: all)
SELECT date, round(sum(close), 4) AS total_close, count(*) AS tickers
FROM market.daily_bars
WHERE date BETWEEN $start::DATE AND $end::DATE
  AND close IS NOT NULL
  AND ($tickers::VARCHAR[] IS NULL OR list_contains($tickers::VARCHAR[], ticker))
GROUP BY date
ORDER BY date
