-- (f2) The Gamma-Gamma fit over the repeat customers' (x, mean value).
DROP TABLE IF EXISTS bench_gg;
CREATE UNLOGGED TABLE bench_gg AS SELECT segment.gamma_gamma_fit(x, mean_value) AS gg FROM bench_summary;
SELECT (gg).iterations || ' iterations, converged ' || (gg).converged AS result FROM bench_gg \gset
