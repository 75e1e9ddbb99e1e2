-- (c1) refresh() with lifetime value (clv => true) of the coordinator's
-- ordinary tables: (r1) and the CLV part (clv_summary, fits, predictions).
SELECT customers || ' customers, clv ' || clv_status AS result
  FROM segment.refresh('single_clv', as_of => :'as_of', mode => 'full') \gset
