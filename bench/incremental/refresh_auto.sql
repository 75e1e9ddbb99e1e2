-- refresh() as it chooses: incremental after the orders added before it.
SELECT mode || ', ' || recomputed || ' recomputed, ' || rescored || ' rescored, ' || written || ' written'
       || coalesce(' (every customer rescored: ' || rescore_reason || ')', '') AS result
  FROM segment.refresh(as_of => :'as_of') \gset
