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
-- Refreshes the pair 'inc' || suffix as refresh() chooses and 'ref' || suffix
-- in full as of as_of, and records in the test's temporary table rounds
-- (round, as_of, pair, inc_mode, inc_reason, rescored, rescore_reason,
-- same_profile, same_changes, same_counts) whether they came out the same:
-- the profiles, every column; the history; the counts, cut points and
-- source counts the refresh log holds.
CREATE FUNCTION pg_temp.refresh_twins(round integer, as_of timestamptz, suffix text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    inc segment.refreshes := segment.refresh('inc' || suffix, as_of);
    ref segment.refreshes := segment.refresh('ref' || suffix, as_of, mode => 'full');
BEGIN
    INSERT INTO rounds
    SELECT round, as_of, 'inc' || suffix, inc.mode, inc.full_reason, inc.rescored, inc.rescore_reason,
           ARRAY(SELECT pg_temp.profile('inc' || suffix)) = ARRAY(SELECT pg_temp.profile('ref' || suffix)),
           ARRAY(SELECT pg_temp.last_changes('inc' || suffix)) = ARRAY(SELECT pg_temp.last_changes('ref' || suffix)),
           (inc.customers, inc.buyers, inc.prospects, inc.changed, inc.written, inc.segments,
            inc.r_breaks, inc.f_breaks, inc.m_breaks, inc.top_spender_min, inc.sources)
           IS NOT DISTINCT FROM
           (ref.customers, ref.buyers, ref.prospects, ref.changed, ref.written, ref.segments,
            ref.r_breaks, ref.f_breaks, ref.m_breaks, ref.top_spender_min, ref.sources);
END
$$;
