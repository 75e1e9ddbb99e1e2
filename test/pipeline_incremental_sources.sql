-- Incremental refreshes with events and contacts sources give what a full
-- refresh gives, always.  Two segmentations of the same orders, events and
-- support contacts: 'inc' refreshed as refresh() chooses, 'ref' always in
-- full; and a second such pair, 'incn' and 'refn', without the built-in
-- rules that read as_of, so that refreshes on the same day rescore only the
-- customers whose figures or summaries were recomputed.  Forty rounds of random changes to the three relations (new rows
-- recent, late ones dated weeks back, rows dated after as_of, rows of
-- customers with no orders and of no customer, rows without a time, unknown
-- event types; updates of times, types, ratings and customers; deletions;
-- a TRUNCATE and reload of the events and of the contacts), as_of moving on
-- by minutes, by days, or staying, once moving back; after each, a refresh
-- of both: their profiles (every column), the history each recorded, the
-- counts and what each read from the sources must be equal.  Then the cases
-- that fall back to a full refresh: a source configured again, its capture
-- trigger disabled, its relation replaced, a products source.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(45);
SET client_min_messages = warning;

CREATE SCHEMA tap_isrc;
CREATE TABLE tap_isrc.orders (order_id serial PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                              amount numeric(10,2));
CREATE TABLE tap_isrc.events (id serial PRIMARY KEY, customer_id integer, kind text, at timestamptz, sku text);
CREATE TABLE tap_isrc.tickets (id serial PRIMARY KEY, customer_id integer, opened_at timestamptz, rating integer);
CREATE INDEX ON tap_isrc.events (at);
-- An index on the orders' customer: the changed customers' figures are
-- recomputed one index probe each (test/pipeline_incremental.sql has none:
-- one pass over the orders).
CREATE INDEX ON tap_isrc.orders (customer_id);
SELECT setseed(0.17);
INSERT INTO tap_isrc.orders (customer_id, ordered_at, amount)
SELECT 1 + (random() * 199)::int, timestamptz '2024-01-01 00:00+00' + random() * interval '180 days',
       round((5 + random() * 200)::numeric, 2)
  FROM generate_series(1, 1200);

-- A random event or ticket row: mostly recent, some weeks back, some after
-- as_of; some of customers without orders (up to 260), of no customer,
-- without a time, of an unknown type.
CREATE FUNCTION pg_temp.event_rows(n integer, as_of timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO tap_isrc.events (customer_id, kind, at, sku)
    SELECT CASE WHEN random() < 0.02 THEN NULL ELSE 1 + (random() * 259)::int END,
           (ARRAY['visit', 'product_view', 'cart_add', 'checkout', 'newsletter_open', 'subscribe',
                  'unsubscribe', 'page_view', 'search'])[1 + (random() * 8)::int],
           CASE WHEN random() < 0.02 THEN NULL
                WHEN random() < 0.6 THEN as_of - random() * interval '10 days'
                WHEN random() < 0.7 THEN as_of - random() * interval '60 days'
                ELSE as_of + random() * interval '3 days' END,
           'sku' || (random() * 12)::int
      FROM generate_series(1, n)
$$;
CREATE FUNCTION pg_temp.ticket_rows(n integer, as_of timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO tap_isrc.tickets (customer_id, opened_at, rating)
    SELECT CASE WHEN random() < 0.02 THEN NULL ELSE 1 + (random() * 259)::int END,
           CASE WHEN random() < 0.02 THEN NULL
                WHEN random() < 0.6 THEN as_of - random() * interval '20 days'
                WHEN random() < 0.7 THEN as_of - random() * interval '90 days'
                ELSE as_of + random() * interval '3 days' END,
           CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 5)::int END
      FROM generate_series(1, n)
$$;
SELECT pg_temp.event_rows(6000, '2024-07-01 00:00+00');
SELECT pg_temp.ticket_rows(800, '2024-07-01 00:00+00');

SELECT lives_ok($$
    SELECT segment.configure('tap_isrc.orders', 'customer_id', 'ordered_at', 'amount', segmentation => s,
                           is_default => false),
           segment.configure_event_source('tap_isrc.events', 'customer_id', 'kind', 'at', segmentation => s,
                                          product => 'sku', lookback => '7 days',
                                          kinds => '{"visit": "visit", "product_view": "product_view", "cart_add": "cart_add", "checkout": "checkout", "newsletter_open": "newsletter_open", "subscribe": "subscribe", "unsubscribe": "unsubscribe", "search": "ignore"}'),
           segment.configure_contact_source('tap_isrc.tickets', 'customer_id', 'opened_at', segmentation => s,
                                            negative => 'rating', negative_below => 2, lookback => '1 mon')
      FROM unnest(ARRAY['inc', 'ref', 'incn', 'refn']) AS s$$,
    'four segmentations of the same orders, events and contacts');
SELECT lives_ok($$SELECT segment.enable_rule(r.name, r.segmentation, false) FROM segment.rule_predicates AS r
                   WHERE r.segmentation IN ('incn', 'refn') AND r.enabled AND r.predicate LIKE '%as_of%'$$,
                'two without the rules that read as_of');
SELECT ok(segment_internal.has_customer_index('tap_isrc.orders', 'customer_id'),
          'the changed customers are recomputed by probes of the orders'' customer index');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('tap_isrc.events'::regclass, 'tap_isrc.tickets'::regclass)
              AND tgname LIKE 'segment\_%' AND tgenabled = 'A'),
          32::bigint, 'each source gets four capture triggers per segmentation, firing in replica sessions too');
