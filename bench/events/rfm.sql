-- (r) The baseline: segment.rfm over the same rows (occurred_at, amount).
SELECT count(r) AS result
  FROM (SELECT customer_id, segment.rfm(occurred_at, amount) AS r
          FROM events GROUP BY customer_id) AS s \gset
