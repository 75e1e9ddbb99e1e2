-- (j3) The join of the distributed customers with the colocated profile:
-- pushed down to the shards, the counts added on the coordinator.
SELECT count(*)::text AS result
  FROM d_customers AS c JOIN segment.profile_citus AS p ON p.customer_id = c.customer_id
 WHERE p.segment = 'Lapsing' \gset
