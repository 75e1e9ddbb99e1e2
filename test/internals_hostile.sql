-- The internals of segment_internal, called directly by a role that is not a
-- segmentation's owner: USAGE on the schema gives it nothing it could not
-- do itself (each write or read runs with the caller's privileges).
BEGIN;
SELECT plan(7);
CREATE ROLE tap_hostile_x LOGIN;
CREATE TABLE public.tap_hx_orders (customer_id int, ordered_at timestamptz, amount numeric);
INSERT INTO tap_hx_orders VALUES (1, now(), 10);
SELECT segment.configure('tap_hx_orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'hx');
SELECT segment.refresh('hx');
CREATE TEMP TABLE segment_refresh_new AS SELECT * FROM segment.profile_hx;
GRANT ALL ON segment_refresh_new TO tap_hostile_x;
-- unpacked() hands any value of segment.rfm_summary back as it is: NULL
-- fields, a numeric long enough to be stored compressed, a NULL row.
CREATE TEMP TABLE tap_hx_figures (s segment.rfm_summary);
INSERT INTO tap_hx_figures VALUES
    (ROW(now(), NULL, 3, NULL, 12.50, NULL, 'NaN')::segment.rfm_summary),
    (ROW(NULL, NULL, NULL, NULL, repeat('9', 5000)::numeric, -repeat('1', 3000)::numeric, 'Infinity')::segment.rfm_summary);
SELECT is((SELECT count(*) FROM tap_hx_figures AS f
            WHERE segment_internal.unpacked(f.s)::text = f.s::text
              AND (segment_internal.unpacked(f.s)).monetary IS NOT DISTINCT FROM (f.s).monetary
              AND (segment_internal.unpacked(f.s)).mean_gap_days::text = (f.s).mean_gap_days::text), 2::bigint,
          'unpacked() gives every field of a stored figures row as it is, a compressed numeric too');
SELECT ok(segment_internal.unpacked(NULL) IS NULL, 'unpacked(NULL) is NULL');
SELECT ok((SELECT pg_column_size(f.s) < 5000 FROM tap_hx_figures AS f WHERE (f.s).orders IS NULL),
          'the long numeric is stored compressed');
SET ROLE tap_hostile_x;
SELECT throws_ok($$SELECT segment_internal.refresh_history_and_profile((SELECT s FROM segment.segmentations s WHERE name = 'hx'), 1, now(), 'segment.profile_hx', false, 'SELECT * FROM pg_temp.segment_refresh_new')$$, '42501', NULL, 'history and profile writes need the owner''s privileges');
SELECT throws_ok($$SELECT segment_internal.drop_capture('hx')$$, '42501', NULL, 'dropping a capture needs ownership');
SELECT throws_ok($$SELECT count(*) FROM segment_internal.refresh_figures('tap_hx_orders', 1, 'customer_id', 'ordered_at', 'amount', NULL, NULL, NULL, now(), 'UTC')$$, '42501', NULL, 'refresh_figures reads a table with the caller''s privileges');
RESET ROLE;
SELECT ok(to_regclass('segment.stage_hx') IS NOT NULL, 'the stage is still there');
SELECT * FROM finish();
ROLLBACK;
