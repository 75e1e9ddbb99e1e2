-- The refresh of segmentation "all" (see bench/sources.sh).
SELECT customers || ' customers, ' || changed || ' changed' AS result
  FROM segment.refresh('all', as_of => :'as_of', mode => 'full') \gset