SELECT ok(NOT has_function_privilege('public', 'segment.events_capture_inc()', 'EXECUTE'),
          'the capture function of a source is not executable by PUBLIC');

\ir include/twins.sql

CREATE FUNCTION pg_temp.random_changes(round integer, as_of timestamptz, later timestamptz[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    -- rows right on the windows' edges of the refreshes to come: at a later
    -- as_of, and a lookback before it (calendar days and months)
    INSERT INTO tap_isrc.events (customer_id, kind, at, sku)
    SELECT 1 + (random() * 259)::int, (ARRAY['visit', 'cart_add', 'checkout', 'newsletter_open'])[1 + (random() * 3)::int],
           t, 'sku' || (random() * 12)::int
      FROM unnest(later) AS l, LATERAL (VALUES (l), (l - interval '7 days')) AS v(t)
     WHERE random() < 0.3;
    INSERT INTO tap_isrc.tickets (customer_id, opened_at, rating)
    SELECT 1 + (random() * 259)::int, t, (random() * 3)::int
      FROM unnest(later) AS l, LATERAL (VALUES (l), (l - interval '1 mon')) AS v(t)
     WHERE random() < 0.3;
    INSERT INTO tap_isrc.orders (customer_id, ordered_at, amount)
    SELECT 1 + (random() * 250)::int,
           CASE WHEN random() < 0.7 THEN as_of - random() * interval '2 days'
                ELSE as_of + random() * interval '2 days' END,
           round((5 + random() * 200)::numeric, 2)
      FROM generate_series(1, (random() * 8)::int);
    DELETE FROM tap_isrc.orders WHERE random() < 0.002;
    PERFORM pg_temp.event_rows((random() * 120)::int, as_of);
    PERFORM pg_temp.ticket_rows((random() * 20)::int, as_of);
    -- late rows, dated weeks back
    UPDATE tap_isrc.events SET at = at - interval '9 days' WHERE random() < 0.004;
    UPDATE tap_isrc.events SET at = at + interval '2 days' WHERE random() < 0.004;
    UPDATE tap_isrc.events SET kind = 'cart_add' WHERE random() < 0.003;
    UPDATE tap_isrc.events SET customer_id = customer_id + 1 WHERE random() < 0.003;
    UPDATE tap_isrc.events SET customer_id = NULL WHERE random() < 0.001;
    DELETE FROM tap_isrc.events WHERE random() < 0.004;
    UPDATE tap_isrc.tickets SET rating = 5 - coalesce(rating, 0) WHERE random() < 0.01;
    UPDATE tap_isrc.tickets SET opened_at = opened_at - interval '25 days' WHERE random() < 0.01;
    UPDATE tap_isrc.tickets SET customer_id = 1 + (random() * 259)::int WHERE random() < 0.01;
    DELETE FROM tap_isrc.tickets WHERE random() < 0.01;
    IF round = 12 THEN
        CREATE TEMP TABLE saved ON COMMIT DROP AS SELECT * FROM tap_isrc.events;
        TRUNCATE tap_isrc.events;
        INSERT INTO tap_isrc.events SELECT * FROM saved;
    ELSIF round = 27 THEN
        CREATE TEMP TABLE saved_t ON COMMIT DROP AS SELECT * FROM tap_isrc.tickets;
        TRUNCATE tap_isrc.tickets;
        INSERT INTO tap_isrc.tickets SELECT * FROM saved_t WHERE random() < 0.9;
    END IF;
END
$$;

CREATE TEMP TABLE rounds (round integer, as_of timestamptz, pair text, inc_mode text, inc_reason text,
                          rescored bigint, rescore_reason text,
                          same_profile boolean, same_changes boolean, same_counts boolean);
CREATE FUNCTION pg_temp.run_rounds(n integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    as_of timestamptz;
    p     text;
    -- the as_of of each round, chosen up front: it moves on by minutes, by
    -- hours, by 1 to 3 days every fourth round, stays every fifth, or once
    -- moves back
    at    timestamptz[] := ARRAY[timestamptz '2024-07-01 00:00+00'];
BEGIN
    FOR i IN 1..n LOOP
        at := at || (at[i] + CASE WHEN i = 30 THEN interval '-2 days'
                                  WHEN i % 5 = 0 THEN interval '0'
                                  WHEN i % 4 = 0 THEN (1 + (random() * 2)::int) * interval '1 day'
                                  WHEN i % 3 = 0 THEN random() * interval '20 hours'
                                  ELSE random() * interval '30 minutes' END);
    END LOOP;
    as_of := at[1];
    FOREACH p IN ARRAY ARRAY['', 'n'] LOOP
        PERFORM segment.refresh('inc' || p, as_of);
        PERFORM segment.refresh('ref' || p, as_of, mode => 'full');
    END LOOP;
    FOR i IN 1..n LOOP
        PERFORM pg_temp.random_changes(i, as_of, at[i + 2:]);
        as_of := at[i + 1];
        FOREACH p IN ARRAY ARRAY['', 'n'] LOOP
            PERFORM pg_temp.refresh_twins(i, as_of, p);
        END LOOP;
    END LOOP;
END
$$;
SELECT lives_ok($$SELECT pg_temp.run_rounds(40)$$, '40 rounds of random changes, each refreshed both ways');

SELECT is((SELECT count(*) FROM rounds WHERE same_profile), 80::bigint,
          'after every round the incremental profiles equal the full ones, every column');
SELECT is((SELECT array_agg(pair || ' ' || round ORDER BY pair, round) FROM rounds WHERE NOT same_profile), NULL,
          '(no round differs)');
SELECT is((SELECT count(*) FROM rounds WHERE same_changes), 80::bigint,
          'and every refresh recorded the same changes in the history');
SELECT is((SELECT count(*) FROM rounds WHERE same_counts), 80::bigint,
          'and logged the same counts, cut points and source counts (rows, customers, skipped and why)');
SELECT results_eq($$SELECT * FROM segment.transitions(segmentation => 'inc') ORDER BY 1, 2$$,
                  $$SELECT * FROM segment.transitions(segmentation => 'ref') ORDER BY 1, 2$$,
                  'the transitions of the last two refreshes are the same');
SELECT results_eq($$SELECT * FROM segment.transitions(segmentation => 'incn') ORDER BY 1, 2$$,
                  $$SELECT * FROM segment.transitions(segmentation => 'refn') ORDER BY 1, 2$$,
                  '(both pairs)');
SELECT cmp_ok((SELECT count(*) FROM rounds WHERE inc_mode = 'incremental'), '>=', 72::bigint,
              'refresh() chose incremental in all but the rounds that need a full one');
SELECT cmp_ok((SELECT count(*) FROM rounds WHERE pair = 'incn' AND inc_mode = 'incremental' AND rescore_reason IS NULL),
              '>=', 10::bigint, 'without the rules that read as_of, refreshes on the same day rescored only some customers');
SELECT ok((SELECT bool_and(rescored < (SELECT count(*) FROM segment.profile_refn))
             FROM rounds WHERE pair = 'incn' AND inc_mode = 'incremental' AND rescore_reason IS NULL),
          '(fewer than all of them)');
SELECT is((SELECT rescore_reason FROM rounds WHERE pair = 'inc' AND round = 1),
          'rule "Abandoned Cart" depends on more than the customer''s row (as_of, refreshed_at, a function that is not immutable, or a relation)',
          'with them, every customer is rescored, and why');
SELECT is((SELECT array_agg(DISTINCT inc_reason) FROM rounds WHERE round = 12), '{"the events relation was truncated"}',
          'a TRUNCATE of the events: a full refresh, and why');
SELECT is((SELECT array_agg(DISTINCT inc_reason) FROM rounds WHERE round = 27), '{"the contacts relation was truncated"}',
          'a TRUNCATE of the contacts: a full refresh, and why');
SELECT is((SELECT array_agg(DISTINCT inc_reason) FROM rounds WHERE round = 30), '{"as_of is earlier than the last refresh''s"}',
          'as_of moved back: a full refresh');
SELECT is((SELECT array_agg(DISTINCT inc_mode) FROM rounds WHERE round = 13), '{incremental}',
          'the refresh after a full one is incremental again');
SELECT ok((SELECT count(*) FROM segment.events_stage_inc) > 200 AND (SELECT count(*) FROM segment.events_changes_inc) = 0,
          'the events stage holds every customer''s summary; the log is consumed');

-- What falls back to a full refresh.
SELECT lives_ok($$SELECT segment.configure_event_source('tap_isrc.events', 'customer_id', 'kind', 'at', segmentation => 'inc',
                                                       product => 'sku', lookback => '14 days')$$,
                'the events source configured again, another lookback');
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-01')),
          'a source was added, or its relation, columns, lookback, kinds or negative rule changed',
          'a changed source: a full refresh, and why');
SELECT is((SELECT mode FROM segment.refresh('inc', '2024-09-02')), 'incremental', 'then incremental again');
ALTER TABLE tap_isrc.tickets DISABLE TRIGGER segment_contacts_update_inc;
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-03')),
          'the update capture trigger on the contacts relation tap_isrc.tickets is missing or disabled (run segment.configure_contact_source() again)',
          'a disabled capture trigger: a full refresh, and why');
ALTER TABLE tap_isrc.tickets ENABLE ALWAYS TRIGGER segment_contacts_update_inc;
-- The tickets replaced under the segmentation by a table of the same name.
ALTER TABLE tap_isrc.tickets RENAME TO tickets_old;
CREATE TABLE tap_isrc.tickets (LIKE tap_isrc.tickets_old INCLUDING DEFAULTS);
INSERT INTO tap_isrc.tickets SELECT * FROM tap_isrc.tickets_old;
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-04')),
          'the insert capture trigger on the contacts relation tap_isrc.tickets is missing or disabled (run segment.configure_contact_source() again)',
          'a contacts relation replaced: a full refresh, and why');
