-- (s1) The same count with segment_of(), one server.
SELECT count(*)::text AS result FROM customers AS c
 WHERE segment_of(c.customer_id, 'single') = 'Lapsing' \gset
