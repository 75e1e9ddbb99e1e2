-- The refresh of segmentation "orders" (see bench/sources.sh).
SELECT customers || ' customers, ' || changed || ' changed' AS result
  FROM segment.refresh('orders', as_of => :'as_of', mode => 'full') \gset
