-- (c) The same refresh with lifetime value: clv_summary in the same pass
-- over the orders, BG/NBD and Gamma-Gamma fits, p_alive, expected purchases
-- and CLV per customer, the high-value cut and the At Risk, High Value rule.
SELECT customers || ' customers, clv ' || clv_status AS result
  FROM segment.refresh('clv', as_of => :'as_of', mode => 'full') \gset
