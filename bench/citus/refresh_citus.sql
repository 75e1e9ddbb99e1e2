-- (r3) refresh() of the segmentation over the distributed tables, into its
-- distributed profile.
SELECT customers || ' customers' AS result
  FROM segment.refresh('citus', as_of => :'as_of', mode => 'full') \gset
