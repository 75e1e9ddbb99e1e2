-- The pipeline, part 8: segment transitions between two refreshes.

-- Each customer's segment as of a refresh: the target of their latest change
-- recorded up to it (a customer who went to NULL, gone from the profile, is
-- left out).  In an SQL function a column name wins over a parameter of the
-- same name, so the parameter is always written segments_at.refresh_id: a
-- bare refresh_id would be segment.history's column.
CREATE FUNCTION segment.segments_at(refresh_id bigint)
    RETURNS TABLE (customer_id text, segment text)
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS
$$
    SELECT l.customer_id, l.to_segment
      FROM (SELECT DISTINCT ON (h.customer_id) h.customer_id, h.to_segment
              FROM segment.history AS h
             WHERE h.segmentation = (SELECT r.segmentation FROM segment.refreshes AS r
                                      WHERE r.id = segments_at.refresh_id)
               AND h.refresh_id <= segments_at.refresh_id
             ORDER BY h.customer_id, h.refresh_id DESC) AS l
     WHERE l.to_segment IS NOT NULL
$$;
COMMENT ON FUNCTION segment.segments_at(bigint) IS
    'Each customer''s segment as of a refresh, rebuilt from segment.history (customers without one are left out)';

-- The transition matrix between two refreshes of one segmentation.
CREATE FUNCTION segment.transitions(segmentation text DEFAULT NULL,
                                    from_refresh bigint DEFAULT NULL, to_refresh bigint DEFAULT NULL)
    RETURNS TABLE (from_segment text, to_segment text, customers bigint)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s    segment.segmentations;
    a    segment.refreshes;
    b    segment.refreshes;
BEGIN
    IF to_refresh IS NULL THEN
        s := segment_internal.segmentation_row(segmentation);
        SELECT * INTO b FROM segment.refreshes AS r WHERE r.id = s.last_refresh;
    ELSE
        SELECT * INTO b FROM segment.refreshes AS r WHERE r.id = to_refresh;
    END IF;
    IF b.id IS NULL THEN
        RAISE EXCEPTION 'refresh % does not exist', coalesce(to_refresh::text, '(latest)')
            USING ERRCODE = 'no_data_found',
                  HINT = 'Completed refreshes are listed in segment.refreshes.';
    END IF;
    IF from_refresh IS NULL THEN
        SELECT * INTO a FROM segment.refreshes AS r
         WHERE r.segmentation = b.segmentation AND r.id < b.id ORDER BY r.id DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'refresh % is the first of segmentation "%"', b.id, b.segmentation
                USING ERRCODE = 'no_data_found',
                      HINT = 'Transitions need two refreshes.';
        END IF;
    ELSE
        SELECT * INTO a FROM segment.refreshes AS r WHERE r.id = from_refresh;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'refresh % does not exist', from_refresh
                USING ERRCODE = 'no_data_found',
                      HINT = 'Completed refreshes are listed in segment.refreshes.';
        END IF;
    END IF;
    IF a.segmentation <> b.segmentation THEN
        RAISE EXCEPTION 'refreshes % and % belong to different segmentations ("%" and "%")',
                        a.id, b.id, a.segmentation, b.segmentation
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT x.segment, y.segment, pg_catalog.count(*)
          FROM segment.segments_at(a.id) AS x
          FULL JOIN segment.segments_at(b.id) AS y ON y.customer_id = x.customer_id
         WHERE x.segment IS NOT NULL OR y.segment IS NOT NULL
         GROUP BY 1, 2
         ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;
END
$$;
COMMENT ON FUNCTION segment.transitions(text, bigint, bigint) IS
    'How many customers went from each segment to each segment between two refreshes (default: the last two of the default segmentation); NULL means absent';
