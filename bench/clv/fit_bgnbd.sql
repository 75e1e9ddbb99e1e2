-- (f1) The BG/NBD fit over every customer's (x, t_x, T).
DROP TABLE IF EXISTS bench_bgnbd;
CREATE UNLOGGED TABLE bench_bgnbd AS SELECT segment.bgnbd_fit(x, t_x, t_cal) AS bg FROM bench_summary;
SELECT (bg).iterations || ' iterations, converged ' || (bg).converged AS result FROM bench_bgnbd \gset
