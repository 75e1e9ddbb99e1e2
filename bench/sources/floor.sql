-- (a) The floor of the events' part: one pass over the events, a count and
-- the latest time per customer into a table.
DROP TABLE IF EXISTS bench_events_floor;
CREATE UNLOGGED TABLE bench_events_floor AS
SELECT customer_id, count(*) AS events, max(occurred_at) AS last_event
  FROM events
 WHERE occurred_at <= :'as_of'
 GROUP BY customer_id;
\set result ''
