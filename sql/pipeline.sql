-- Pipeline: configure, refresh, profile, segment_of() and profile_of().
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never

CREATE SCHEMA pipe_shop;
CREATE TABLE pipe_shop.customers (id integer PRIMARY KEY, email text NOT NULL);
INSERT INTO pipe_shop.customers SELECT i, 'c' || i || '@example.com' FROM generate_series(1, 10) AS i;
CREATE TABLE pipe_shop.orders (
    id          serial PRIMARY KEY,
    customer_id integer,
    created_at  timestamptz,
    total       numeric,
    coupon      text,
    status      text NOT NULL DEFAULT 'paid'
);
INSERT INTO pipe_shop.orders (customer_id, created_at, total, coupon, status) VALUES
    (1, '2024-06-25', 100, NULL, 'paid'),        -- new customer
    (2, '2024-01-01', 50, NULL, 'paid'),         -- lapsing: 121 days > 2 x 30.5
    (2, '2024-02-01', 50, NULL, 'paid'),
    (2, '2024-03-02', 50, NULL, 'paid'),
    (3, '2024-05-01', 200, NULL, 'paid'),        -- top spender
    (3, '2024-05-31', 200, NULL, 'paid'),
    (3, '2024-06-25', 200, 'SUMMER', 'paid'),
    (4, '2024-05-24', 20, NULL, 'paid'),         -- due to re-buy: every 10 days, last 8 days ago
    (4, '2024-06-03', 20, NULL, 'paid'),
    (4, '2024-06-13', 20, NULL, 'paid'),
    (4, '2024-06-23', 20, NULL, 'paid'),
    (4, '2024-06-30', 20, NULL, 'cancelled'),    -- left out by the status filter
    (5, '2023-01-15', 30, NULL, 'paid'),         -- one-time buyer
    (5, '2024-07-05', 30, NULL, 'paid'),         -- after as_of: ignored
    (6, '2024-04-01', 40, 'WELCOME', 'paid'),    -- discount shopper
    (6, '2024-06-20', 40, 'SPRING', 'paid'),
    (7, '2023-06-01', 1000, NULL, 'paid'),       -- top spender
    (7, '2024-06-28', 10, NULL, 'paid'),
    (8, '2024-06-01', NULL, NULL, 'paid'),       -- no amount: skipped, so a prospect
    (NULL, '2024-06-01', 70, NULL, 'paid'),      -- no customer: skipped
    (11, '2024-06-30', 5, NULL, 'paid');         -- orders without a customers row

-- Nothing configured yet.
SELECT segment.refresh();
SELECT segment_of(1);

-- Bad configurations are refused before anything is stored.
SELECT segment.configure('pipe_shop.nope', 'customer_id', 'created_at', 'total');
SELECT segment.configure('pipe_shop.orders', 'client', 'created_at', 'total');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created', 'total');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'total', 'total');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'coupon');
SELECT segment.configure('pipe_shop.orders', 'created_at', 'created_at', 'total');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', discount => 'created_at');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', status => 'state', exclude_status => '{cancelled}');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', status => 'status');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', customers => 'pipe_shop.customers');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', customers => 'pipe_shop.customers', customers_key => 'email');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', buckets => 11);
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', as_of => 'yesterday');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', segmentation => 'Bad Name');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', r_breaks => '{10,20}');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', r_breaks => '{10,30,20,40}');
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', top_spender_share => 1.5);
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total', lapsing_factor => 0);
SELECT segment.configure(NULL, 'customer_id', 'created_at', 'total');
SELECT count(*) FROM segment.segmentations;

SELECT segment.configure(orders => 'pipe_shop.orders', customer => 'customer_id',
                         ordered_at => 'created_at', amount => 'total',
                         discount => 'coupon', status => 'status', exclude_status => '{cancelled}',
                         customers => 'pipe_shop.customers', customers_key => 'id',
                         top_spender_share => 0.25);
SELECT name, is_default, orders, key_type, buckets, as_of_rule, profile, last_refresh
  FROM segment.segmentations;

-- Configured but not refreshed.
SELECT segment_of(1);

SELECT id, as_of, buckets, fixed_breaks, r_breaks, f_breaks, m_breaks, top_spender_min,
       customers, buyers, prospects, changed, segments
  FROM segment.refresh(as_of => '2024-07-01');

