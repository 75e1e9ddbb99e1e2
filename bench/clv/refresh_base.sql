-- (b) The baseline: segment.refresh() of a segmentation without lifetime
-- value (RFM figures and scores, rules, history, profile replaced).
SELECT customers || ' customers, ' || changed || ' changed' AS result
  FROM segment.refresh('base', as_of => :'as_of', mode => 'full') \gset
