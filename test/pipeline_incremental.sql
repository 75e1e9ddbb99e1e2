-- Incremental refreshes give what a full refresh gives, always.  Two
-- segmentations of the same orders: 'inc' refreshed as refresh() chooses
-- (incremental where it is safe), 'ref' always in full.  Forty rounds of
-- random changes (new orders, late ones dated in the past, orders dated
-- after as_of, amount and date updates, cancellations and their undoing,
-- deletions, new customers, a TRUNCATE and reload, as_of moving on, staying,
-- and once moving back), each followed by a refresh of both: their profiles
-- (every column), the history each refresh recorded and the transitions
-- must be equal, and so must the counts each refresh logged.  Most rounds
-- keep as_of's day, so that refreshes rescore only the customers whose row
-- can have changed (customers relation changes included, and a rule that
-- reads it); rules added and dropped on the way make some rescore everyone.
-- Then the cases that must fall back to a full refresh, and the errors of
-- the mode argument.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(69);

CREATE SCHEMA tap_inc;
CREATE TABLE tap_inc.customers (id integer PRIMARY KEY, country text);
CREATE TABLE tap_inc.orders (order_id serial PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                             amount numeric(10,2), discount numeric(10,2), status text);
INSERT INTO tap_inc.customers SELECT i, (ARRAY['DE', 'FR', 'NL'])[1 + i % 3] FROM generate_series(1, 400) AS i;
SELECT setseed(0.42);
INSERT INTO tap_inc.orders (customer_id, ordered_at, amount, discount, status)
SELECT 1 + (random() * 349)::int, timestamptz '2023-01-01 00:00+00' + random() * interval '540 days',
       round((5 + random() * 200)::numeric, 2), CASE WHEN random() < 0.2 THEN 5 END,
       CASE WHEN random() < 0.05 THEN 'cancelled' ELSE 'paid' END
  FROM generate_series(1, 3000);

SELECT lives_ok($$
    SELECT segment.configure('tap_inc.orders', 'customer_id', 'ordered_at', 'amount', segmentation => s,
                             discount => 'discount', status => 'status', exclude_status => '{cancelled}',
                             customers => 'tap_inc.customers', customers_key => 'id', is_default => false)
      FROM unnest(ARRAY['inc', 'ref']) AS s$$,
    'two segmentations of the same orders');
-- A rule that reads the customers relation: rescoring some stays possible,
-- since the customers relation's changes are captured too.
SELECT lives_ok($$SELECT segment.add_rule('Dutch regulars', 'customer.country = ''NL'' AND frequency > 3', 4, s)
                    FROM unnest(ARRAY['inc', 'ref']) AS s$$,
                'a rule over the customers relation');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tap_inc.customers'::regclass AND tgname LIKE 'segment\_%'),
          8::bigint, 'the customers relation gets four capture triggers per segmentation');
-- The same pair with recency in elapsed 24-hour periods.
SELECT lives_ok($$
    SELECT segment.configure('tap_inc.orders', 'customer_id', 'ordered_at', 'amount', segmentation => s,
                             discount => 'discount', status => 'status', exclude_status => '{cancelled}',
                             customers => 'tap_inc.customers', customers_key => 'id', is_default => false,
                             recency => 'elapsed')
      FROM unnest(ARRAY['inc_elapsed', 'ref_elapsed']) AS s$$,
    'and two with recency in elapsed days');
SELECT throws_ok($$SELECT segment.configure('tap_inc.orders', 'customer_id', 'ordered_at', 'amount',
                                            segmentation => 'bad', recency => 'weekly')$$,
                 '22023', 'invalid recency "weekly"', 'an unknown recency: an error');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tap_inc.orders'::regclass AND tgname LIKE 'segment\_%'
              AND tgenabled = 'A'),
          16::bigint, 'configure() sets up the change capture of each: four triggers, firing in replica sessions too');
