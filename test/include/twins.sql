-- Helpers of the tests that refresh one segmentation incrementally and its
-- twin in full, then compare them (\ir include/twins.sql).

-- The profile of a segmentation, every column, as rows to compare.
CREATE FUNCTION pg_temp.profile(seg text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT p::text FROM segment.%I AS p ORDER BY p.customer_id', 'profile_' || seg);
END
$$;
-- The changes the latest refresh of a segmentation recorded.
CREATE FUNCTION pg_temp.last_changes(seg text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('%s %s->%s', h.customer_id, h.from_segment, h.to_segment)
      FROM segment.history AS h
     WHERE h.segmentation = seg
       AND h.refresh_id = (SELECT x.last_refresh FROM segment.segmentations AS x WHERE x.name = seg)
     ORDER BY 1
$$;
