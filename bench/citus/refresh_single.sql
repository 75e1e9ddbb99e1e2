-- (r1) refresh() of the segmentation over the coordinator's ordinary tables.
SELECT customers || ' customers' AS result
  FROM segment.refresh('single', as_of => :'as_of', mode => 'full') \gset
