-- The pipeline over orders sharded with postgres_fdw: configure + refresh
-- over the partitioned orders (foreign partitions on two shards) and the
-- partitioned customers give exactly the profile that the same rows give in
-- ordinary tables on the coordinator; the per-customer aggregate of the
-- refresh runs on the shards.
--
-- How "runs on the shards" is shown: every server has pg_stat_statements
-- (track = all).  The coordinator's records the statement refresh() ran for
-- the per-customer figures (a nested statement), which is EXPLAINed here with
-- VERBOSE: its Remote SQL carries segment.rfm(...) ... GROUP BY.  The shards'
-- (read through foreign tables on their pg_stat_statements view) show that
-- each shard received that aggregate, and no statement that fetches order
-- rows for that refresh.
BEGIN;
SELECT plan(15);
SET LOCAL enable_partitionwise_aggregate = on;
SET LOCAL timezone = 'UTC';

SELECT lives_ok($$
    SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount',
                             segmentation => 'sharded', discount => 'discount',
                             status => 'status', exclude_status => '{cancelled}',
                             customers => 'customers', customers_key => 'customer_id')$$,
    'configure() accepts a partitioned orders table with foreign partitions');
SELECT is(segment.configure('orders_local', 'customer_id', 'ordered_at', 'amount',
                            segmentation => 'local', discount => 'discount',
                            status => 'status', exclude_status => '{cancelled}',
                            customers => 'customers_local', customers_key => 'customer_id')::text,
          'segment.profile_local', 'the same segmentation of the same rows in ordinary tables');

-- The statements each server had run before the refresh, with their calls.
-- Since PostgreSQL 16 pg_stat_statements records the constants of utility
-- statements (CREATE TABLE AS, DECLARE CURSOR) as parameters too, so a
-- statement of this refresh is told by its calls growing, not by the as_of
-- in its text.
CREATE TEMP VIEW all_statements AS
SELECT 'coordinator' AS server, query, sum(calls) AS calls FROM pg_stat_statements GROUP BY query
UNION ALL
SELECT 'shard1', query, sum(calls) FROM shard1_statements GROUP BY query
UNION ALL
SELECT 'shard2', query, sum(calls) FROM shard2_statements GROUP BY query;
CREATE TEMP TABLE statements_before AS SELECT * FROM all_statements;

CREATE TEMP TABLE refreshed AS
SELECT * FROM segment.refresh('sharded', '2024-12-31 23:59:59+00');

CREATE TEMP TABLE refresh_statements AS
SELECT a.server, a.query
  FROM all_statements AS a
  LEFT JOIN statements_before AS b USING (server, query)
 WHERE a.calls > coalesce(b.calls, 0);

INSERT INTO refreshed SELECT * FROM segment.refresh('local', '2024-12-31 23:59:59+00');

-- The profile columns a refresh computes.
CREATE FUNCTION pg_temp.profile_rows(segmentation text) RETURNS SETOF record
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT customer_id::text, first_order, last_order, tenure_days, recency_days, frequency,
                purchase_days, monetary, mean_amount, mean_gap_days, discount_share, due_in_days,
                r, f, m, rfm_code, rfm_segment, flags, segment
           FROM segment.%I ORDER BY customer_id', 'profile_' || segmentation);
END
$$;
CREATE TEMP TABLE profile_compare AS
SELECT * FROM pg_temp.profile_rows('sharded') AS p(
    customer_id text, first_order timestamptz, last_order timestamptz, tenure_days integer,
    recency_days integer, frequency bigint, purchase_days integer, monetary numeric,
    mean_amount numeric, mean_gap_days double precision, discount_share double precision,
    due_in_days integer, r integer, f integer, m integer, rfm_code text, rfm_segment text,
    flags text[], segment text);

SELECT is((SELECT count(*) FROM profile_compare), 3300::bigint,
          'the sharded profile has every customer, prospects included');
SELECT cmp_ok((SELECT count(DISTINCT segment) FROM profile_compare), '>=', 8::bigint,
              'the customers are spread over many segments');
