-- (n) The first refresh of a segmentation configured just before it
-- (untimed, bench_after_step): every stored figure, profile row and history
-- row is inserted.
SELECT customers || ' customers, ' || changed || ' changed' AS result
  FROM segment.refresh('first', as_of => :'as_of', mode => 'full') \gset
