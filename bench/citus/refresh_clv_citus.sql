-- (c3) refresh() with lifetime value over the distributed tables, into its
-- distributed profile: (r3) and the CLV part.
SELECT customers || ' customers, clv ' || clv_status AS result
  FROM segment.refresh('citus_clv', as_of => :'as_of', mode => 'full') \gset
