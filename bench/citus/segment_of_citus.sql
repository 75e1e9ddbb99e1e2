-- (s3) segment_of() over the distributed customers: run on the workers
-- against the local shards of the profile.
SELECT count(*)::text AS result FROM d_customers AS c
 WHERE segment_of(c.customer_id, 'citus') = 'Lapsing' \gset
