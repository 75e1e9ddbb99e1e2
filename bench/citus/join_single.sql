-- (j1) Customers of a segment by a join with the profile, one server.
SELECT count(*)::text AS result
  FROM customers AS c JOIN segment.profile_single AS p ON p.customer_id = c.customer_id
 WHERE p.segment = 'Lapsing' \gset
