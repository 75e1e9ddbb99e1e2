-- (pn) The Pareto/NBD fit over the same rows.
DROP TABLE IF EXISTS bench_pareto;
CREATE UNLOGGED TABLE bench_pareto AS SELECT segment.pareto_nbd_fit(x, t_x, t_cal) AS m FROM bench_summary;
SELECT (m).iterations || ' iterations, converged ' || (m).converged AS result FROM bench_pareto \gset