SELECT customer_id, first_order::date, last_order::date, tenure_days, recency_days, frequency,
       purchase_days, monetary, mean_gap_days, discount_share, due_in_days, rfm_code,
       rfm_segment, flags, segment
  FROM segment.profile_default ORDER BY customer_id;
SELECT * FROM segment.cut_points;
-- The same refresh again: no customer's values changed, so no row is written.
SELECT pg_stat_get_xact_tuples_updated('segment.profile_default'::regclass) AS updates_before \gset
SELECT customers, changed, written FROM segment.refresh(as_of => '2024-07-01 12:00');
SELECT pg_stat_get_xact_tuples_updated('segment.profile_default'::regclass) - :updates_before AS rows_updated;
-- One more order: only the customers whose values moved are written.
INSERT INTO pipe_shop.orders (customer_id, created_at, total, coupon, status)
VALUES (4, '2024-06-30 10:00', 20, NULL, 'paid');
SELECT customers, changed, written FROM segment.refresh(as_of => '2024-07-01');
DELETE FROM pipe_shop.orders WHERE customer_id = 4 AND created_at = '2024-06-30 10:00';
SELECT customers, changed, written FROM segment.refresh(as_of => '2024-07-01');

-- Lookups: every key width, unknown keys, NULL, a named segmentation.
SELECT c.id, segment_of(c.id), segment_of(c.id::bigint), segment_of(c.id, 'default'),
       segment_of(c.id, NULL)
  FROM pipe_shop.customers AS c ORDER BY c.id;
SELECT segment_of(11), segment_of(12), segment_of(-1), segment_of(3000000000), segment_of(NULL::integer);
SELECT segment_of(NULL);
SELECT segment_of(1, 'nope');
SELECT segment_of('1');
SELECT segment_of('5d3e4e6b-0a5c-4c9e-9d70-6f1e3f0c9a11'::uuid);
SELECT p.first_order, p.frequency, p.monetary, p.flags, p.segment,
       p = (SELECT (t.first_order, t.last_order, t.tenure_days, t.recency_days, t.frequency,
                    t.purchase_days, t.monetary, t.mean_amount, t.mean_gap_days, t.discount_share,
                    t.due_in_days, t.r, t.f, t.m, t.rfm_code, t.rfm_segment, t.cluster, t.cluster_name,
                    t.cluster_distance, t.p_alive, t.expected_purchases, t.clv, t.visits, t.product_views,
                    t.cart_adds, t.newsletter_opens, t.last_visit, t.days_since_visit, t.abandoned_at,
                    t.abandoned_products, t.subscribed, t.support_contacts, t.negative_contacts,
                    t.last_negative_contact, t.trend_share, t.trend_lines, t.top_category, t.next_restock,
                    t.restock_product, t.unbrowsed_lines, t.unbrowsed_share, t.flags,
                    t.segment)::segment.customer_profile
              FROM segment.profile_default AS t WHERE t.customer_id = 3) AS same_row
  FROM profile_of(3) AS p;
SELECT profile_of(12) IS NULL AS unknown, (profile_of(9)).segment AS prospect;
SELECT id, email FROM pipe_shop.customers WHERE segment_of(id) = 'Top Spenders' ORDER BY id;
-- Many calls in one query switch to an in-memory table: the same answers.
SELECT count(*) AS calls, count(*) FILTER (WHERE x.s IS NOT DISTINCT FROM p.segment) AS same
  FROM (SELECT g % 13 AS id, segment_of(g % 13) AS s FROM generate_series(1, 5000) AS g) AS x
  LEFT JOIN segment.profile_default AS p ON p.customer_id = x.id;
SELECT count(*) AS calls, count(*) FILTER (WHERE x.s IS NOT DISTINCT FROM p.segment) AS same
  FROM (SELECT g % 13 AS id, segment_of((g % 13)::bigint) AS s FROM generate_series(1, 5000) AS g) AS x
  LEFT JOIN segment.profile_default AS p ON p.customer_id = x.id;

