-- The demo report: RFM segments of the example shop as of 2025-06-30.
\pset footer off
\echo
\echo 'The example shop (demo/shop.sql): customers and paid orders'
SELECT (SELECT count(*) FROM shop.customers) AS customers,
       (SELECT count(*) FROM shop.paid_orders) AS paid_orders,
       (SELECT sum(amount) FROM shop.paid_orders) AS revenue,
       (SELECT min(ordered_at)::date FROM shop.paid_orders) AS first_order,
       (SELECT max(ordered_at)::date FROM shop.paid_orders) AS last_order;

CREATE TEMP TABLE rfm AS
SELECT * FROM segment.rfm_scores('shop.paid_orders', 'customer_id', 'ordered_at', 'amount',
                                 as_of => '2025-06-30 23:59:59+00');

\echo 'RFM segments as of 2025-06-30 (segment.rfm_scores)'
SELECT segment,
       count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS "share %",
       sum(monetary) AS revenue,
       round(100.0 * sum(monetary) / sum(sum(monetary)) OVER (), 1) AS "revenue %",
       round(avg(recency_days)) AS "mean recency (days)",
       round(avg(frequency), 1) AS "mean orders"
  FROM rfm
 GROUP BY segment
 ORDER BY min((SELECT min(priority) FROM segment.rfm_segment_map AS m WHERE m.segment = rfm.segment));

\echo 'Cut points the scores used (segment.breaks: percentile_disc at 20/40/60/80 %)'
SELECT 'recency (days)' AS figure, segment.breaks(recency_days) AS breaks FROM rfm
UNION ALL
SELECT 'frequency (orders)', segment.breaks(frequency) FROM rfm
UNION ALL
SELECT 'monetary (EUR)', segment.breaks(monetary) FROM rfm;

\echo 'Where the generator''s kinds of customer landed: their three largest segments (% of the kind)'
SELECT kind, customers, string_agg(format('%s %s%%', segment, pct), ', ' ORDER BY pct DESC, segment) AS "top segments"
  FROM (SELECT c.kind, r.segment,
               sum(count(*)) OVER (PARTITION BY c.kind) AS customers,
               round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY c.kind)) AS pct,
               row_number() OVER (PARTITION BY c.kind ORDER BY count(*) DESC, r.segment) AS rank
          FROM rfm AS r
          JOIN shop.customers AS c ON c.customer_id = r.customer_id::integer
         GROUP BY c.kind, r.segment) AS ranked
 WHERE rank <= 3
 GROUP BY kind, customers
 ORDER BY customers DESC;
