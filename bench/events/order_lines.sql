-- (l) segment.order_lines over the same rows (the product stands for the
-- category: up to thousands per customer, a worst case for the map).
SELECT count(l) AS result
  FROM (SELECT customer_id, segment.order_lines(occurred_at, timestamptz '2025-01-01', product, 30) AS l
          FROM events GROUP BY customer_id) AS s \gset