-- A failed refresh leaves the profile as it was; the orders table changed.
ALTER TABLE pipe_shop.orders RENAME COLUMN total TO amount;
SELECT segment.refresh(as_of => '2024-08-01');
ALTER TABLE pipe_shop.orders RENAME COLUMN amount TO total;
ALTER TABLE pipe_shop.orders ALTER COLUMN coupon TYPE date USING NULL;
SELECT segment.refresh(as_of => '2024-08-01');
ALTER TABLE pipe_shop.orders ALTER COLUMN coupon TYPE text;
ALTER TABLE pipe_shop.orders ALTER COLUMN customer_id TYPE bigint;
SELECT segment.refresh(as_of => '2024-08-01');
ALTER TABLE pipe_shop.orders ALTER COLUMN customer_id TYPE integer;
ALTER TABLE pipe_shop.orders RENAME TO orders_old;
SELECT segment.refresh(as_of => '2024-08-01');
ALTER TABLE pipe_shop.orders_old RENAME TO orders;
SELECT count(*), (SELECT r.as_of FROM segment.refreshes AS r JOIN segment.segmentations AS x
                    ON r.id = x.last_refresh WHERE x.name = 'default') AS as_of
  FROM segment.profile_default;
SELECT segment_of(2);
SELECT count(*) FROM segment.refreshes;

-- Other key types: text and uuid, in named segmentations.
CREATE TABLE pipe_shop.web_orders (visitor text, at date, amount integer);
INSERT INTO pipe_shop.web_orders VALUES ('ann', '2024-06-01', 10), ('ann', '2024-06-11', 30),
                                   ('bob', '2024-01-01', 5), (NULL, '2024-06-01', 1);
SELECT segment.configure('pipe_shop.web_orders', 'visitor', 'at', 'amount', segmentation => 'web',
                         as_of => 'last_order');
SELECT id, as_of, customers FROM segment.refresh('web');
SELECT segment_of('ann', 'web'), segment_of('bob', 'web'), segment_of('carl', 'web'),
       (profile_of('ann', 'web')).frequency;
SELECT segment_of(1, 'web');
SELECT x.s, count(*)
  FROM (SELECT segment_of((ARRAY['ann', 'bob', 'carl', NULL])[g % 4 + 1], 'web') AS s
          FROM generate_series(1, 5000) AS g) AS x
 GROUP BY x.s ORDER BY x.s;
SELECT segment_of('ann');
CREATE TABLE pipe_shop.app_orders (uid uuid, at timestamp, amount money);
INSERT INTO pipe_shop.app_orders VALUES
    ('5d3e4e6b-0a5c-4c9e-9d70-6f1e3f0c9a11', '2024-06-01 10:00', 12.5),
    ('5d3e4e6b-0a5c-4c9e-9d70-6f1e3f0c9a11', '2024-06-02 10:00', 7.5);
SELECT segment.configure('pipe_shop.app_orders', 'uid', 'at', 'amount', segmentation => 'app');
SELECT customers FROM segment.refresh('app', '2024-06-03');
SELECT segment_of('5d3e4e6b-0a5c-4c9e-9d70-6f1e3f0c9a11'::uuid, 'app'),
       (profile_of('5d3e4e6b-0a5c-4c9e-9d70-6f1e3f0c9a11'::uuid, 'app')).monetary,
       segment_of('00000000-0000-0000-0000-000000000000'::uuid, 'app');
SELECT name, is_default FROM segment.segmentations ORDER BY name;

-- A change of key type: refresh refuses, configure rebuilds the profile.
ALTER TABLE pipe_shop.web_orders ALTER COLUMN visitor TYPE varchar(20);
SELECT segment.refresh('web');
SELECT segment.configure('pipe_shop.web_orders', 'visitor', 'at', 'amount', segmentation => 'web',
                         as_of => 'last_order', is_default => true);
SELECT segment_of('ann');
SELECT customers FROM segment.refresh();
SELECT segment_of('ann'), segment_of(1, 'default');

-- Dropping the orders relation: refresh names it, lookups keep the last profile.
DROP TABLE pipe_shop.app_orders;
SELECT segment.refresh('app');
SELECT segment_of('5d3e4e6b-0a5c-4c9e-9d70-6f1e3f0c9a11'::uuid, 'app');

SELECT segment.drop_segmentation('app');
SELECT segment.drop_segmentation('web');
SELECT segment.drop_segmentation('default');
SELECT count(*) FROM segment.segmentations;
SELECT count(*) FROM segment.history;
DROP SCHEMA pipe_shop CASCADE;
