-- The report of bench/rfm.sh: medians, ratios and checks.  Expects the
-- variables descriptions ("label|text" lines) and rounds, the table
-- bench_times and the result tables of the last round.
\set ON_ERROR_STOP on
\pset footer off

SELECT count(*) AS customers FROM customers \gset
SELECT count(*) AS orders FROM orders \gset
SELECT count(DISTINCT customer_id) AS buyers FROM orders \gset
\echo :customers customers (:buyers with orders), :orders orders; median of :rounds timed rounds after 1 warm-up round
\echo

CREATE TEMP TABLE steps AS
SELECT split_part(line, '|', 1) AS step, split_part(line, '|', 2) AS description, ord
  FROM string_to_table(:'descriptions', E'\n') WITH ORDINALITY AS t(line, ord)
 WHERE line <> '';

CREATE TEMP TABLE medians AS
SELECT step, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu_seconds) AS cpu_median,
       min(seconds) AS best, max(seconds) AS worst,
       string_agg(to_char(seconds, 'FM990.000'), ' ' ORDER BY run) AS runs
  FROM bench_times
 WHERE run > 0
 GROUP BY step;

\echo 'Times (seconds; spread = (slowest - fastest) / median; backend CPU leaves out parallel workers)'
SELECT s.description AS query, to_char(m.median, 'FM9990.000') AS median_s,
       m.runs AS "timed runs (s)",
       to_char(100 * (m.worst - m.best) / m.median, 'FM99990') || '%' AS spread,
       to_char(m.cpu_median, 'FM9990.00') AS "backend CPU s"
  FROM steps AS s JOIN medians AS m USING (step)
 ORDER BY s.ord;

\echo 'Ratios of the medians'
WITH m AS (SELECT jsonb_object_agg(step, median) AS t,
                  jsonb_object_agg(step, cpu_median) AS cpu FROM medians)
SELECT ratio, to_char(value, 'FM990.00') || 'x' AS value,
       to_char(cpu_value, 'FM990.00') || 'x' AS "by backend CPU", target,
       CASE WHEN target = '' THEN ''
            WHEN target LIKE '<=%' AND value <= split_part(target, ' ', 2)::float8 THEN 'met'
            WHEN target LIKE '>=%' AND value >= split_part(target, ' ', 2)::float8 THEN 'met'
            ELSE 'MISSED' END AS status
  FROM m, LATERAL (VALUES
       (1, '(c)/(a)   rfm_scores vs GROUP BY floor',
        (t->>'c')::float8 / (t->>'a')::float8, (cpu->>'c')::float8 / (cpu->>'a')::float8, '<= 1.5'),
       (2, '(b)/(c)   SQL today vs rfm_scores',
        (t->>'b')::float8 / (t->>'c')::float8, (cpu->>'b')::float8 / (cpu->>'c')::float8, '>= 2'),
       (3, '(c)/(c2)  speed-up with 2 workers per Gather',
        (t->>'c')::float8 / (t->>'p')::float8, NULL, ''),
       (4, '(b)/(a)   SQL today vs GROUP BY floor',
        (t->>'b')::float8 / (t->>'a')::float8, (cpu->>'b')::float8 / (cpu->>'a')::float8, ''),
       (5, '(a2)/(a)  rfm aggregate vs max/count/sum',
        (t->>'g')::float8 / (t->>'a')::float8, (cpu->>'g')::float8 / (cpu->>'a')::float8, '')
  ) AS r(ord, ratio, value, cpu_value, target)
 ORDER BY ord;

\echo 'Checks (on the tables of the last round)'
SELECT '(a), (a2), (b), (c) and (c2) have one row per customer with orders' AS "check",
       (SELECT count(*) FROM bench_floor) = :buyers
       AND (SELECT count(*) FROM bench_rfm_aggregate) = :buyers
       AND (SELECT count(*) FROM bench_sql) = :buyers
       AND (SELECT count(*) FROM bench_rfm) = :buyers
       AND (SELECT count(*) FROM bench_rfm_parallel) = :buyers AS ok
UNION ALL
SELECT '(b) and (c) agree on every customer''s first/last order, recency, frequency, monetary',
       NOT EXISTS (SELECT customer_id::text, first_order, last_order, recency_days, frequency, monetary
                     FROM bench_sql
                   EXCEPT
                   SELECT customer_id, first_order, last_order, recency_days, frequency, monetary
                     FROM bench_rfm)
UNION ALL
SELECT '(c) and (a) agree on last order, frequency, monetary',
       NOT EXISTS (SELECT customer_id::text, last_order, frequency, monetary FROM bench_floor
                   EXCEPT
                   SELECT customer_id, last_order, frequency, monetary FROM bench_rfm)
UNION ALL
SELECT '(a2) and (c) agree on first/last order, frequency, monetary',
       NOT EXISTS (SELECT customer_id::text, (figures).first_order, (figures).last_order,
                          (figures).orders, (figures).monetary
                     FROM bench_rfm_aggregate
                   EXCEPT
                   SELECT customer_id, first_order, last_order, frequency, monetary
                     FROM bench_rfm)
UNION ALL
SELECT '(c2) equals (c), row for row',
       NOT EXISTS (SELECT * FROM bench_rfm EXCEPT SELECT * FROM bench_rfm_parallel)
       AND NOT EXISTS (SELECT * FROM bench_rfm_parallel EXCEPT SELECT * FROM bench_rfm)
UNION ALL
SELECT '(b)''s CASE maps its scores as segment.rfm_segment_map does',
       NOT EXISTS (SELECT FROM bench_sql WHERE segment IS DISTINCT FROM segment.rfm_segment(r, f, m));

-- NTILE splits runs of equal values across buckets by row order, the breaks
-- of (c) never do: how far the two scorings differ on this shop.
\echo 'Scores: NTILE (b) against tie-aware breaks (c)'
SELECT round(count(*) FILTER (WHERE b.r = c.r) * 100.0 / count(*), 1) AS "same r %",
       round(count(*) FILTER (WHERE b.f = c.f) * 100.0 / count(*), 1) AS "same f %",
       round(count(*) FILTER (WHERE b.m = c.m) * 100.0 / count(*), 1) AS "same m %",
       round(count(*) FILTER (WHERE b.segment = c.segment) * 100.0 / count(*), 1) AS "same segment %"
  FROM bench_sql AS b JOIN bench_rfm AS c ON c.customer_id = b.customer_id::text
;
