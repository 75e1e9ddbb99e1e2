-- (b) RFM as one writes it in SQL today: the figures per customer, three
-- NTILE(5) windows for the scores, a CASE for the named segments (the same
-- map as the default rows of segment.rfm_segment_map), into a table.
DROP TABLE IF EXISTS bench_sql;
CREATE UNLOGGED TABLE bench_sql AS
WITH figures AS (
    SELECT customer_id,
           min(ordered_at) AS first_order,
           max(ordered_at) AS last_order,
           :'as_of'::date - max(ordered_at)::date AS recency_days,
           count(*) AS frequency,
           sum(amount) AS monetary
      FROM orders
     WHERE ordered_at <= :'as_of'
     GROUP BY customer_id
), scores AS (
    SELECT *,
           ntile(5) OVER (ORDER BY recency_days DESC) AS r,
           ntile(5) OVER (ORDER BY frequency) AS f,
           ntile(5) OVER (ORDER BY monetary) AS m
      FROM figures
)
SELECT customer_id, first_order, last_order, recency_days, frequency, monetary,
       r, f, m, r::text || f::text || m::text AS rfm_code,
       CASE
           WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'Champions'
           WHEN r >= 3 AND f >= 4 THEN 'Loyal Customers'
           WHEN r >= 4 AND f >= 2 THEN 'Potential Loyalists'
           WHEN r = 5 THEN 'New Customers'
           WHEN r = 4 THEN 'Promising'
           WHEN r = 3 AND f >= 2 THEN 'Need Attention'
           WHEN r = 3 THEN 'About to Sleep'
           WHEN f >= 4 AND m >= 4 THEN 'Can''t Lose Them'
           WHEN f >= 3 THEN 'At Risk'
           WHEN r = 2 THEN 'Hibernating'
           ELSE 'Lost'
       END AS segment
  FROM scores;
\set result ''
