-- (bg) The BG/NBD fit over every customer's (x, t_x, T): the reference.
DROP TABLE IF EXISTS bench_bgnbd;
CREATE UNLOGGED TABLE bench_bgnbd AS SELECT segment.bgnbd_fit(x, t_x, t_cal) AS m FROM bench_summary;
SELECT (m).iterations || ' iterations, converged ' || (m).converged AS result FROM bench_bgnbd \gset
