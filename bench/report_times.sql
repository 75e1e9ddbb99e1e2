-- Shared by the reports of bench/pipeline.sh, bench/clv.sh and bench/citus.sh:
-- the size of the shop, then the medians (bench/medians.sql) and the table of
-- times.  Expects the variables descriptions and rounds, and bench_times.
\set ON_ERROR_STOP on
\pset footer off

SELECT count(*) AS customers FROM customers \gset
SELECT count(*) AS orders FROM orders \gset
\echo :customers customers, :orders orders; median of :rounds timed rounds after 1 warm-up round
\echo

\ir medians.sql

\echo 'Times (seconds)'
SELECT s.description AS query, to_char(m.median, 'FM9990.000') AS median_s,
       m.runs AS "timed runs (s)", m.result
  FROM steps AS s JOIN medians AS m USING (step)
 ORDER BY s.ord;
