-- (r) The pipeline's refresh: RFM figures and scores, rules, history, and the
-- replacement of the profile, in one transaction.
SELECT customers || ' customers, ' || changed || ' changed' AS result
  FROM segment.refresh(as_of => :'as_of', mode => 'full') \gset
