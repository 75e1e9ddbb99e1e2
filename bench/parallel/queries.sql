-- The timed statements of bench/parallel.sh, one per line: label|SQL.  Each
-- returns one row, so the time is the computation's, not the transfer's.
rfm|SELECT count(*), sum((r).orders), max((r).last_order) FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM orders GROUP BY customer_id) AS q
rfm_hashed|SELECT count(*), sum((r).orders), max((r).last_order) FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM orders_hashed GROUP BY customer_id) AS q
breaks|SELECT segment.breaks(amount::float8, 5) FROM orders
step|SELECT array_length(segment.kmeans_step(f, (SELECT m FROM bench_model)), 1) FROM features
bgnbd|SELECT (segment.bgnbd_fit(x, t_x, t_cal)).converged FROM clv_input
