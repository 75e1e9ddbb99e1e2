-- The report of bench/clv_models.sh: medians, and each fit as a ratio to the
-- BG/NBD fit of the same run.  Expects the variables descriptions and
-- rounds, and the table bench_times.
\ir ../report_times.sql

\echo 'Fit times as a ratio to the BG/NBD fit (medians of the same run)'
WITH m AS (SELECT jsonb_object_agg(step, median) AS t FROM medians)
SELECT ratio, to_char(value, 'FM999990.00') || 'x' AS value
  FROM m, LATERAL (VALUES
       (1, '(pn)/(bg)  Pareto/NBD fit vs BG/NBD fit', (t->>'pn')::float8 / (t->>'bg')::float8),
       (2, '(mbg)/(bg)  MBG/NBD fit vs BG/NBD fit', (t->>'mbg')::float8 / (t->>'bg')::float8)
  ) AS r(ord, ratio, value)
 ORDER BY ord;

\echo 'The fitted models'
SELECT 'BG/NBD' AS model, round((m).r::numeric, 4) AS r, round((m).alpha::numeric, 3) AS alpha,
       round((m).a::numeric, 4) AS "a / s", round((m).b::numeric, 3) AS "b / beta",
       round((m).log_likelihood::numeric, 1) AS ll, (m).converged FROM bench_bgnbd
UNION ALL
SELECT 'Pareto/NBD', round((m).r::numeric, 4), round((m).alpha::numeric, 3), round((m).s::numeric, 4),
       round((m).beta::numeric, 3), round((m).log_likelihood::numeric, 1), (m).converged FROM bench_pareto
UNION ALL
SELECT 'MBG/NBD', round((m).r::numeric, 4), round((m).alpha::numeric, 3), round((m).a::numeric, 4),
       round((m).b::numeric, 3), round((m).log_likelihood::numeric, 1), (m).converged FROM bench_mbgnbd;
