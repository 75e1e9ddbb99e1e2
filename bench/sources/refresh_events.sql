-- The refresh of segmentation "events" (see bench/sources.sh).
SELECT customers || ' customers, ' || changed || ' changed' AS result
  FROM segment.refresh('events', as_of => :'as_of', mode => 'full') \gset
