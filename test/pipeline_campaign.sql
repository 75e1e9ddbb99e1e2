-- A campaign audience as a materialized view on segment_of(), refreshed
-- concurrently after each segment.refresh() (the README's example).
BEGIN;
SELECT plan(9);

CREATE SCHEMA tap_shop;
CREATE TABLE tap_shop.customers (id integer PRIMARY KEY, email text NOT NULL);
INSERT INTO tap_shop.customers SELECT i, 'c' || i || '@example.com' FROM generate_series(1, 6) AS i;
CREATE TABLE tap_shop.orders (customer_id integer, created_at timestamptz, total numeric, status text);
INSERT INTO tap_shop.orders VALUES
    (1, '2024-01-01', 10, 'paid'), (1, '2024-01-11', 10, 'paid'), (1, '2024-01-21', 10, 'paid'),
    (2, '2024-06-01', 10, 'paid'), (2, '2024-06-11', 10, 'paid'), (2, '2024-06-21', 10, 'paid'),
    (3, '2024-02-01', 50, 'paid'), (3, '2024-02-05', 50, 'paid'),
    (4, '2024-06-25', 20, 'cancelled');
SELECT lives_ok($$SELECT segment.configure(orders => 'tap_shop.orders', customer => 'customer_id',
                                          ordered_at => 'created_at', amount => 'total',
                                          status => 'status', exclude_status => '{cancelled}',
                                          customers => 'tap_shop.customers', customers_key => 'id',
                                          segmentation => 'tap_shop', is_default => true)$$,
                'configure');
SELECT lives_ok($$SELECT segment.refresh(as_of => '2024-07-01')$$, 'refresh');

CREATE MATERIALIZED VIEW tap_shop.win_back AS
    SELECT c.id, c.email
      FROM tap_shop.customers AS c
     WHERE segment_of(c.id) = 'Lapsing';
CREATE UNIQUE INDEX ON tap_shop.win_back (id);

SELECT results_eq($$SELECT id FROM tap_shop.win_back ORDER BY id$$, ARRAY[1, 3],
                  'the audience holds the lapsing customers');
SELECT results_eq($$SELECT id FROM tap_shop.customers WHERE segment_of(id) = 'Prospects' ORDER BY id$$,
                  ARRAY[4, 5, 6], 'customers who never ordered (or only cancelled) are prospects');

-- Customer 1 orders again, customer 2 stops: after a refresh, the audience follows.
INSERT INTO tap_shop.orders VALUES (1, '2024-07-25', 10, 'paid');
SELECT lives_ok($$SELECT segment.refresh(as_of => '2024-08-01')$$, 'second refresh');
SELECT results_eq($$SELECT id FROM tap_shop.win_back ORDER BY id$$, ARRAY[1, 3],
                  'the materialized view still shows the old audience');
SELECT lives_ok($$REFRESH MATERIALIZED VIEW CONCURRENTLY tap_shop.win_back$$, 'refresh concurrently');
SELECT results_eq($$SELECT id FROM tap_shop.win_back ORDER BY id$$, ARRAY[2, 3],
                  'the audience is the new one');
SELECT results_eq($$SELECT from_segment, to_segment, customers::integer FROM segment.transitions()
                    WHERE from_segment IS DISTINCT FROM to_segment$$,
                  $$VALUES ('Lapsing', 'Loyal Customers', 1), ('Newcomers', 'Lapsing', 1)$$,
                  'the transitions show who moved');

SELECT * FROM finish();
ROLLBACK;
