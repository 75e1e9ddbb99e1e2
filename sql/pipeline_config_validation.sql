-- Configuration values are finite and in range when they are written, by
-- configure() and the other configuration functions and by a direct UPDATE
-- (CHECK constraints), so that no refresh fails on one later (issue 12,
-- finding 7: lapsing_factor => 'Infinity' was stored, written into the
-- Lapsing rule unquoted, and every refresh failed with 42703).
SET TimeZone = 'UTC';
\set SHOW_CONTEXT never

CREATE SCHEMA val_shop;
CREATE TABLE val_shop.orders (order_id integer PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                              amount numeric);
INSERT INTO val_shop.orders
SELECT i, i % 40 + 1, timestamptz '2024-01-01' + (i * 37 % 360) * interval '1 day', (i * 13) % 300 + 5
  FROM generate_series(1, 400) AS i;
CREATE TABLE val_shop.events (customer_id integer, kind text, at timestamptz);
INSERT INTO val_shop.events SELECT i % 40 + 1, 'visit', timestamptz '2024-12-01' + i * interval '1 hour'
  FROM generate_series(1, 100) AS i;
CREATE TABLE val_shop.contacts (customer_id integer, opened_at timestamptz, rating integer);
INSERT INTO val_shop.contacts VALUES (1, '2024-12-20', 1), (2, '2024-12-21', 5);
CREATE TABLE val_shop.lines (order_id integer, product text);
INSERT INTO val_shop.lines SELECT i, 'p' || i % 5 FROM generate_series(1, 400) AS i;

-- The outcome of a statement: ok, or its SQLSTATE, message and the
-- constraint it violated.
CREATE FUNCTION pg_temp.outcome(statement text) RETURNS text LANGUAGE plpgsql AS
$$
DECLARE
    state text;
    msg   text;
    cons  text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, cons = CONSTRAINT_NAME;
    RETURN state || ': ' || CASE WHEN state = '23514' THEN 'check constraint ' || cons ELSE msg END;
END
$$;

SELECT segment.configure('val_shop.orders', 'customer_id', 'ordered_at', 'amount', as_of => 'last_order');
SELECT segment.configure_event_source('val_shop.events', 'customer_id', 'kind', 'at');
SELECT segment.configure_contact_source('val_shop.contacts', 'customer_id', 'opened_at', negative => 'rating', negative_below => 3);
SELECT segment.configure_product_source('val_shop.lines', 'order_id', 'product');

-- The finding: refused with a message and a hint, nothing stored.
SELECT segment.configure('val_shop.orders', 'customer_id', 'ordered_at', 'amount', lapsing_factor => 'Infinity');
SELECT segment.configure('val_shop.orders', 'customer_id', 'ordered_at', 'amount', lapsing_factor => 'NaN');
SELECT lapsing_factor FROM segment.segmentations;

-- Every floating-point parameter of configure() with each value that is not
-- a finite number in range.
SELECT p.param, v.value,
       pg_temp.outcome(format('SELECT segment.configure(%L, %L, %L, %L, as_of => %L, %I => %L::double precision)',
                              'val_shop.orders', 'customer_id', 'ordered_at', 'amount', 'last_order',
                              p.param, v.value)) AS outcome
  FROM (VALUES ('top_spender_share'), ('discount_share'), ('lapsing_factor'), ('clv_discount_rate'),
               ('clv_penalizer'), ('at_risk_p_alive'), ('high_value_share')) AS p(param)
 CROSS JOIN (VALUES ('NaN'), ('Infinity'), ('-Infinity'), ('1e308'), ('-1')) AS v(value)
 ORDER BY p.param, v.value;
-- Fixed cut points and integers out of range.
SELECT a.args, pg_temp.outcome(format('SELECT segment.configure(%L, %L, %L, %L, %s)',
                                       'val_shop.orders', 'customer_id', 'ordered_at', 'amount', a.args))
           AS outcome
  FROM (VALUES ($$r_breaks => '{1,2,NaN,4}'$$), ($$f_breaks => '{1,2,3,Infinity}'$$),
               ($$m_breaks => '{-Infinity,2,3,4}'$$), ($$m_breaks => '{1,2,NULL,4}'$$),
               ($$r_breaks => '{{1,2},{3,4}}'$$), ($$r_breaks => '[0:3]={4,3,2,1}'$$),
               ($$lapsing_factor => 1001$$), ($$new_days => -1$$), ($$rebuy_days => -1$$),
               ($$buckets => 1$$), ($$clv_months => 121$$), ($$clv_min_repeat_buyers => 0$$),
               ($$clusters => 51$$), ($$clusters => 3, cluster_options => '{"n_init": -1}'$$),
               ($$clusters => 3, cluster_options => '{"max_iter": 1e10}'$$),
               ($$clusters => 3, cluster_options => '{"init_sample": -5}'$$),
               ($$clusters => 3, cluster_options => '{"tol": -1}'$$),
               ($$clusters => 3, cluster_options => '{"seed": 1.5}'$$),
               ($$clusters => 3, cluster_features => '{recency_days,nope}'$$),
               ($$clusters => 3, cluster_features => '{recency_days,NULL}'$$),
               ($$clusters => 3, cluster_features => '{clv}'$$),
               ($$cluster_options => '[]'$$), ($$as_of => 'tomorrow'$$), ($$cluster_model => 'x'$$),
               ($$clv => true, clv_time_unit => 'month'$$)) AS a(args);
