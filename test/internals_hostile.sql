-- The internals of segment_internal, called directly by a role that is not a
-- segmentation's owner: USAGE on the schema gives it nothing it could not
-- do itself (each write or read runs with the caller's privileges).
BEGIN;
SELECT plan(4);
CREATE ROLE tap_hostile_x LOGIN;
CREATE TABLE public.tap_hx_orders (customer_id int, ordered_at timestamptz, amount numeric);
INSERT INTO tap_hx_orders VALUES (1, now(), 10);
SELECT segment.configure('tap_hx_orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'hx');
SELECT segment.refresh('hx');
CREATE TEMP TABLE segment_refresh_new AS SELECT * FROM segment.profile_hx;
GRANT ALL ON segment_refresh_new TO tap_hostile_x;
SET ROLE tap_hostile_x;
SELECT throws_ok($$SELECT segment_internal.refresh_history_and_profile((SELECT s FROM segment.segmentations s WHERE name = 'hx'), 1, now(), 'segment.profile_hx', false)$$, '42501', NULL, 'history and profile writes need the owner''s privileges');
SELECT throws_ok($$SELECT segment_internal.drop_capture('hx')$$, '42501', NULL, 'dropping a capture needs ownership');
SELECT throws_ok($$SELECT count(*) FROM segment_internal.refresh_figures('tap_hx_orders', 1, 'customer_id', 'ordered_at', 'amount', NULL, NULL, NULL, now(), 'UTC')$$, '42501', NULL, 'refresh_figures reads a table with the caller''s privileges');
RESET ROLE;
SELECT ok(to_regclass('segment.stage_hx') IS NOT NULL, 'the stage is still there');
SELECT * FROM finish();
ROLLBACK;
