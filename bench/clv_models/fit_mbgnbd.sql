-- (mbg) The MBG/NBD fit over the same rows.
DROP TABLE IF EXISTS bench_mbgnbd;
CREATE UNLOGGED TABLE bench_mbgnbd AS SELECT segment.mbgnbd_fit(x, t_x, t_cal) AS m FROM bench_summary;
SELECT (m).iterations || ' iterations, converged ' || (m).converged AS result FROM bench_mbgnbd \gset
