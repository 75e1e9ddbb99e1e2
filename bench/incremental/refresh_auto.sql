-- refresh() as it chooses: incremental after the orders added before it.
SELECT mode || ', ' || recomputed || ' recomputed, ' || written || ' written' AS result
  FROM segment.refresh(as_of => :'as_of') \gset