SELECT results_eq(
    $$SELECT * FROM pg_temp.profile_rows('sharded') AS p(
        customer_id text, first_order timestamptz, last_order timestamptz, tenure_days integer,
        recency_days integer, frequency bigint, purchase_days integer, monetary numeric,
        mean_amount numeric, mean_gap_days double precision, discount_share double precision,
        due_in_days integer, r integer, f integer, m integer, rfm_code text, rfm_segment text,
        flags text[], segment text)$$,
    $$SELECT * FROM pg_temp.profile_rows('local') AS p(
        customer_id text, first_order timestamptz, last_order timestamptz, tenure_days integer,
        recency_days integer, frequency bigint, purchase_days integer, monetary numeric,
        mean_amount numeric, mean_gap_days double precision, discount_share double precision,
        due_in_days integer, r integer, f integer, m integer, rfm_code text, rfm_segment text,
        flags text[], segment text)$$,
    'refresh() over the shards gives exactly the profile of the same rows on one server (every column)');
SELECT results_eq(
    $$SELECT r_breaks, f_breaks, m_breaks, top_spender_min, customers, buyers, prospects, changed,
             segments FROM refreshed WHERE segmentation = 'sharded'$$,
    $$SELECT r_breaks, f_breaks, m_breaks, top_spender_min, customers, buyers, prospects, changed,
             segments FROM refreshed WHERE segmentation = 'local'$$,
    'the global steps (cut points, top-spender cut, counts) are combined on the coordinator to the same values');
SELECT is((SELECT count(*) FROM customers_local AS c
            WHERE segment_of(c.customer_id, 'sharded') IS DISTINCT FROM segment_of(c.customer_id, 'local')),
          0::bigint, 'segment_of() answers from the sharded profile as from the local one');

-- The statement refresh() ran for the per-customer figures (the GROUP BY
-- segment_internal.refresh_figures() runs over foreign scans), and its plan (a
-- generic one where the recorded text has parameters for its constants:
-- prepared, then explained with NULLs, which a generic plan does not read).
CREATE TEMP TABLE stage_statement AS
SELECT query FROM refresh_statements
 WHERE server = 'coordinator' AND query ~ 'FROM public\.orders\M' AND query LIKE '%segment.rfm(%'
 LIMIT 1;
SELECT is((SELECT count(*) FROM stage_statement), 1::bigint,
          'the coordinator recorded the per-customer statement of the refresh');
CREATE TEMP TABLE stage_plan (n serial, line text);
DO $$
DECLARE
    l text;
    statement text := (SELECT query FROM stage_statement);
    nparams integer := (SELECT coalesce(max(m[1]::integer), 0)
                          FROM regexp_matches((SELECT query FROM stage_statement), '\$(\d+)', 'g') AS m);
BEGIN
    IF statement IS NOT NULL THEN
        IF nparams > 0 THEN
            PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
            EXECUTE 'PREPARE stage_statement_prepared AS ' || statement;
            statement := format('EXECUTE stage_statement_prepared(%s)',
                                array_to_string(array_fill('NULL'::text, ARRAY[nparams]), ', '));
        END IF;
        FOR l IN EXECUTE format('EXPLAIN (VERBOSE, COSTS OFF) %s', statement) LOOP
            INSERT INTO stage_plan (line) VALUES (l);
        END LOOP;
        IF nparams > 0 THEN
            DEALLOCATE stage_statement_prepared;
            PERFORM set_config('plan_cache_mode', 'auto', true);
        END IF;
    END IF;
END
$$;
CREATE TEMP TABLE stage_remote AS
SELECT line, line ~ 'Remote SQL: SELECT customer_id, segment\.rfm\(ordered_at, amount::numeric, (''[^'']+''|\$\d+)::segment\.time_zone\), count\(\*\) FILTER \(WHERE \(discount > (0|\$\d+)::numeric\)\) FROM public\.orders_part WHERE .*status <> ALL .* GROUP BY 1$' AS pushed_down
  FROM stage_plan WHERE line ~ 'Remote SQL: ';