SELECT is((SELECT mode FROM segment.refresh('inc', '2024-09-05')), 'full', 'and every refresh until it is configured again');
SELECT lives_ok($$SELECT segment.configure_contact_source('tap_isrc.tickets', 'customer_id', 'opened_at', segmentation => 'inc',
                                                         negative => 'rating', negative_below => 2, lookback => '1 mon')$$,
                'configured again');
SELECT is((SELECT array[r1.mode, r2.mode] FROM segment.refresh('inc', '2024-09-06') AS r1, segment.refresh('inc', '2024-09-07') AS r2),
          ARRAY['full', 'incremental'], 'a full refresh, then incremental ones');
-- Events read through a view: no capture, every refresh full.
CREATE VIEW tap_isrc.events_view AS SELECT * FROM tap_isrc.events;
SELECT lives_ok($$SELECT segment.configure_event_source('tap_isrc.events_view', 'customer_id', 'kind', 'at', segmentation => 'inc')$$,
                'events read through a view');
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-08')),
          'no change capture on the events source: the events relation tap_isrc.events_view is not a plain table but a view',
          'a source that is a view: a full refresh, and why');
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-09')),
          'no change capture on the events source: the events relation tap_isrc.events_view is not a plain table but a view',
          '(every time)');
-- A source configured before change capture existed (a database updated
-- from 0.1): its capture is missing.
SELECT segment.configure_event_source('tap_isrc.events', 'customer_id', 'kind', 'at', segmentation => 'inc');
SELECT segment_internal.drop_source_capture('inc', 'events');
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-10')),
          'no change capture on the events source: run segment.configure_event_source() again (configured before change capture, or it could not create its triggers on tap_isrc.events)',
          'a source without its capture: a full refresh, and what to do');

