-- The fits' distinct histories are sorted by a radix sort from 4096 rows on
-- (src/clv_state.c): the fits must not depend on the rows' order, -0 and 0
-- are one value, as the comparison sort of smaller states has them.  Rows
-- of whole days, and (x, mean value) rows whose means span at most 64 bits
-- with x, are sorted as packed 64-bit keys: the same rows twice (the radix
-- sort, packed) give the parameters of the rows once (the comparison sort),
-- every weight doubled and the log-likelihood with them.
BEGIN;
SELECT plan(8);
SET LOCAL extra_float_digits = 3;
SELECT setseed(0.25);
-- a shop of 5,000 customers with a personal pace and chance of leaving
-- after each order (as sql/pipeline_clv.sql), summarised
CREATE TEMP TABLE tap_fs_orders AS
WITH RECURSIVE o(customer_id, ordered_at, pace_days, churn, basket, alive) AS (
    SELECT id, timestamptz '2024-01-01' + random() * interval '480 days', 5 + 120 * random() ^ 2,
           0.05 + 0.5 * random(), 15 + 150 * random() ^ 3, true
      FROM generate_series(1, 5000) AS id
  UNION ALL
    SELECT customer_id, ordered_at - ln(1 - random()) * pace_days * interval '1 day',
           pace_days, churn, basket, random() >= churn
      FROM o
     WHERE alive AND ordered_at < timestamptz '2025-09-30'
)
SELECT customer_id, ordered_at, round((basket * (0.5 + random()))::numeric, 2) AS amount
  FROM o WHERE ordered_at < timestamptz '2025-09-30';
CREATE TEMP TABLE tap_fs_rows AS
SELECT customer_id AS i, (s).x, (s).t_x, (s).t_cal, (s).mean_value
  FROM (SELECT customer_id, segment.clv_summary(ordered_at, amount, '2025-09-30') AS s
          FROM tap_fs_orders GROUP BY customer_id) AS q;
SELECT is((SELECT segment.bgnbd_fit(x, t_x, t_cal ORDER BY i)::text FROM tap_fs_rows),
          (SELECT segment.bgnbd_fit(x, t_x, t_cal ORDER BY md5(i::text))::text FROM tap_fs_rows),
          'BG/NBD: the same fit whatever the order of 5,000 customers');
SELECT is((SELECT segment.pareto_nbd_fit(x, t_x, t_cal ORDER BY -i)::text FROM tap_fs_rows),
          (SELECT segment.pareto_nbd_fit(x, t_x, t_cal ORDER BY md5(i::text))::text FROM tap_fs_rows),
          'Pareto/NBD: the same');
SELECT is((SELECT segment.gamma_gamma_fit(x, mean_value ORDER BY i)::text FROM tap_fs_rows WHERE x > 0),
          (SELECT segment.gamma_gamma_fit(x, mean_value ORDER BY md5(i::text))::text FROM tap_fs_rows WHERE x > 0),
          'Gamma-Gamma: the same');
SELECT is((SELECT segment.bgnbd_fit(x, CASE WHEN i % 2 = 0 AND t_x = 0 THEN '-0'::float8 ELSE t_x END,
                                    t_cal ORDER BY md5(i::text))::text
             FROM tap_fs_rows),
          (SELECT segment.bgnbd_fit(x, t_x, t_cal)::text FROM tap_fs_rows),
          'BG/NBD: t_x of -0 and 0 are one history');
SELECT is((SELECT segment.gamma_gamma_fit(CASE WHEN i % 3 = 0 AND x = 0 THEN '-0'::float8 ELSE x END,
                                          coalesce(mean_value, 0) ORDER BY md5(i::text))::text
             FROM tap_fs_rows),
          (SELECT segment.gamma_gamma_fit(x, coalesce(mean_value, 0))::text FROM tap_fs_rows),
          'Gamma-Gamma: x of -0 and 0 are one customer');
CREATE TEMP TABLE tap_fs_small AS SELECT * FROM tap_fs_rows WHERE i <= 2500;	-- below 4096 rows, twice above
CREATE TEMP TABLE tap_fs_twice AS SELECT * FROM tap_fs_small UNION ALL SELECT * FROM tap_fs_small;
SELECT is((SELECT ((f).r, (f).alpha, (f).a, (f).b, (f).iterations)::text
             FROM (SELECT segment.bgnbd_fit(x, t_x, t_cal ORDER BY md5(i::text)) AS f FROM tap_fs_twice) AS q),
          (SELECT ((f).r, (f).alpha, (f).a, (f).b, (f).iterations)::text
             FROM (SELECT segment.bgnbd_fit(x, t_x, t_cal) AS f FROM tap_fs_small) AS q),
          'BG/NBD: whole days sorted as packed keys give the fit of the comparison sort');
SELECT is((SELECT ((f).p, (f).q, (f).v, (f).iterations)::text
             FROM (SELECT segment.gamma_gamma_fit(x, mean_value ORDER BY md5(i::text)) AS f
                     FROM tap_fs_twice WHERE x > 0) AS q),
          (SELECT ((f).p, (f).q, (f).v, (f).iterations)::text
             FROM (SELECT segment.gamma_gamma_fit(x, mean_value) AS f FROM tap_fs_small WHERE x > 0) AS q),
          'Gamma-Gamma: (x, mean value) sorted as packed keys give the fit of the comparison sort');
-- means from 1e-200 to 1e200 span more than 64 bits: the rows are sorted as they are
SELECT is((SELECT ((f).p, (f).q, (f).v, (f).iterations)::text
             FROM (SELECT segment.gamma_gamma_fit(x, mean_value * CASE i % 3 WHEN 0 THEN 1e-200 WHEN 1 THEN 1e200 ELSE 1 END
                                                  ORDER BY md5(i::text)) AS f
                     FROM tap_fs_twice WHERE x > 0) AS q),
          (SELECT ((f).p, (f).q, (f).v, (f).iterations)::text
             FROM (SELECT segment.gamma_gamma_fit(x, mean_value * CASE i % 3 WHEN 0 THEN 1e-200 WHEN 1 THEN 1e200 ELSE 1 END) AS f
                     FROM tap_fs_small WHERE x > 0) AS q),
          'Gamma-Gamma: means too far apart to pack give the fit of the comparison sort too');
SELECT * FROM finish();
ROLLBACK;
