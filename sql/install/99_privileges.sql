-- Privileges (README "Security").  PostgreSQL grants EXECUTE on every new
-- function to PUBLIC; the extension takes it back where a function is not
-- meant to be called directly.

-- The support functions of the aggregates (transition, final, combine,
-- serial, deserial): they take states an aggregate built, and a role that
-- could call them, or bind them to an aggregate of its own, could hand them
-- a crafted one.  The aggregates stay usable by everyone: PostgreSQL checks
-- EXECUTE on their support functions against the aggregate's owner.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT DISTINCT p.oid::regprocedure
          FROM pg_catalog.pg_aggregate AS a
          JOIN pg_catalog.pg_proc AS g ON g.oid = a.aggfnoid
         CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                                    a.aggserialfn, a.aggdeserialfn, a.aggmtransfn,
                                                    a.aggminvtransfn, a.aggmfinalfn]::oid[]) AS u(fn)
          JOIN pg_catalog.pg_proc AS p ON p.oid = u.fn
         WHERE g.pronamespace IN ('segment'::regnamespace, 'segment_internal'::regnamespace)
           AND p.pronamespace = 'segment_internal'::regnamespace
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- The body of refresh(): called only through refresh(), which runs it as the
-- segmentation's owner (src/owner.c calls it without an EXECUTE check).
REVOKE EXECUTE ON FUNCTION segment_internal.refresh_run(text, timestamptz, boolean, text) FROM PUBLIC;
