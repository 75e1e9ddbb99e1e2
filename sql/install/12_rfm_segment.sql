-- The named RFM segments (src/rfm_segment.c) and the table that defines them.

CREATE TABLE segment.rfm_segment_map (
    priority integer PRIMARY KEY,
    segment  text    NOT NULL CHECK (segment <> ''),
    r_min    integer NOT NULL,
    r_max    integer NOT NULL,
    f_min    integer NOT NULL,
    f_max    integer NOT NULL,
    m_min    integer NOT NULL,
    m_max    integer NOT NULL,
    CONSTRAINT r_range CHECK (r_min BETWEEN 1 AND 10 AND r_max BETWEEN r_min AND 10),
    CONSTRAINT f_range CHECK (f_min BETWEEN 1 AND 10 AND f_max BETWEEN f_min AND 10),
    CONSTRAINT m_range CHECK (m_min BETWEEN 1 AND 10 AND m_max BETWEEN m_min AND 10)
);
COMMENT ON TABLE segment.rfm_segment_map IS
    'Named RFM segments: a score triple (r, f, m) belongs to the first row, by priority, whose ranges hold it. Editable; saved by pg_dump';

-- The default rows are a partition of the 5x5x5 cube: every (r, f, m) in
-- 1..5 matches exactly one row, so priority only matters once a user edits.
-- They are written once, here: the install script inserts them, and the
-- triggers below compare the map with them.
CREATE FUNCTION segment.rfm_segment_map_defaults() RETURNS SETOF segment.rfm_segment_map
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT v.priority, v.segment, v.r_min, v.r_max, v.f_min, v.f_max, v.m_min, v.m_max
      FROM (VALUES
        ( 10, 'Champions',           4, 5, 4, 5, 4, 5),
        ( 20, 'Loyal Customers',     4, 5, 4, 5, 1, 3),
        ( 21, 'Loyal Customers',     3, 3, 4, 5, 1, 5),
        ( 30, 'Potential Loyalists', 4, 5, 2, 3, 1, 5),
        ( 40, 'New Customers',       5, 5, 1, 1, 1, 5),
        ( 50, 'Promising',           4, 4, 1, 1, 1, 5),
        ( 60, 'Need Attention',      3, 3, 2, 3, 1, 5),
        ( 70, 'About to Sleep',      3, 3, 1, 1, 1, 5),
        ( 80, 'Can''t Lose Them',    1, 2, 4, 5, 4, 5),
        ( 90, 'At Risk',             1, 2, 3, 5, 1, 3),
        ( 91, 'At Risk',             1, 2, 3, 3, 4, 5),
        (100, 'Hibernating',         2, 2, 1, 2, 1, 5),
        (110, 'Lost',                1, 1, 1, 2, 1, 5))
           AS v(priority, segment, r_min, r_max, f_min, f_max, m_min, m_max)
$$;
COMMENT ON FUNCTION segment.rfm_segment_map_defaults() IS
    'The default rows of segment.rfm_segment_map, as CREATE EXTENSION inserts them';

INSERT INTO segment.rfm_segment_map SELECT * FROM segment.rfm_segment_map_defaults();

-- Dump and restore.  pg_dump saves every row of the map, and a restore runs
-- this script (which inserts the defaults) before it loads them: a restored
-- row replaces the default row of the same priority (trigger
-- replace_same_priority), and a default row the user had removed must be
-- removed again, so the priorities of the removed default rows are kept in
-- a table of their own, saved by pg_dump too.  Loading it deletes those
-- default rows, whichever of the two tables a restore loads first.
CREATE TABLE segment.rfm_segment_map_removed (
    priority integer PRIMARY KEY
);
COMMENT ON TABLE segment.rfm_segment_map_removed IS
    'Priorities of the default rfm_segment_map rows that the map no longer has (kept by triggers, saved by pg_dump so that a restore removes those rows again; inserting one removes the default row)';