-- In range: accepted, and a refresh runs with them.
SELECT segment.configure('val_shop.orders', 'customer_id', 'ordered_at', 'amount', as_of => 'last_order',
                         lapsing_factor => 1e-300);
SELECT name, predicate FROM segment.rule_predicates WHERE name = 'Lapsing';
SELECT customers FROM segment.refresh();
SELECT segment.configure('val_shop.orders', 'customer_id', 'ordered_at', 'amount', as_of => 'last_order',
                         lapsing_factor => 1000, r_breaks => '[0:3]={10,20,30,40}');
SELECT customers FROM segment.refresh();

-- The sources' thresholds and windows.
SELECT a.call, pg_temp.outcome('SELECT segment.' || a.call) AS outcome
  FROM (VALUES ($$configure_event_source('val_shop.events', 'customer_id', 'kind', 'at', lookback => '101 years')$$),
               ($$configure_event_source('val_shop.events', 'customer_id', 'kind', 'at', lookback => '-1 day')$$),
               ($$configure_event_source('val_shop.events', 'customer_id', 'kind', 'at', abandoned_days => 36526)$$),
               ($$configure_event_source('val_shop.events', 'customer_id', 'kind', 'at', abandoned_days => 2147483647)$$),
               ($$configure_event_source('val_shop.events', 'customer_id', 'kind', 'at', indecisive_visits => 0)$$),
               ($$configure_contact_source('val_shop.contacts', 'customer_id', 'opened_at', negative => 'rating', negative_below => 'NaN')$$),
               ($$configure_contact_source('val_shop.contacts', 'customer_id', 'opened_at', negative => 'rating', negative_below => 'Infinity')$$),
               ($$configure_contact_source('val_shop.contacts', 'customer_id', 'opened_at', lookback => '200 years')$$),
               ($$configure_contact_source('val_shop.contacts', 'customer_id', 'opened_at', angry_contacts => 0)$$),
               ($$configure_product_source('val_shop.lines', 'order_id', 'product', trend_share => 'NaN')$$),
               ($$configure_product_source('val_shop.lines', 'order_id', 'product', trend_share => 'Infinity')$$),
               ($$configure_product_source('val_shop.lines', 'order_id', 'product', restock_days => 36526)$$),
               ($$configure_product_source('val_shop.lines', 'order_id', 'product', launch_days => 36526)$$),
               ($$configure_product_source('val_shop.lines', 'order_id', 'product', trend_lines => 0)$$),
               ($$configure_event_source('val_shop.events', 'customer_id', 'kind', 'at', lookback => '100 years', abandoned_days => 36525)$$),
               ($$configure_product_source('val_shop.lines', 'order_id', 'product', restock_days => 36525)$$))
       AS a(call);
SELECT customers FROM segment.refresh();

-- A direct UPDATE cannot store what configure() refuses.
SELECT u.statement, pg_temp.outcome(u.statement) AS outcome
  FROM (VALUES ($$UPDATE segment.segmentations SET lapsing_factor = 'Infinity'$$),
               ($$UPDATE segment.segmentations SET lapsing_factor = 'NaN'$$),
               ($$UPDATE segment.segmentations SET lapsing_factor = 1e6$$),
               ($$UPDATE segment.segmentations SET top_spender_share = 'NaN'$$),
               ($$UPDATE segment.segmentations SET discount_share = 'NaN'$$),
               ($$UPDATE segment.segmentations SET clv_discount_rate = 'NaN'$$),
               ($$UPDATE segment.segmentations SET clv_penalizer = 'NaN'$$),
               ($$UPDATE segment.segmentations SET clv_penalizer = 'Infinity'$$),
               ($$UPDATE segment.segmentations SET at_risk_p_alive = 'NaN'$$),
               ($$UPDATE segment.segmentations SET high_value_share = 'Infinity'$$),
               ($$UPDATE segment.segmentations SET r_breaks = '{1,2,3,NaN}'$$),
               ($$UPDATE segment.segmentations SET f_breaks = '{1,2,3}'$$),
               ($$UPDATE segment.segmentations SET m_breaks = '{4,3,2,1}'$$),
               ($$UPDATE segment.segmentations SET buckets = 4$$),
               ($$UPDATE segment.event_sources SET lookback = '1000 years'$$),
               ($$UPDATE segment.event_sources SET abandoned_days = 100000$$),
               ($$UPDATE segment.contact_sources SET negative_below = 'NaN'$$),
               ($$UPDATE segment.contact_sources SET lookback = '1000 years'$$),
               ($$UPDATE segment.product_sources SET trend_share = 'NaN'$$),
               ($$UPDATE segment.product_sources SET restock_days = 100000$$),
               ($$UPDATE segment.segmentations SET lapsing_factor = 1.5$$))
       AS u(statement);
SELECT name, predicate FROM segment.rule_predicates WHERE name = 'Lapsing';
SELECT customers FROM segment.refresh();

-- Amounts that are not finite numbers do not reach a rule's SQL either.
INSERT INTO val_shop.orders VALUES (1001, 41, '2024-12-30', 'NaN'), (1002, 42, '2024-12-30', 'Infinity');
SELECT pg_temp.outcome('SELECT segment.refresh()') AS refresh_with_nan_amounts;

DROP SCHEMA val_shop CASCADE;
SELECT segment.drop_segmentation('default');
SELECT setval('segment.refreshes_id_seq', 1, false) IS NOT NULL AS ids_reset
 WHERE NOT EXISTS (SELECT FROM segment.refreshes);
