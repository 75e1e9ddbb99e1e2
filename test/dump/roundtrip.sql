-- After pg_dump -Fc and pg_restore into a new database (test/dump/run.sh):
-- every table pg_extension_config_dump registers, the refresh id sequence
-- and every profile are as the source had them (dump_check.snapshot, made
-- by test/dump/setup.psql and restored with them): the default RFM segment
-- row the user deleted stays deleted, the edited and added ones stay, and
-- so do the rules added, disabled, moved and dropped (issue 12, finding 8).
-- Then a refresh of each segmentation changes no customer's segment.
BEGIN;
SELECT plan((SELECT count(DISTINCT tab)::integer FROM dump_check.snapshot) + 8
            + 4 * (SELECT count(*)::integer FROM segment.segmentations));
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

-- Nothing registered is left out of the snapshot (nor the other way round).
SELECT set_eq(
    $$SELECT c::regclass::text FROM pg_extension AS e, unnest(e.extconfig) AS c WHERE e.extname = 'segment'$$,
    $$SELECT DISTINCT tab FROM dump_check.snapshot WHERE tab NOT LIKE 'segment.profile\_%'$$,
    'the configuration tables are those of the source');

-- Row for row, every column.
SELECT bag_eq(
    CASE WHEN (SELECT relkind FROM pg_class WHERE oid = tab::regclass) = 'S'
         THEN format('SELECT last_value::text FROM %s', tab)
         ELSE format('SELECT x::text FROM %s AS x', tab) END,
    format('SELECT row FROM dump_check.snapshot WHERE tab = %L', tab),
    tab || ' is restored as it was')
  FROM (SELECT DISTINCT tab FROM dump_check.snapshot) AS t ORDER BY tab;

-- The edits the finding is about, by name.
SELECT is((SELECT count(*) FROM segment.rfm_segment_map WHERE priority = 110), 0::bigint,
          'the default map row the user deleted (Lost) stays deleted');
SELECT is((SELECT segment FROM segment.rfm_segment_map WHERE priority = 50), 'Promising Newcomers',
          'the default map row the user edited stays edited');
SELECT is((SELECT segment FROM segment.rfm_segment_map WHERE priority = 120), 'Gone Quiet',
          'the map row the user added stays');
SELECT set_eq('SELECT priority FROM segment.rfm_segment_map_removed', ARRAY[110],
              'the deleted default is still recorded as removed');
SELECT is((SELECT enabled FROM segment.rules WHERE segmentation = 'main' AND name = 'Lapsing'), false,
          'a built-in rule the user disabled stays disabled');
SELECT is((SELECT count(*) FROM segment.rules WHERE segmentation = 'quarterly' AND builtin = 'one_time_buyer'),
          0::bigint, 'a built-in rule the user dropped stays dropped');
SELECT is((SELECT priority FROM segment.rules WHERE segmentation = 'quarterly' AND name = 'Top Spenders'), 45,
          'a built-in rule the user moved keeps its priority');

-- A refresh after the restore: the same segments.
CREATE TEMP TABLE refreshed AS
SELECT s.name, (segment.refresh(s.name)).* FROM segment.segmentations AS s;
SELECT is(r.changed, 0::bigint, format('a refresh of "%s" after the restore changes no segment', r.name))
  FROM refreshed AS r ORDER BY r.name;
SELECT ok(r.id > (SELECT max(row::bigint) FROM dump_check.snapshot WHERE tab = 'segment.refreshes_id_seq'),
          format('the refresh of "%s" gets a new id', r.name))
  FROM refreshed AS r ORDER BY r.name;
SELECT is((SELECT count(*) FROM segment.transitions(segmentation => r.name)
            WHERE from_segment IS DISTINCT FROM to_segment), 0::bigint,
          format('transitions() of "%s" over the restore: no move', r.name))
  FROM refreshed AS r ORDER BY r.name;
-- Segments, RFM segments, flags and clusters of each profile as the source had them.
CREATE FUNCTION pg_temp.segments(profile text, restored boolean)
    RETURNS TABLE (customer_id text, segment text, rfm_segment text, flags text[], cluster integer,
                   cluster_name text) LANGUAGE plpgsql AS
$$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT p.customer_id::text, p.segment, p.rfm_segment, p.flags, p.cluster, p.cluster_name FROM %s',
        CASE WHEN restored THEN format('segment.%I AS p', profile)
             ELSE format('(SELECT (s.row::segment.%I).* FROM dump_check.snapshot AS s WHERE s.tab = %L) AS p',
                         profile, 'segment.' || profile) END);
END
$$;
SELECT set_eq(format('SELECT * FROM pg_temp.segments(%L, true)', s.profile),
              format('SELECT * FROM pg_temp.segments(%L, false)', s.profile),
              format('"%s" after a refresh: the segments, flags and clusters of the source', s.name))
  FROM segment.segmentations AS s ORDER BY s.name;

SELECT * FROM finish();
ROLLBACK;
