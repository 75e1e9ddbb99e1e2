-- segment_of() and profile_of() respect table privileges and row-level
-- security on the profile, and see the profile of their snapshot.
BEGIN;
SELECT plan(22);

CREATE SCHEMA tap_sec;
CREATE TABLE tap_sec.orders (customer_id integer, created_at timestamptz, total numeric);
INSERT INTO tap_sec.orders VALUES
    (1, '2024-06-01', 10), (1, '2024-06-20', 10),
    (2, '2024-01-01', 500), (2, '2024-02-01', 700),
    (3, '2024-06-28', 5);
SELECT lives_ok($$SELECT segment.configure('tap_sec.orders', 'customer_id', 'created_at', 'total',
                                          segmentation => 'tap_sec', is_default => true)$$,
                'configure');
SELECT lives_ok($$SELECT segment.refresh('tap_sec', '2024-07-01')$$, 'refresh');
CREATE ROLE tap_sec_reader;

-- Issue 12 #6: a lookup checks what a direct SELECT checks, schema USAGE
-- first, and tells nothing about segmentations the caller may not read.
SET LOCAL ROLE tap_sec_reader;
SELECT throws_ok($$SELECT segment_of(1)$$, '42501', 'permission denied for schema segment',
                 'segment_of() without USAGE on schema segment is refused');
SELECT throws_ok($$SELECT profile_of(1, 'tap_sec')$$, '42501', 'permission denied for schema segment',
                 'profile_of() without USAGE on schema segment is refused');
RESET ROLE;
GRANT USAGE ON SCHEMA segment TO tap_sec_reader;
SET LOCAL ROLE tap_sec_reader;
SELECT throws_ok($$SELECT segment_of(1)$$, '42501', 'no default segmentation that you may read',
                 'segment_of() without SELECT on the profile is refused');
SELECT throws_ok($$SELECT profile_of(1)$$, '42501', 'no default segmentation that you may read',
                 'profile_of() without SELECT on the profile is refused');
SELECT throws_ok($$SELECT segment_of(1, 'tap_sec')$$, '42501', 'no segmentation "tap_sec" that you may read',
                 'an existing segmentation the caller may not read...');
SELECT throws_ok($$SELECT segment_of(1, 'tap_nope')$$, '42501', 'no segmentation "tap_nope" that you may read',
                 '...and a missing one give the same error');
RESET ROLE;

GRANT SELECT (customer_id, segment) ON segment.profile_tap_sec TO tap_sec_reader;
SET LOCAL ROLE tap_sec_reader;
SELECT is(segment_of(2), 'Lapsing', 'SELECT on customer_id and segment is enough for segment_of()');
SELECT throws_ok($$SELECT profile_of(1)$$, '42501', 'no default segmentation that you may read',
                 'profile_of() needs every column');
RESET ROLE;

GRANT SELECT ON segment.profile_tap_sec TO tap_sec_reader;
SET LOCAL ROLE tap_sec_reader;
SELECT is((profile_of(2)).monetary, 1200::numeric, 'profile_of() with SELECT on the table');
RESET ROLE;

-- Row-level security: the reader may only see customers 1 and 3.
GRANT USAGE ON SCHEMA segment TO tap_sec_reader;
ALTER TABLE segment.profile_tap_sec ENABLE ROW LEVEL SECURITY;
CREATE POLICY tap_sec_small ON segment.profile_tap_sec FOR SELECT TO tap_sec_reader
    USING (monetary < 100);
SET LOCAL ROLE tap_sec_reader;
SELECT is(segment_of(2), NULL, 'a row hidden by a policy gives NULL');
SELECT is(segment_of(1), (SELECT segment FROM segment.profile_tap_sec WHERE customer_id = 1),
          'a row the policy shows is returned');
SELECT is(profile_of(2), NULL, 'profile_of() of a hidden row gives NULL');
SELECT is((profile_of(3)).frequency, 1::bigint, 'profile_of() of a visible row');
SELECT is((SELECT count(*) FROM generate_series(1, 3) AS g(id) WHERE segment_of(g.id) IS NOT NULL),
          2::bigint, 'the policy applies on every row of a query');
RESET ROLE;
SELECT is(segment_of(2), 'Lapsing', 'the table owner is not subject to the policy');

SET LOCAL row_security = off;
SET LOCAL ROLE tap_sec_reader;
SELECT throws_ok($$SELECT segment_of(1)$$, '42501', NULL,
                 'with row_security off, a reader subject to a policy gets an error');
RESET ROLE;
RESET row_security;

-- MVCC: within a query, and across a change in this transaction.
SELECT is(segment_of(3), 'Newcomers', 'before');
SAVEPOINT s;
UPDATE segment.profile_tap_sec SET segment = 'Changed' WHERE customer_id = 3;
SELECT is(segment_of(3), 'Changed', 'a change made earlier in the transaction is seen');
ROLLBACK TO SAVEPOINT s;
SELECT is(segment_of(3), 'Newcomers', 'and is gone after rollback');

SELECT is((SELECT count(*) FROM generate_series(1, 3000) AS g
             JOIN segment.profile_tap_sec AS p ON p.customer_id = g % 4 + 1
            WHERE segment_of(g % 4 + 1) = p.segment),
          2250::bigint, 'one cached lookup serves many rows (key 4 is unknown)');

SELECT * FROM finish();
ROLLBACK;