-- Brings rfm_segment_map_removed up to date: the default priorities the map
-- does not have.  A statement trigger (the map has a few dozen rows).
CREATE FUNCTION segment_internal.rfm_segment_map_track() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    stale integer[];
BEGIN
    -- The listed priorities the map has again, or that are no default.
    -- Statement triggers fire for no rows too: only a DELETE that deletes
    -- something, or the triggers would call each other for ever.
    SELECT pg_catalog.array_agg(x.priority) INTO stale
      FROM segment.rfm_segment_map_removed AS x
     WHERE EXISTS (SELECT FROM segment.rfm_segment_map AS m WHERE m.priority = x.priority)
        OR NOT EXISTS (SELECT FROM segment.rfm_segment_map_defaults() AS d WHERE d.priority = x.priority);
    IF stale IS NOT NULL THEN
        DELETE FROM segment.rfm_segment_map_removed AS x WHERE x.priority = ANY (stale);
    END IF;
    INSERT INTO segment.rfm_segment_map_removed AS x (priority)
    SELECT d.priority FROM segment.rfm_segment_map_defaults() AS d
     WHERE NOT EXISTS (SELECT FROM segment.rfm_segment_map AS m WHERE m.priority = d.priority)
        ON CONFLICT (priority) DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.rfm_segment_map_track() IS
    'Trigger: records in rfm_segment_map_removed the default priorities that rfm_segment_map does not have';

-- A removed priority, inserted (by a restore): its row goes if it is still
-- the default one (a restore created it; an edited row is the user's).
CREATE FUNCTION segment_internal.rfm_segment_map_remove_default() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF EXISTS (SELECT FROM segment.rfm_segment_map AS m, segment.rfm_segment_map_defaults() AS d
                WHERE m.priority = NEW.priority AND d.priority = NEW.priority AND m = d) THEN
        DELETE FROM segment.rfm_segment_map AS m WHERE m.priority = NEW.priority;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.rfm_segment_map_remove_default() IS
    'Trigger: a priority inserted into rfm_segment_map_removed deletes the default rfm_segment_map row of that priority';

-- pg_dump saves the rows; a restore runs this script first, so a restored row
-- replaces the default row of the same priority instead of failing on the key.
CREATE FUNCTION segment_internal.rfm_segment_map_replace() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    DELETE FROM segment.rfm_segment_map WHERE priority = NEW.priority;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION segment_internal.rfm_segment_map_replace() IS
    'Trigger: an inserted rfm_segment_map row replaces the row of the same priority';

CREATE TRIGGER replace_same_priority BEFORE INSERT ON segment.rfm_segment_map
    FOR EACH ROW EXECUTE FUNCTION segment_internal.rfm_segment_map_replace();
CREATE TRIGGER track_removed_defaults AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON segment.rfm_segment_map
    FOR EACH STATEMENT EXECUTE FUNCTION segment_internal.rfm_segment_map_track();
CREATE TRIGGER remove_default AFTER INSERT ON segment.rfm_segment_map_removed
    FOR EACH ROW EXECUTE FUNCTION segment_internal.rfm_segment_map_remove_default();
-- Deleting a removed priority by hand does not bring a row back: the list
-- is made whole again.
CREATE TRIGGER keep_removed AFTER DELETE OR UPDATE OR TRUNCATE ON segment.rfm_segment_map_removed
    FOR EACH STATEMENT EXECUTE FUNCTION segment_internal.rfm_segment_map_track();

SELECT pg_catalog.pg_extension_config_dump('segment.rfm_segment_map', '');
SELECT pg_catalog.pg_extension_config_dump('segment.rfm_segment_map_removed', '');

CREATE FUNCTION segment.rfm_segment(r integer, f integer, m integer) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_rfm_segment' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.rfm_segment(integer, integer, integer) IS
    'Named RFM segment of a score triple, from segment.rfm_segment_map (NULL when no row holds it)';

CREATE FUNCTION segment.rfm_segment_map_check(buckets integer DEFAULT 5)
    RETURNS TABLE (r integer, f integer, m integer, segments text[])
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
        SELECT r.r, f.f, m.m,
               pg_catalog.array_agg(map.segment ORDER BY map.priority)
                   FILTER (WHERE map.segment IS NOT NULL)
          FROM pg_catalog.generate_series(1, buckets) AS r(r)
         CROSS JOIN pg_catalog.generate_series(1, buckets) AS f(f)
         CROSS JOIN pg_catalog.generate_series(1, buckets) AS m(m)
          LEFT JOIN segment.rfm_segment_map AS map
                 ON r.r BETWEEN map.r_min AND map.r_max
                AND f.f BETWEEN map.f_min AND map.f_max
                AND m.m BETWEEN map.m_min AND map.m_max
         GROUP BY r.r, f.f, m.m
        HAVING pg_catalog.count(map.segment) <> 1
         ORDER BY r.r, f.f, m.m
$$;
COMMENT ON FUNCTION segment.rfm_segment_map_check(integer) IS
    'Score triples that rfm_segment_map leaves unmapped or maps more than once (none for the default map)';
