-- rfm, breaks, score and rfm_scores against independent plain-SQL
-- computations, on seeded generated orders.
BEGIN;
SELECT plan(6);
SET LOCAL timezone = 'Europe/Berlin';

SELECT setseed(0.17);
CREATE TEMP TABLE orders AS
SELECT (1 + floor(random() * 3000))::int AS customer_id,
       timestamptz '2023-01-01' + random() * interval '700 days' AS ordered_at,
       round((5 + exp(3 + random() * 3))::numeric, 2) AS amount
  FROM generate_series(1, 30000);

SELECT results_eq(
    $$SELECT customer_id, (r).first_order, (r).last_order, (r).orders, (r).purchase_days,
             (r).monetary, (r).mean_amount,
             round(((r).mean_gap_days)::numeric, 6)
        FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r
                FROM orders GROUP BY customer_id) AS s
       ORDER BY customer_id$$,
    $$SELECT customer_id, min(ordered_at), max(ordered_at), count(*),
             count(DISTINCT ordered_at::date)::int, sum(amount), avg(amount),
             CASE WHEN count(DISTINCT ordered_at::date) > 1
                  THEN round((extract(epoch FROM max(ordered_at) - min(ordered_at)) / 86400
                              / (count(DISTINCT ordered_at::date) - 1))::numeric, 6) END
        FROM orders GROUP BY customer_id ORDER BY customer_id$$,
    'rfm equals min, max, count, count distinct days, sum, avg and the mean gap');

SELECT results_eq(
    $$SELECT unnest(segment.breaks(amount, 7)) FROM orders$$,
    $$SELECT percentile_disc(i / 7.0) WITHIN GROUP (ORDER BY amount::float8)
        FROM generate_series(1, 6) AS i, orders GROUP BY i ORDER BY i$$,
    'breaks(x, 7) equals percentile_disc(i/7)');

CREATE TEMP TABLE scored AS
SELECT * FROM segment.rfm_scores('orders', 'customer_id', 'ordered_at', 'amount',
                                 '2025-01-01 00:00+01');

-- The tie rule written out in SQL: score = 1 + number of cut points below
-- the value, with cut point i = percentile_disc(i/5); reversed for recency.
CREATE TEMP TABLE reference AS
WITH per_customer AS (
    SELECT customer_id::text AS customer_id,
           (date '2025-01-01' - max(ordered_at)::date) AS recency,
           count(*) AS frequency, sum(amount) AS monetary
      FROM orders GROUP BY customer_id
), cuts AS (
    SELECT i,
           percentile_disc(i / 5.0) WITHIN GROUP (ORDER BY recency) AS rc,
           percentile_disc(i / 5.0) WITHIN GROUP (ORDER BY frequency) AS fc,
           percentile_disc(i / 5.0) WITHIN GROUP (ORDER BY monetary) AS mc
      FROM per_customer, generate_series(1, 4) AS i GROUP BY i
)
SELECT p.customer_id, p.recency, p.frequency, p.monetary,
       5 - (SELECT count(*) FROM cuts WHERE rc < p.recency)::int AS r,
       1 + (SELECT count(*) FROM cuts WHERE fc < p.frequency)::int AS f,
       1 + (SELECT count(*) FROM cuts WHERE mc < p.monetary)::int AS m
  FROM per_customer AS p;

SELECT results_eq(
    $$SELECT customer_id, recency_days, frequency, monetary, r, f, m FROM scored ORDER BY 1$$,
    $$SELECT customer_id, recency, frequency, monetary, r, f, m FROM reference ORDER BY 1$$,
    'rfm_scores figures and scores equal the SQL reference');

SELECT is((SELECT count(*) FROM scored WHERE segment IS NULL OR rfm_code <> r::text || f || m),
          0::bigint, 'every customer has a segment and a matching code');

SELECT is((SELECT count(*) FROM scored AS s
            WHERE s.segment IS DISTINCT FROM
                  (SELECT m.segment FROM segment.rfm_segment_map AS m
                    WHERE s.r BETWEEN m.r_min AND m.r_max AND s.f BETWEEN m.f_min AND m.f_max
                      AND s.m BETWEEN m.m_min AND m.m_max
                    ORDER BY m.priority LIMIT 1)),
          0::bigint, 'segments are the first matching map row');

-- Equal figures, equal scores: the property NTILE lacks.
SELECT is((SELECT count(*) FROM (SELECT frequency FROM scored GROUP BY frequency
                                  HAVING count(DISTINCT f) > 1) AS x),
          0::bigint, 'customers with equal frequency have equal F scores');

SELECT * FROM finish();
ROLLBACK;