-- Another owner: set_owner() hands over the sources' logs, stages and
-- capture functions too, and refreshes go on incrementally as that role.
CREATE ROLE tap_isrc_owner;
GRANT USAGE ON SCHEMA segment, tap_isrc TO tap_isrc_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA segment TO tap_isrc_owner;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA segment TO tap_isrc_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA tap_isrc TO tap_isrc_owner;
SELECT lives_ok($$SELECT segment.configure_contact_source('tap_isrc.tickets', 'customer_id', 'opened_at', segmentation => 'incn',
                                                         negative => 'rating', negative_below => 2, lookback => '1 mon')$$,
                'the second pair''s contacts configured on the new tickets');
SELECT lives_ok($$SELECT segment.set_owner('tap_isrc_owner', 'incn')$$, 'another owner');
SELECT is((SELECT array_agg(DISTINCT pg_get_userbyid(relowner)::text) FROM pg_class
            WHERE oid IN ('segment.events_stage_incn'::regclass, 'segment.events_changes_incn'::regclass,
                          'segment.contacts_stage_incn'::regclass, 'segment.contacts_changes_incn'::regclass)),
          '{tap_isrc_owner}', 'set_owner() hands over the sources'' logs and stages');
SELECT is((SELECT array_agg(DISTINCT pg_get_userbyid(proowner)::text) FROM pg_proc
            WHERE oid IN ('segment.events_capture_incn()'::regprocedure, 'segment.contacts_capture_incn()'::regprocedure)),
          '{tap_isrc_owner}', 'and their capture functions');
