-- (e) segment.events, the event types being the kind names.
SELECT count(e) AS result
  FROM (SELECT customer_id, segment.events(event_type, occurred_at, product, :'as_of', '30 days') AS e
          FROM events GROUP BY customer_id) AS s \gset
