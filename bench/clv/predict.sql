-- (p) Predictions per customer with the fitted models, into a table: p_alive,
-- expected purchases in 12 months (360 days), CLV over 12 months at 1%.
DROP TABLE IF EXISTS bench_predictions;
CREATE UNLOGGED TABLE bench_predictions AS
SELECT s.customer_id,
       segment.bgnbd_p_alive(b.bg, s.x, s.t_x, s.t_cal) AS p_alive,
       segment.bgnbd_expected_purchases(b.bg, 360, s.x, s.t_x, s.t_cal) AS expected_purchases,
       segment.clv(b.bg, g.gg, s.x, s.t_x, s.t_cal, s.mean_value, 12, 0.01, 'day') AS clv
  FROM bench_summary AS s, bench_bgnbd AS b, bench_gg AS g;
SELECT count(*) || ' rows' AS result FROM bench_predictions \gset
