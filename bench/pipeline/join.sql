-- (j) The baseline lookup: customers of a segment by a join with the profile.
SELECT count(*)::text AS result
  FROM customers AS c
  JOIN segment.profile_default AS p ON p.customer_id = c.customer_id
 WHERE p.segment = 'Lapsing' \gset
