-- Daily close (split-adjusted) of one or more tickers over an inclusive date range,
-- one row per ticker and trading day.
-- param tickers tickers: comma-separated tickers, e.g. AAPL,MSFT
-- param start date: first day, inclusive (YYYY-MM-DD)
-- param end date: last day, inclusive (YYYY-MM-DD)
SELECT ticker, date, close
FROM market.daily_bars
WHERE list_contains($tickers::VARCHAR[], ticker)
  AND date BETWEEN $start::DATE AND $end::DATE
ORDER BY ticker, date