SELECT is((SELECT count(*) FROM stage_remote WHERE pushed_down),
          2::bigint,
          'EXPLAIN VERBOSE of it: the rfm aggregate, discount count and status filter are in the Remote SQL of both shards');
SELECT diag(line) FROM stage_plan
 WHERE (SELECT count(*) FROM stage_remote WHERE pushed_down) <> 2
 ORDER BY n;
SELECT is((SELECT count(*) FROM stage_plan
            WHERE line ~ '^\s*(->\s*)?(Finalize |Partial )?(Hash|Group|Mixed)?Aggregate'),
          0::bigint, 'no aggregation is left on the coordinator for the per-customer figures');

-- What the shards received during the refresh.
SELECT cmp_ok((SELECT count(*) FROM refresh_statements
                WHERE server = 'shard1'
                  AND query LIKE '%segment.rfm(ordered_at, amount::numeric, %::segment.time_zone)%GROUP BY 1'),
              '>=', 1::bigint, 'shard 1 ran the per-customer aggregate of the refresh');
SELECT cmp_ok((SELECT count(*) FROM refresh_statements
                WHERE server = 'shard2'
                  AND query LIKE '%segment.rfm(ordered_at, amount::numeric, %::segment.time_zone)%GROUP BY 1'),
              '>=', 1::bigint, 'shard 2 ran the per-customer aggregate of the refresh');
SELECT is((SELECT count(*) FROM refresh_statements
            WHERE server <> 'coordinator' AND query LIKE '%FROM public.orders_part%'
              AND query NOT LIKE '%GROUP BY%'),
          0::bigint, 'no order rows were fetched from the shards for the refresh');

-- New orders arrive on the shards; the next refresh follows them the same way.
INSERT INTO orders
SELECT c, timestamptz '2025-02-01 10:00+00' + c * interval '1 minute', 99.00, NULL, 'paid'
  FROM generate_series(1, 3300, 7) AS c;
INSERT INTO orders_local
SELECT c, timestamptz '2025-02-01 10:00+00' + c * interval '1 minute', 99.00, NULL, 'paid'
  FROM generate_series(1, 3300, 7) AS c;
CREATE TEMP TABLE refreshed2 AS
SELECT * FROM segment.refresh('sharded', '2025-03-01 00:00:00+00')
UNION ALL
SELECT * FROM segment.refresh('local', '2025-03-01 00:00:00+00');
SELECT results_eq(
    $$SELECT * FROM pg_temp.profile_rows('sharded') AS p(
        customer_id text, first_order timestamptz, last_order timestamptz, tenure_days integer,
        recency_days integer, frequency bigint, purchase_days integer, monetary numeric,
        mean_amount numeric, mean_gap_days double precision, discount_share double precision,
        due_in_days integer, r integer, f integer, m integer, rfm_code text, rfm_segment text,
        flags text[], segment text)$$,
    $$SELECT * FROM pg_temp.profile_rows('local') AS p(
        customer_id text, first_order timestamptz, last_order timestamptz, tenure_days integer,
        recency_days integer, frequency bigint, purchase_days integer, monetary numeric,
        mean_amount numeric, mean_gap_days double precision, discount_share double precision,
        due_in_days integer, r integer, f integer, m integer, rfm_code text, rfm_segment text,
        flags text[], segment text)$$,
    'after new orders on the shards, the second refresh gives the same profile as on one server');
SELECT results_eq(
    $$SELECT h.customer_id, h.from_segment, h.to_segment FROM segment.history AS h
        JOIN refreshed2 AS r ON r.id = h.refresh_id WHERE r.segmentation = 'sharded' ORDER BY 1$$,
    $$SELECT h.customer_id, h.from_segment, h.to_segment FROM segment.history AS h
        JOIN refreshed2 AS r ON r.id = h.refresh_id WHERE r.segmentation = 'local' ORDER BY 1$$,
    'and records the same segment changes in the history');

SELECT * FROM finish();
ROLLBACK;
