-- A full refresh of the same shop.
SELECT mode || ', ' || recomputed || ' recomputed, ' || written || ' written' AS result
  FROM segment.refresh(as_of => :'as_of', mode => 'full') \gset