SELECT is((SELECT full_reason FROM segment.refresh('incn', '2024-09-01')),
          'a source was added, or its relation, columns, lookback, kinds or negative rule changed',
          'the new owner''s first refresh is full (the contacts were configured again)');
SELECT pg_temp.event_rows(50, '2024-09-02');
SELECT pg_temp.ticket_rows(10, '2024-09-02');
SELECT is((SELECT coalesce(full_reason, mode) FROM segment.refresh('incn', '2024-09-02')), 'incremental',
          'the next is incremental, the new rows logged by the capture functions as the new owner');
SELECT is((SELECT count(*) FROM segment.events_changes_incn) + (SELECT count(*) FROM segment.contacts_changes_incn),
          0::bigint, '(and consumed)');
SELECT lives_ok($$SELECT segment.drop_source('contacts', 'inc')$$, 'the contacts source dropped');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tap_isrc.tickets'::regclass AND tgname ~ '^segment_contacts_[a-z]+_inc$'),
          0::bigint, 'drop_source() drops its capture triggers');
SELECT ok(to_regclass('segment.contacts_stage_inc') IS NULL AND to_regclass('segment.contacts_changes_inc') IS NULL
          AND to_regprocedure('segment.contacts_capture_inc()') IS NULL, 'and its log, stage and capture function');
SELECT lives_ok($$SELECT segment.drop_segmentation('incn')$$, 'a segmentation dropped');
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = 'segment'::regnamespace AND relname LIKE '%\_incn'), 0::bigint,
          'with its sources'' logs and stages');
SELECT * FROM finish();
ROLLBACK;
