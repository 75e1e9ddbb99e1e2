-- The report of bench/clv.sh: medians, ratios and checks.  Expects the
-- variables descriptions ("label|text" lines) and rounds, and the table
-- bench_times.
\ir ../report_times.sql

-- The share per round, then its median: the two refreshes of one round ran
-- back to back, under the same load.
CREATE TEMP TABLE shares AS
SELECT b.run, (c.seconds - b.seconds) / c.seconds AS share
  FROM bench_times AS b JOIN bench_times AS c ON c.run = b.run AND c.step = 'c'
 WHERE b.step = 'b' AND b.run > 0;

\echo 'Ratios'
WITH m AS (SELECT jsonb_object_agg(step, median) AS t FROM medians)
SELECT ratio, to_char(value, 'FM999999990.000') || unit AS value, target,
       CASE WHEN target = '' THEN ''
            WHEN target LIKE '<=%' AND value <= split_part(target, ' ', 2)::float8 THEN 'met'
            WHEN target LIKE '< %' AND value < split_part(target, ' ', 2)::float8 THEN 'met'
            ELSE 'MISSED' END AS status
  FROM m, LATERAL (VALUES
       (1, '((c)-(b))/(c)  CLV part of the refresh (median of the rounds)',
        (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY share) FROM shares), '', '< 0.20'),
       (2, '((c)-(b))/(c)  the same from the fastest run of each (least disturbed)',
        (SELECT (min(seconds) FILTER (WHERE step = 'c') - min(seconds) FILTER (WHERE step = 'b'))
                / min(seconds) FILTER (WHERE step = 'c') FROM bench_times WHERE run > 0), '', ''),
       (3, '(c)/(b)  refresh with lifetime value vs without', (t->>'c')::float8 / (t->>'b')::float8, 'x', ''),
       (4, '(f1)+(f2)  both fits', (t->>'f1')::float8 + (t->>'f2')::float8, ' s', ''),
       (5, '(p)  predictions per second', (SELECT count(*) FROM bench_predictions) / (t->>'p')::float8,
        ' rows/s', ''),
       (6, '((s)+(f1)+(f2)+(p))/(c)  the CLV steps alone vs the refresh',
        ((t->>'s')::float8 + (t->>'f1')::float8 + (t->>'f2')::float8 + (t->>'p')::float8) / (t->>'c')::float8,
        '', '')
  ) AS r(ord, ratio, value, unit, target)
 ORDER BY ord;

\echo 'CLV share per round'
SELECT run, to_char(share, 'FM0.000') AS share FROM shares ORDER BY run;

\echo 'The models of the last refresh with lifetime value'
SELECT clv_status, round((bgnbd).r::numeric, 3) AS r, round((bgnbd).alpha::numeric, 3) AS alpha,
       round((bgnbd).a::numeric, 3) AS a, round((bgnbd).b::numeric, 3) AS b,
       round((gamma_gamma).p::numeric, 3) AS p, round((gamma_gamma).q::numeric, 3) AS q,
       round((gamma_gamma).v::numeric, 3) AS v, round(high_value_min::numeric, 2) AS high_value_min
  FROM segment.refresh_models WHERE segmentation = 'clv' ORDER BY refresh_id DESC LIMIT 1;

\echo 'Checks'
SELECT 'the refresh with lifetime value fitted both models' AS "check",
       (SELECT clv_status = 'fitted' FROM segment.refresh_models WHERE segmentation = 'clv'
         ORDER BY refresh_id DESC LIMIT 1) AS ok
UNION ALL
SELECT 'every buyer has p_alive, expected purchases and CLV',
       NOT EXISTS (SELECT FROM segment.profile_clv
                    WHERE frequency > 0 AND (p_alive IS NULL OR expected_purchases IS NULL OR clv IS NULL))
UNION ALL
SELECT 'both refreshes give every customer the same RFM segment',
       NOT EXISTS (SELECT FROM segment.profile_base AS b
                     FULL JOIN segment.profile_clv AS c USING (customer_id)
                    WHERE b.rfm_segment IS DISTINCT FROM c.rfm_segment)
UNION ALL
SELECT 'the refresh''s high-value cut is the 80th percentile of its CLV',
       (SELECT high_value_min FROM segment.cut_points WHERE segmentation = 'clv') =
       (SELECT percentile_disc(0.8) WITHIN GROUP (ORDER BY clv) FROM segment.profile_clv);
