-- Traded volume per ticker over a date range: total, average per trading day and the
-- number of trading days, largest total first.
-- param start date: first day, inclusive (YYYY-MM-DD)
-- param end date: last day, inclusive (YYYY-MM-DD)
SELECT
    ticker,
    sum(volume)::BIGINT AS total_volume,
    avg(volume) AS avg_daily_volume,
    count(*) AS trading_days
FROM market.daily_bars
WHERE date BETWEEN $start::DATE AND $end::DATE
GROUP BY ticker
ORDER BY total_volume DESC, ticker
