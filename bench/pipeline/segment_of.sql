-- (s) The same count with segment_of() on every customer.
SELECT count(*)::text AS result
  FROM customers AS c
 WHERE segment_of(c.customer_id) = 'Lapsing' \gset
