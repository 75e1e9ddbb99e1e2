-- (a) The floor: a bare GROUP BY customer over the events, count(*) per customer.
SELECT count(n) AS result
  FROM (SELECT customer_id, count(*) AS n FROM events GROUP BY customer_id) AS s \gset
