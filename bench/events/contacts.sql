-- (c) segment.contacts over the same rows (a cart add stands for a negative contact).
SELECT count(c) AS result
  FROM (SELECT customer_id, segment.contacts(occurred_at, event_type = 'cart_add', :'as_of', '30 days') AS c
          FROM events GROUP BY customer_id) AS s \gset
