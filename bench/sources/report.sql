-- The report of bench/sources.sh: medians, ratios, what the refreshes read
-- and found, and checks.  Expects the variables descriptions ("label|text"
-- lines), rounds, as_of and the table bench_times (seconds: wall clock; cpu:
-- the backend's CPU).
\set ON_ERROR_STOP on
\pset footer off

SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM orders) AS orders,
       (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM contacts) AS contacts,
       (SELECT count(*) FROM order_lines) AS lines \gset
\echo :customers customers, :orders orders, :events events, :contacts contacts, :lines order lines; median of :rounds timed rounds after 1 warm-up round
\echo

CREATE TEMP TABLE steps AS
SELECT split_part(line, '|', 1) AS step, split_part(line, '|', 2) AS description, ord
  FROM string_to_table(:'descriptions', E'\n') WITH ORDINALITY AS t(line, ord)
 WHERE line <> '';

CREATE TEMP TABLE medians AS
SELECT step, percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu) AS cpu,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS wall,
       string_agg(to_char(cpu, 'FM9990.00'), ' ' ORDER BY run) AS cpu_runs,
       string_agg(to_char(seconds, 'FM9990.00'), ' ' ORDER BY run) AS wall_runs,
       min(result) AS result
  FROM bench_times
 WHERE run > 0
 GROUP BY step;

\echo 'Times (CPU: the backend''s user + system time; wall: elapsed)'
SELECT s.description AS step, to_char(m.cpu, 'FM9990.00') AS cpu_s, m.cpu_runs AS "CPU runs (s)",
       to_char(m.wall, 'FM9990.00') AS wall_s, m.wall_runs AS "wall runs (s)", m.result
  FROM steps AS s JOIN medians AS m USING (step)
 ORDER BY s.ord;

\echo 'Ratios (of median CPU times; of median wall times alongside)'
WITH c AS (SELECT jsonb_object_agg(step, cpu) AS t, jsonb_object_agg(step, wall) AS w FROM medians)
SELECT ratio, to_char(value, 'FM990.00') AS cpu_ratio, to_char(wall, 'FM990.00') AS wall_ratio
  FROM c, LATERAL (VALUES
       (1, '(e)/(o)  refresh with events vs orders-only refresh',
           (t->>'e')::float8 / (t->>'o')::float8, (w->>'e')::float8 / (w->>'o')::float8),
       (2, '(s)/(o)  refresh with every source vs orders-only refresh',
           (t->>'s')::float8 / (t->>'o')::float8, (w->>'s')::float8 / (w->>'o')::float8),
       (3, '(e)/(a)  refresh with events vs bare GROUP BY over the events',
           (t->>'e')::float8 / (t->>'a')::float8, (w->>'e')::float8 / (w->>'a')::float8),
       (4, '(e-o)/(a)  the events'' part of the refresh vs bare GROUP BY over the events',
           ((t->>'e')::float8 - (t->>'o')::float8) / (t->>'a')::float8,
           ((w->>'e')::float8 - (w->>'o')::float8) / (w->>'a')::float8),
       (5, '(s-e)/(a)  contacts + order lines part vs bare GROUP BY over the events',
           ((t->>'s')::float8 - (t->>'e')::float8) / (t->>'a')::float8,
           ((w->>'s')::float8 - (w->>'e')::float8) / (w->>'a')::float8)
  ) AS r(ord, ratio, value, wall)
 ORDER BY ord;

\echo 'What the last refresh of "all" read'
SELECT source, rows, customers, skipped, details FROM segment.refresh_sources
 WHERE refresh_id = (SELECT last_refresh FROM segment.segmentations WHERE name = 'all')
 ORDER BY source;
\echo 'Its segments'
SELECT key AS segment, value::bigint AS customers
  FROM segment.refreshes AS r, jsonb_each_text(r.segments)
 WHERE r.id = (SELECT last_refresh FROM segment.segmentations WHERE name = 'all')
 ORDER BY value::bigint DESC, key;

\echo 'Checks'
-- Counts, not NOT EXISTS: under EXISTS the planner expects an early row and
-- picks a nested loop over the GROUP BY (hours at a million customers).
SELECT 'the three profiles have the same customers and RFM codes' AS "check",
       (SELECT count(*) FROM segment.profile_orders AS o
                     FULL JOIN segment.profile_all AS a USING (customer_id)
                     FULL JOIN segment.profile_events AS e USING (customer_id)
                    WHERE o.rfm_code IS DISTINCT FROM a.rfm_code OR o.rfm_code IS DISTINCT FROM e.rfm_code
                       OR o.customer_id IS NULL OR a.customer_id IS NULL OR e.customer_id IS NULL) = 0 AS ok
UNION ALL
SELECT 'visits and cart adds of the profile = a GROUP BY of the events in the 30-day window',
       (SELECT count(*) FROM segment.profile_all AS p
                     LEFT JOIN (SELECT customer_id,
                                       count(*) FILTER (WHERE event_type = 'visit') AS visits,
                                       count(*) FILTER (WHERE event_type = 'cart_add') AS cart_adds
                                  FROM events
                                 WHERE occurred_at > :'as_of'::timestamptz - interval '30 days'
                                   AND occurred_at <= :'as_of'::timestamptz
                                 GROUP BY customer_id) AS g USING (customer_id)
                    WHERE p.visits <> coalesce(g.visits, 0) OR p.cart_adds <> coalesce(g.cart_adds, 0)) = 0
UNION ALL
SELECT 'negative contacts of the profile = a GROUP BY of the rated contacts in the window',
       (SELECT count(*) FROM segment.profile_all AS p
                     LEFT JOIN (SELECT customer_id, count(*) FILTER (WHERE rating < 3) AS negative
                                  FROM contacts
                                 WHERE opened_at > :'as_of'::timestamptz - interval '30 days'
                                   AND opened_at <= :'as_of'::timestamptz
                                 GROUP BY customer_id) AS g USING (customer_id)
                    WHERE p.negative_contacts <> coalesce(g.negative, 0)) = 0;