-- The capture function: nobody else may attach it, and on another table it
-- logs nothing.
SELECT ok(NOT has_function_privilege('public', 'segment.capture_inc()', 'EXECUTE'),
          'the capture function of a segmentation is not executable by PUBLIC');
CREATE TABLE tap_inc.other (customer_id integer, ordered_at timestamptz);
CREATE TRIGGER hostile AFTER INSERT ON tap_inc.other REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION segment.capture_inc();
INSERT INTO tap_inc.other VALUES (1, now());
SELECT is((SELECT count(*) FROM segment.changes_inc), 0::bigint,
          'the capture trigger function writes only for the segmentation''s own orders');

\ir include/twins.sql

-- One round of random changes.
CREATE FUNCTION pg_temp.random_changes(round integer, as_of timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- new orders: recent, late (dated months back), dated after as_of
    INSERT INTO tap_inc.orders (customer_id, ordered_at, amount, discount, status)
    SELECT 1 + (random() * 420)::int,
           CASE WHEN random() < 0.6 THEN as_of - random() * interval '3 days'
                WHEN random() < 0.5 THEN as_of - random() * interval '300 days'
                ELSE as_of + random() * interval '6 days' END,
           round((5 + random() * 200)::numeric, 2), CASE WHEN random() < 0.2 THEN 5 END, 'paid'
      FROM generate_series(1, 5 + (random() * 25)::int);
    -- amounts and dates of old orders, cancellations and their undoing, deletions
    UPDATE tap_inc.orders SET amount = amount + 1 WHERE random() < 0.003;
    UPDATE tap_inc.orders SET ordered_at = ordered_at - interval '20 days' WHERE random() < 0.002;
    UPDATE tap_inc.orders SET status = CASE status WHEN 'paid' THEN 'cancelled' ELSE 'paid' END
     WHERE random() < 0.004;
    DELETE FROM tap_inc.orders WHERE random() < 0.003;
    -- the customers relation: new ones (prospects), a move, a departure
    INSERT INTO tap_inc.customers
    SELECT max(id) + 1, 'DE' FROM tap_inc.customers HAVING random() < 0.5;
    UPDATE tap_inc.customers SET country = 'FR' WHERE id = 1 + (random() * 400)::int;
    IF round % 5 = 2 THEN
        DELETE FROM tap_inc.customers WHERE id = 1 + (random() * 400)::int;
    END IF;
    -- rules: one that reads the time (every customer rescored while it is
    -- there), added and dropped
    IF round = 24 THEN
        PERFORM segment.add_rule('Ordered this year', 'last_order > date_trunc(''year'', now())', 5, s)
           FROM unnest(ARRAY['inc', 'ref']) AS s;
    ELSIF round = 26 THEN
        PERFORM segment.drop_rule('Ordered this year', s) FROM unnest(ARRAY['inc', 'ref']) AS s;
    END IF;
    -- a customer's key corrected: orders move from one customer to another
    IF round % 7 = 3 THEN
        UPDATE tap_inc.orders SET customer_id = customer_id + 1 WHERE customer_id = 1 + (random() * 300)::int;
    END IF;
    -- everything truncated and loaded again
    IF round = 20 THEN
        CREATE TEMP TABLE saved ON COMMIT DROP AS SELECT * FROM tap_inc.orders;
        TRUNCATE tap_inc.orders;
        INSERT INTO tap_inc.orders SELECT * FROM saved;
    END IF;
END
$$;

-- The rounds: refresh both, compare.  Returns one line per round that
-- differs, and records the modes.
CREATE TEMP TABLE rounds (round integer, as_of timestamptz, inc_mode text, inc_reason text,
                          recomputed bigint, rescored bigint, rescore_reason text, same_profile boolean,
                          same_changes boolean, same_counts boolean);
CREATE FUNCTION pg_temp.run_rounds(n integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    as_of timestamptz := '2024-07-01 00:00+00';
    inc   segment.refreshes;
    ref   segment.refreshes;
    inc_e segment.refreshes;
    ref_e segment.refreshes;
BEGIN
    PERFORM segment.refresh('inc', as_of);
    PERFORM segment.refresh('ref', as_of, mode => 'full');
    PERFORM segment.refresh('inc_elapsed', as_of);
    PERFORM segment.refresh('ref_elapsed', as_of, mode => 'full');
    FOR i IN 1..n LOOP
        PERFORM pg_temp.random_changes(i, as_of);
        -- as_of moves on by minutes (mostly the same day), by 1 to 3 days
        -- every third round, or once moves back; it stays every fourth
        -- round (then elapsed days rescore only some customers too)
        as_of := as_of + CASE WHEN i = 30 THEN interval '-2 days'
                              WHEN i % 3 = 0 THEN (1 + (random() * 2)::int) * interval '1 day'
                              WHEN i % 4 = 1 THEN interval '0'
                              ELSE random() * interval '20 minutes' END;
        inc := segment.refresh('inc', as_of);
        ref := segment.refresh('ref', as_of, mode => 'full');
        inc_e := segment.refresh('inc_elapsed', as_of);
        ref_e := segment.refresh('ref_elapsed', as_of, mode => 'full');
        INSERT INTO rounds
        SELECT i, as_of, inc.mode, inc.full_reason, inc.recomputed, inc.rescored, inc.rescore_reason,
               ARRAY(SELECT pg_temp.profile('inc')) = ARRAY(SELECT pg_temp.profile('ref'))
               AND ARRAY(SELECT pg_temp.profile('inc_elapsed')) = ARRAY(SELECT pg_temp.profile('ref_elapsed')),
               ARRAY(SELECT pg_temp.last_changes('inc')) = ARRAY(SELECT pg_temp.last_changes('ref'))
               AND ARRAY(SELECT pg_temp.last_changes('inc_elapsed')) = ARRAY(SELECT pg_temp.last_changes('ref_elapsed')),
               (inc.customers, inc.buyers, inc.prospects, inc.changed, inc.written, inc.segments,
                inc.r_breaks, inc.f_breaks, inc.m_breaks, inc.top_spender_min,
                inc.cut_ranks[1:3] || inc.cut_ranks[6:], inc_e.r_breaks, inc_e.cut_ranks[1:3] || inc_e.cut_ranks[6:])
               IS NOT DISTINCT FROM
               (ref.customers, ref.buyers, ref.prospects, ref.changed, ref.written, ref.segments,
                ref.r_breaks, ref.f_breaks, ref.m_breaks, ref.top_spender_min,
                ref.cut_ranks[1:3] || ref.cut_ranks[6:], ref_e.r_breaks, ref_e.cut_ranks[1:3] || ref_e.cut_ranks[6:]);
        -- the top-spender cut's counts an incremental refresh keeps
        IF inc.mode = 'incremental' AND inc.cut_ranks[4:5] IS DISTINCT FROM
           (SELECT ARRAY[count(*) FILTER (WHERE (st.s).monetary > inc.top_spender_min), count(*)]::float8[]
              FROM segment.stage_inc AS st WHERE (st.s).monetary >= inc.top_spender_min) THEN
            UPDATE rounds SET same_counts = false WHERE round = i;
        END IF;
    END LOOP;
END
$$;
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT pg_temp.run_rounds(40)$$, '40 rounds of random changes, each refreshed both ways');
RESET client_min_messages;

SELECT is((SELECT count(*) FROM rounds WHERE same_profile), 40::bigint,
          'after every round the incremental profile equals the full one, every column (calendar and elapsed days)');
SELECT ok((SELECT count(*) FROM segment.profile_inc AS c JOIN segment.profile_inc_elapsed AS e USING (customer_id)
            WHERE c.recency_days <> e.recency_days) > 0,
          'calendar and elapsed recency differ for some customers (as_of is not at midnight)');
SELECT is((SELECT count(*) FROM segment.profile_inc AS c JOIN segment.profile_inc_elapsed AS e USING (customer_id)
            WHERE e.recency_days NOT IN (c.recency_days, c.recency_days - 1)), 0::bigint,
          'elapsed recency is the calendar one or a day less');
SELECT is((SELECT count(*) FROM segment.profile_ref_elapsed AS e
            WHERE e.frequency > 0
              AND e.recency_days <> floor(extract(epoch FROM (SELECT max(as_of) FROM rounds WHERE round = 40) - e.last_order) / 86400)),
          0::bigint, 'elapsed recency: whole 24-hour periods from the last order to as_of');
SELECT is((SELECT count(*) FROM rounds WHERE same_changes), 40::bigint,
          'and every refresh recorded the same changes in the history');
SELECT is((SELECT count(*) FROM rounds WHERE same_counts), 40::bigint,
          'and logged the same counts: customers, buyers, prospects, changed, written, segments, cut points and their ranks (the top-spender cut''s too)');
SELECT cmp_ok((SELECT count(*) FROM rounds WHERE inc_mode = 'incremental' AND rescore_reason IS NULL), '>=', 15::bigint,
              'most incremental refreshes rescored only some customers');
SELECT ok((SELECT bool_and(rescored < (SELECT count(*) FROM segment.profile_ref))
             FROM rounds WHERE inc_mode = 'incremental' AND rescore_reason IS NULL),
          '(fewer than all of them)');
SELECT is((SELECT rescore_reason FROM rounds WHERE round = 3),
          'the configuration, the rules, the time zone or the as-of day changed since the last refresh',
          'as_of on another day: every customer rescored, and why');
SELECT is((SELECT rescore_reason FROM rounds WHERE round = 25),
          'rule "Ordered this year" depends on more than the customer''s row (as_of, refreshed_at, a function that is not immutable, or a relation)',
          'a rule that reads the time: every customer rescored, and why');
SELECT ok((SELECT rescore_reason IS NULL FROM rounds WHERE round = 28),
          'the rule dropped (and a refresh since): some customers again');
SELECT results_eq($$SELECT * FROM segment.transitions(segmentation => 'inc') ORDER BY 1, 2$$,
                  $$SELECT * FROM segment.transitions(segmentation => 'ref') ORDER BY 1, 2$$,
                  'the transitions of the last two refreshes are the same');
SELECT cmp_ok((SELECT count(*) FROM rounds WHERE inc_mode = 'incremental'), '>=', 37::bigint,
              'refresh() chose incremental in all but the rounds that need a full one');
SELECT is((SELECT inc_reason FROM rounds WHERE round = 20), 'the orders relation was truncated',
          'a TRUNCATE of the orders: a full refresh, and why');
SELECT is((SELECT inc_reason FROM rounds WHERE round = 30), 'as_of is earlier than the last refresh''s',
          'as_of moved back: a full refresh');
SELECT is((SELECT inc_mode FROM rounds WHERE round = 21), 'incremental',
          'the refresh after a full one is incremental again');
SELECT cmp_ok((SELECT max(recomputed) FROM rounds WHERE inc_mode = 'incremental'), '<', 150::bigint,
              'an incremental refresh recomputes the changed customers only');
SELECT is((SELECT mode FROM segment.refreshes WHERE segmentation = 'ref' ORDER BY id DESC LIMIT 1), 'full',
          'mode => ''full'' forces a full refresh');
SELECT is((SELECT full_reason FROM segment.refreshes WHERE segmentation = 'ref' ORDER BY id DESC LIMIT 1),
          'a full refresh was asked for', '(and says so)');
SELECT is((SELECT recomputed FROM segment.refreshes WHERE segmentation = 'ref' ORDER BY id DESC LIMIT 1),
          (SELECT count(*) FROM segment.stage_ref),
          'a full refresh that wrote its figures straight into the stage recomputed every buyer in it');

-- What a rule may read for rescoring some customers to be right: the row,
-- immutable functions, the customers relation where it is captured.
SELECT ok(segment_internal.query_reads_only_row('SELECT 1 WHERE abs(-2) > 1 AND ''a'' || ''b'' = ''ab''', NULL),
          'immutable functions and operators: the row alone');
SELECT ok(NOT segment_internal.query_reads_only_row('SELECT 1 WHERE now() > ''2024-01-01''', NULL),
          'now(): more than the row');
SELECT ok(NOT segment_internal.query_reads_only_row('SELECT 1 WHERE current_date > ''2024-01-01''', NULL),
          'current_date: more than the row');
SELECT ok(NOT segment_internal.query_reads_only_row('SELECT 1 WHERE random() > 0.5', NULL), 'random(): more than the row');
SELECT ok(NOT segment_internal.query_reads_only_row('SELECT 1 WHERE EXISTS (SELECT FROM tap_inc.orders)', NULL),
          'a subquery over a table: more than the row');
SELECT ok(segment_internal.query_reads_only_row('SELECT 1 FROM tap_inc.customers AS c WHERE c.country = ''NL''',
                                       'tap_inc.customers'),
          'the one relation allowed');
SELECT ok(NOT segment_internal.query_reads_only_row(
              'SELECT 1 FROM tap_inc.customers AS c WHERE c.country = (SELECT max(d.country) FROM tap_inc.customers AS d)',
              'tap_inc.customers'),
          'the relation allowed, read again in a subquery (other customers'' rows): more than the row');
SELECT throws_ok($$SELECT segment_internal.query_reads_only_row(NULL, NULL)$$, '22004',
                 'query must not be null', 'a NULL query: an error');
SELECT ok(NOT segment_internal.query_reads_only_row('SELECT 1 FROM (SELECT 1) AS x FOR UPDATE', NULL),
          'a query that locks rows: more than the row');
SELECT throws_ok($$SELECT segment_internal.query_reads_only_row('SELECT 1; SELECT 2', NULL)$$, '42601',
                 'expected one SQL statement, got 2', 'two statements: an error');

SELECT ok(NOT segment_internal.has_customer_index('tap_inc.orders', 'customer_id'),
          'without an index on the orders'' customer, the changed customers are recomputed in one pass (test/pipeline_incremental_sources.sql has one)');

-- The cut points an incremental refresh moves (segment_internal.moved_breaks())
-- equal those computed over every stored figure: with nothing changed and
-- as_of two calendar days on, the recency histogram moves by two days.
CREATE TEMP TABLE segment_refresh_delta (sign integer, last_order timestamptz, orders bigint, monetary numeric);
SELECT is(
    (SELECT mv.ranks FROM segment.segmentations AS s
       JOIN segment.refreshes AS l ON l.id = s.last_refresh
      CROSS JOIN LATERAL segment_internal.moved_breaks(s, l.as_of + interval '2 days', l, 'segment.stage_inc') AS mv
      WHERE s.name = 'inc'),
    (SELECT ARRAY[x.n, s.buckets, 0, -1, -1, (cardinality(x.rh) - s.buckets + 1) / 2]::float8[] || x.rh[s.buckets:]
            || ((cardinality(x.fh) - s.buckets + 1) / 2)::float8 || x.fh[s.buckets:] || x.mr
       FROM segment.segmentations AS s
       JOIN segment.refreshes AS l ON l.id = s.last_refresh
      CROSS JOIN LATERAL (
            SELECT count(*) AS n,
                   segment_internal.breaks_histogram(((l.as_of + interval '2 days')::date - ((st.s).last_order)::date)::float8, s.buckets) AS rh,
                   segment_internal.breaks_histogram(((st.s).orders)::float8, s.buckets) AS fh,
                   segment_internal.breaks_ranked(((st.s).monetary)::float8, s.buckets) AS mr
              FROM segment.stage_inc AS st) AS x
      WHERE s.name = 'inc'),
    'the cut points moved as_of two days on equal those of every stored figure, with their ranks');
SELECT ok((SELECT mv.ranks IS NULL FROM segment.segmentations AS s
             JOIN segment.refreshes AS l ON l.id = s.last_refresh
            CROSS JOIN LATERAL segment_internal.moved_breaks(s, l.as_of + interval '2 days', l, 'segment.stage_inc_elapsed') AS mv
            WHERE s.name = 'inc_elapsed'),
          'elapsed recency with another as_of: computed over every stored figure');
-- Ranks that do not add up are not trusted: a customer counted twice.
INSERT INTO segment_refresh_delta
SELECT 1, (st.s).last_order, (st.s).orders, (st.s).monetary FROM segment.stage_inc AS st LIMIT 1;
SELECT ok((SELECT mv.ranks IS NOT NULL AND mv.ranks[1] = l.cut_ranks[1] + 1
             FROM segment.segmentations AS s
             JOIN segment.refreshes AS l ON l.id = s.last_refresh
            CROSS JOIN LATERAL segment_internal.moved_breaks(s, l.as_of, l, 'segment.stage_inc') AS mv
            WHERE s.name = 'inc'),
          'a delta moves the buyers');
UPDATE segment_refresh_delta SET sign = -1, orders = orders + 1000;
SELECT ok((SELECT mv.ranks IS NULL FROM segment.segmentations AS s
             JOIN segment.refreshes AS l ON l.id = s.last_refresh
            CROSS JOIN LATERAL segment_internal.moved_breaks(s, l.as_of, l, 'segment.stage_inc') AS mv
            WHERE s.name = 'inc'),
          'a delta that removes a figure no customer had: ranks not trusted, computed over every stored figure');
-- Ranks read back from the log are checked, not trusted: NaN, infinite or
-- huge numbers (a log row written by someone else) mean computing over every
-- stored figure, not an error.
SELECT is((SELECT array_agg(mv.ranks IS NULL)
             FROM segment.segmentations AS s
             JOIN segment.refreshes AS l ON l.id = s.last_refresh
            CROSS JOIN unnest(ARRAY['{NaN,5,0,-1,-1,1}', '{Infinity,5,0,-1,-1}', '{1e300,5,0,-1,-1,1,1,1}',
                                    '{30,5,0,-1,-1,2,NaN,1,Infinity,5}']::text[]) AS x
            CROSS JOIN LATERAL segment_internal.moved_breaks(s, l.as_of,
                           jsonb_populate_record(l, jsonb_build_object('cut_ranks', x::float8[])), 'segment.stage_inc') AS mv
            WHERE s.name = 'inc'),
          ARRAY[true, true, true, true], 'crafted ranks are not trusted');
SELECT is((SELECT t.top FROM segment.segmentations AS s
             JOIN segment.refreshes AS l ON l.id = s.last_refresh
            CROSS JOIN LATERAL segment_internal.top_spender_cut(s,
                           jsonb_populate_record(l, '{"cut_ranks": [1e300, 5, 0, 1e299, 1e300]}'),
                           'segment.stage_inc', (SELECT count(*) FROM segment.stage_inc)) AS t
            WHERE s.name = 'inc'),
          (SELECT percentile_disc((SELECT 1 - s.top_spender_share FROM segment.segmentations AS s WHERE s.name = 'inc'))
                  WITHIN GROUP (ORDER BY (st.s).monetary)
             FROM segment.stage_inc AS st),
          'crafted top-spender counts: the cut is found from the top, as percentile_disc finds it');
DROP TABLE segment_refresh_delta;
-- A full refresh finds the top-spender cut in double precision (rank_at())
-- and then the exact numeric among the figures with that double: figures
-- that differ past a double's digits (1 + k * 1e-18 are all 1.0) give
-- percentile_disc's numeric and the exact counts above and at or above it.
CREATE TEMP TABLE tied_stage AS
SELECT i AS customer_id,
       jsonb_populate_record(NULL::segment.rfm_summary,
                             jsonb_build_object('monetary', CASE WHEN i <= 20 THEN 1 + (i % 7) * 1e-18
                                                                 ELSE (i % 5) * 0.5 END)) AS s
  FROM generate_series(1, 40) AS i;
SELECT is((SELECT count(*) FILTER (WHERE (t.top, t.above, t.at_or_above) IS DISTINCT FROM
                                         (w.top, w.above, w.at_or_above))
             FROM unnest(ARRAY[0.3, 0.5, 0.6, 0.7, 0.9, 0.95]::float8[]) AS f
            CROSS JOIN LATERAL (SELECT segment_internal.rank_at(((st.s).monetary)::float8, f) AS r,
                                       percentile_disc(f) WITHIN GROUP (ORDER BY (st.s).monetary) AS top
                                  FROM tied_stage AS st) AS x
            CROSS JOIN LATERAL segment_internal.top_spender_at('tied_stage', x.r) AS t
            CROSS JOIN LATERAL (SELECT x.top, count(*) FILTER (WHERE (st.s).monetary > x.top) AS above,
                                       count(*) FILTER (WHERE (st.s).monetary >= x.top) AS at_or_above
                                  FROM tied_stage AS st) AS w),
          0::bigint, 'the top-spender cut of a full refresh is percentile_disc''s numeric among figures equal as doubles');
SELECT throws_ok($$SELECT segment_internal.top_spender_at('tied_stage', '{1,0,25,40,3}')$$, 'XX000', NULL,
                 'ranks that do not match the stored figures are an internal error, not a wrong cut');
DROP TABLE tied_stage;

-- Inserted orders are logged one row each and, for a customer whose new
-- orders all fall on later days, appended to the stored figures without
-- reading the orders table.  An inserted order dated after as_of that is
-- moved or deleted before it is due must not be appended when its date
-- comes (its old row is logged on the same date: the customer is read from
-- its orders); nor one logged before a TRUNCATE (the rounds' round 20).
CREATE FUNCTION pg_temp.refresh_both(as_of timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM segment.refresh('inc', as_of);
    PERFORM segment.refresh('ref', as_of, mode => 'full');
    RETURN ARRAY(SELECT pg_temp.profile('inc')) = ARRAY(SELECT pg_temp.profile('ref'));
END
$$;
CREATE TEMP TABLE a0 AS SELECT max(as_of) AS t FROM segment.refreshes WHERE segmentation = 'inc';
SELECT ok(pg_temp.refresh_both((SELECT t FROM a0) + interval '1 minute'), 'appending: both refreshed');
INSERT INTO tap_inc.orders (customer_id, ordered_at, amount, discount, status)
SELECT c, (SELECT t FROM a0) + interval '2 days', 50, NULL, 'paid' FROM unnest(ARRAY[7, 8, 9]) AS c;
SELECT is((SELECT count(*) FROM segment.changes_inc WHERE appended AND amount = 50), 3::bigint,
          'each inserted order is logged with its amount');
-- customer 11: a new order on a later day, due now
INSERT INTO tap_inc.orders (customer_id, ordered_at, amount, discount, status)
VALUES (11, (SELECT t FROM a0) + interval '90 seconds', 60, 5, 'paid');
CREATE TEMP TABLE scans AS SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relid = 'tap_inc.orders'::regclass;
SELECT is((SELECT mode FROM segment.refresh('inc', (SELECT t FROM a0) + interval '2 minutes')), 'incremental',
          'an incremental refresh of an appended order');
SELECT is((SELECT (seq_scan, idx_scan)::text FROM pg_stat_xact_user_tables WHERE relid = 'tap_inc.orders'::regclass),
          (SELECT (seq_scan, idx_scan)::text FROM scans),
          'appends without reading the orders table');
SELECT ok(pg_temp.refresh_both((SELECT t FROM a0) + interval '2 minutes'), 'and equals a full refresh');
UPDATE tap_inc.orders SET ordered_at = (SELECT t FROM a0) - interval '1 day'
 WHERE customer_id = 7 AND amount = 50 AND ordered_at = (SELECT t FROM a0) + interval '2 days';
DELETE FROM tap_inc.orders WHERE customer_id = 8 AND amount = 50 AND ordered_at = (SELECT t FROM a0) + interval '2 days';
SELECT ok(pg_temp.refresh_both((SELECT t FROM a0) + interval '3 minutes'), 'an inserted order moved and one deleted before they were due');
SELECT ok(pg_temp.refresh_both((SELECT t FROM a0) + interval '3 days'), 'when their first date comes, nothing is appended twice');

-- What must fall back to a full refresh, and the mode argument's errors.
SELECT throws_ok($$SELECT segment.refresh('inc', mode => 'sometimes')$$, '22023',
                 'invalid refresh mode "sometimes"', 'an unknown mode');
SELECT throws_ok($$SELECT segment.refresh('inc', mode => NULL)$$, '22004',
                 'refresh mode must not be null', 'a NULL mode');
SELECT lives_ok($$SELECT segment.refresh('inc', '2024-12-01', mode => 'incremental')$$,
                'mode => ''incremental'' where it is safe');
SELECT lives_ok($$SELECT segment.configure('tap_inc.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'inc',
                                           discount => 'discount', status => 'status', exclude_status => '{}',
                                           customers => 'tap_inc.customers', customers_key => 'id')$$,
                'configure with other excluded statuses');
SELECT throws_ok($$SELECT segment.refresh('inc', '2024-12-02', mode => 'incremental')$$, '55000',
                 'segmentation "inc" cannot be refreshed incrementally: the orders relation, its columns, the statuses, the key type or the time zone changed',
                 'a changed configuration cannot be refreshed incrementally');
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-12-02')),
          'the orders relation, its columns, the statuses, the key type or the time zone changed',
          'auto falls back to full and says why');
SET LOCAL TimeZone = 'Pacific/Auckland';
SELECT is((SELECT mode FROM segment.refresh('inc', '2024-12-02')), 'full', 'another time zone: full');
RESET TimeZone;
CREATE VIEW tap_inc.orders_view AS SELECT * FROM tap_inc.orders;
SELECT lives_ok($$SELECT segment.configure('tap_inc.orders_view', 'customer_id', 'ordered_at', 'amount',
                                           segmentation => 'view', is_default => false)$$,
                'a segmentation over a view');
SELECT is((SELECT full_reason FROM segment.refresh('view', '2024-12-02')),
          'no change capture: the orders relation tap_inc.orders_view is not a plain table but a view',
          'over a view: full, and why');

-- A partition as the orders: no capture (rows written through the parent
-- fire none of its triggers), configure works, refreshes are full.
CREATE TABLE tap_inc.parted (LIKE tap_inc.orders) PARTITION BY RANGE (ordered_at);
CREATE TABLE tap_inc.parted_2024 PARTITION OF tap_inc.parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
SELECT lives_ok($$SELECT segment.configure('tap_inc.parted_2024', 'customer_id', 'ordered_at', 'amount',
                                           segmentation => 'part', is_default => false)$$,
                'a segmentation over a partition');
SELECT is((SELECT full_reason FROM segment.refresh('part', '2024-12-02')),
          'no change capture: the orders relation tap_inc.parted_2024 is a partition or in an inheritance tree (its rows can be written through another table)',
          'over a partition: full, and why');
-- The orders renamed, configured again: a new log and stage, so a full refresh.
ALTER TABLE tap_inc.orders RENAME TO orders_renamed;
SELECT lives_ok($$SELECT segment.configure('tap_inc.orders_renamed', 'customer_id', 'ordered_at', 'amount',
                                           segmentation => 'ref', discount => 'discount', status => 'status',
                                           exclude_status => '{cancelled}', customers => 'tap_inc.customers',
                                           customers_key => 'id')$$,
                'configure again after the orders were renamed');
SELECT is((SELECT mode FROM segment.refresh('ref', '2024-12-03')), 'full',
          'the next refresh is full (the stored figures were dropped with the old name)');
SELECT is((SELECT mode FROM segment.refresh('ref', '2024-12-04')), 'incremental', 'then incremental again');

SELECT * FROM finish();
ROLLBACK;
