-- Pipeline sources: events, support contacts, order lines and products in a
-- segmentation; their profile columns and built-in rules; rules on the
-- customers relation's columns; bad input.  as_of 2025-07-01 00:00 UTC.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never

CREATE SCHEMA src_shop;
CREATE TABLE src_shop.customers (id integer PRIMARY KEY, country text, signup_channel text);
INSERT INTO src_shop.customers VALUES
    (1, 'DE', 'ads'), (2, 'DE', 'organic'), (3, 'FR', 'ads'), (4, 'DE', 'organic'),
    (5, 'FR', 'ads'), (6, 'DE', 'referral'), (7, 'FR', 'ads'), (8, 'DE', 'organic');
CREATE TABLE src_shop.orders (order_id integer PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                              amount numeric, status text NOT NULL DEFAULT 'paid');
INSERT INTO src_shop.orders VALUES
    (101, 1, '2025-04-10 12:00', 120, 'paid'), (102, 1, '2025-05-10 12:00', 120, 'paid'),
    (103, 1, '2025-06-09 12:00', 120, 'paid'), (104, 1, '2025-06-28 09:05', 150, 'paid'),
    (201, 2, '2025-04-20 12:00', 100, 'paid'), (202, 2, '2025-05-20 12:00', 100, 'paid'),
    (203, 2, '2025-06-20 12:00', 100, 'paid'), (204, 2, '2025-06-24 12:00', 100, 'paid'),
    (301, 3, '2025-06-27 12:00', 40, 'paid'),
    (401, 4, '2024-11-01 12:00', 60, 'paid'),
    (701, 7, '2025-06-15 12:00', 30, 'cancelled'),
    (801, 8, '2025-03-05 12:00', 50, 'paid'), (802, 8, '2025-06-05 12:00', 50, 'paid');
-- The shop's own event names.
CREATE TABLE src_shop.events (customer_id integer, name text, at timestamptz, sku text);
INSERT INTO src_shop.events VALUES
    (1, 'session', '2025-06-28 09:00', NULL), (1, 'add_to_cart', '2025-06-28 09:01', 'sneaker'),
    (1, 'purchase', '2025-06-28 09:05', NULL),
    (1, 'session', '2025-07-03 10:00', NULL),                      -- after as_of
    (2, 'search', '2025-06-18 10:00', NULL),                       -- ignored by the mapping
    (2, 'wishlist', '2025-06-18 10:01', 'hat'),                    -- not in the mapping
    (3, 'session', '2025-06-29 10:00', NULL), (3, 'add_to_cart', '2025-06-29 10:00', 'sock'),
    (3, 'add_to_cart', '2025-06-29 10:05', 'hat'),                 -- after the order: abandoned
    (4, 'session', '2025-06-05 20:00', NULL), (4, 'session', '2025-06-10 20:00', NULL),
    (4, 'session', '2025-06-15 20:00', NULL), (4, 'session', '2025-06-20 20:00', NULL),
    (4, 'session', '2025-06-25 20:00', NULL), (4, 'session', '2025-06-28 20:00', NULL),
    (5, 'session', '2025-06-20 08:00', NULL), (5, 'pdp', '2025-06-20 08:01', 'hat'),
    (6, 'nl_signup', '2025-01-10 08:00', NULL), (6, 'nl_open', '2025-06-15 08:00', NULL),
    (9, 'session', '2025-06-10 08:00', NULL),                      -- not a customer
    (NULL, 'session', '2025-06-10 08:00', NULL);                   -- no customer
CREATE TABLE src_shop.tickets (customer_id integer, opened_at timestamptz, rating integer, angry boolean);
INSERT INTO src_shop.tickets VALUES
    (2, '2025-06-25 09:00', 1, true), (1, '2025-06-26 09:00', 5, false),
    (3, '2025-05-01 09:00', 1, true),                              -- outside the window
    (9, '2025-06-20 09:00', 2, true),                              -- not a customer
    (5, '2025-06-29 09:00', NULL, NULL);                           -- not rated
CREATE TABLE src_shop.products (sku text PRIMARY KEY, launched_at timestamptz, category text);
INSERT INTO src_shop.products VALUES
    ('refill', '2020-01-01', 'care'), ('sneaker', '2025-06-20', 'shoes'), ('tee-1', '2025-03-01', 'apparel'),
    ('tee-2', '2025-06-01', 'apparel'), ('sock', '2024-01-01', 'apparel'), ('hat', '2024-01-01', 'apparel');
CREATE TABLE src_shop.lines (order_id integer, sku text, qty integer);
INSERT INTO src_shop.lines VALUES
    (101, 'refill', 1), (102, 'refill', 1), (103, 'refill', 1), (104, 'sneaker', 1), (104, 'sock', 2),
    (201, 'tee-1', 1), (202, 'ghost', 1),                          -- a product missing from products
    (202, 'sock', 0),                                              -- not a positive quantity
    (301, 'sock', 1), (401, 'hat', 1),
    (701, 'refill', 1),                                            -- of a cancelled order
    (801, 'tee-1', 1), (802, 'tee-2', 1),
    (999, 'refill', 1);                                            -- of an order that does not exist

-- Nothing configured yet.
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at');

SELECT segment.configure('src_shop.orders', 'customer_id', 'ordered_at', 'amount',
                         status => 'status', exclude_status => '{cancelled}',
                         customers => 'src_shop.customers', customers_key => 'id',
                         r_breaks => '{7,14,30,90}', f_breaks => '{0.5,1.5,2.5,3.5}',
                         m_breaks => '{50,100,200,350}');

-- Bad sources are refused, naming the column and its role.
SELECT segment.configure_event_source('src_shop.events', 'client', 'name', 'at');
SELECT segment.configure_event_source('src_shop.events', 'sku', 'name', 'at');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'customer_id', 'at');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'sku');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', product => 'item');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', kinds => '["visit"]');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', kinds => '{"session": "visits"}');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', lookback => '0 days');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', lookback => NULL);
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', abandoned_days => 0);
SELECT segment.configure_event_source('src_shop.events', 'customer_id', NULL, 'at');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', segmentation => 'nope');
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'opened_at', negative => 'rating');
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'opened_at', negative => 'angry',
                                  negative_below => 3);
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'opened_at', negative => 'opened_at');
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'opened_at', negative_below => 3);
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'opened_at', negative => 'rating',
                                  negative_below => 'NaN');
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'rating');
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'opened_at', angry_contacts => 0);
SELECT segment.configure_product_source('src_shop.lines', 'order_no', 'sku');
SELECT segment.configure_product_source('src_shop.lines', 'sku', 'sku');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', orders_key => 'id');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', quantity => 'sku');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'order_id', products => 'src_shop.products');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', products => 'src_shop.products',
                                  launched_at => 'category');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', products => 'src_shop.products',
                                  category => 'kind');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', category => 'category');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', launch_days => -1);
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', trend_share => 0);
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', trend_lines => 0);
-- The lines' own customer column (Citus): it must exist and compare with the orders' customer key.
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', line_customer => 'customer');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', line_customer => 'sku');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', lookback => '1 mon -29 days');
-- A score or quantity must read as a number: money does not.
CREATE VIEW src_shop.tickets_money AS SELECT customer_id, opened_at, rating::numeric::money AS rating FROM src_shop.tickets;
SELECT segment.configure_contact_source('src_shop.tickets_money', 'customer_id', 'opened_at', negative => 'rating',
                                  negative_below => 3);
CREATE VIEW src_shop.lines_money AS SELECT order_id, sku, qty::numeric::money AS qty FROM src_shop.lines;
SELECT segment.configure_product_source('src_shop.lines_money', 'order_id', 'sku', quantity => 'qty');
-- A customer key wider than the orders' could fail a refresh on one value.
CREATE VIEW src_shop.events_wide AS SELECT customer_id::bigint AS customer_id, name, at FROM src_shop.events;
SELECT segment.configure_event_source('src_shop.events_wide', 'customer_id', 'name', 'at');
-- A product on two rows of the products relation would count its lines twice.
CREATE VIEW src_shop.products_twice AS SELECT * FROM src_shop.products UNION ALL SELECT * FROM src_shop.products WHERE sku = 'hat';
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', products => 'src_shop.products_twice',
                                  launched_at => 'launched_at');
DROP VIEW src_shop.tickets_money, src_shop.lines_money, src_shop.events_wide, src_shop.products_twice;
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', restock_purchases => 1);
CREATE VIEW src_shop.orders_twice AS SELECT * FROM src_shop.orders UNION ALL SELECT * FROM src_shop.orders WHERE order_id = 104;
SELECT segment.configure('src_shop.orders_twice', 'customer_id', 'ordered_at', 'amount', segmentation => 'twice');
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', segmentation => 'twice');
SELECT segment.drop_segmentation('twice');
DROP VIEW src_shop.orders_twice;
SELECT segment.drop_source('events');
SELECT segment.drop_source('tickets');
SELECT (SELECT count(*) FROM segment.event_sources) + (SELECT count(*) FROM segment.contact_sources)
       + (SELECT count(*) FROM segment.product_sources) AS sources;

SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', product => 'sku',
                                kinds => '{"session": "visit", "pdp": "product_view", "add_to_cart": "cart_add",
                                           "purchase": "checkout", "nl_signup": "subscribe",
                                           "nl_unsubscribe": "unsubscribe", "nl_open": "newsletter_open",
                                           "search": "ignore"}');
SELECT segment.configure_contact_source('src_shop.tickets', 'customer_id', 'opened_at',
                                  negative => 'rating', negative_below => 3);
SELECT segment.configure_product_source('src_shop.lines', 'order_id', 'sku', quantity => 'qty',
                                  products => 'src_shop.products', launched_at => 'launched_at',
                                  category => 'category');
SELECT segmentation, relation, customer, event_type, occurred_at, product, lookback, abandoned_days,
       indecisive_visits, indecisive_cart_adds
  FROM segment.event_sources;
SELECT * FROM segment.contact_sources;
SELECT * FROM segment.product_sources;

-- The built-in rules of the sources join those of the orders.
SELECT priority, name, builtin, flag_only, predicate FROM segment.rule_predicates ORDER BY priority;

-- Rules on the customers relation's columns, alone or with the profile's.
SELECT segment.add_rule('Angry Champions', $$negative_contacts > 0 AND rfm_segment = 'Champions'$$, 1);
SELECT segment.add_rule('Champions in Germany', $$rfm_segment = 'Champions' AND customer.country = 'DE'$$, 3);
SELECT segment.add_rule('Shoe Lovers', $$top_category = 'shoes'$$, 56);
SELECT segment.add_rule('From Ads', $$customer.signup_channel = 'ads'$$, 90, flag_only => true);
SELECT segment.add_rule('Broken', $$customer.nope = 'x'$$, 91);
SELECT segment.add_rule('Broken', $$customer.country$$, 91);
-- A column of the customers relation is written customer.<column>.
SELECT segment.add_rule('Unqualified', $$customer_id > 0 AND country = 'DE'$$, 92);

SELECT customers, buyers, prospects, segments FROM segment.refresh(as_of => '2025-07-01');
SELECT source, rows, customers, skipped, details FROM segment.refresh_sources ORDER BY source;

SELECT customer_id AS id, frequency AS f, rfm_segment, visits, product_views AS views, cart_adds AS adds,
       newsletter_opens AS opens, last_visit, days_since_visit AS days, abandoned_at, abandoned_products,
       subscribed AS sub
  FROM segment.profile_default ORDER BY customer_id;
SELECT customer_id AS id, support_contacts AS contacts, negative_contacts AS negative,
       last_negative_contact, trend_share, top_category, next_restock, restock_product, flags, segment
  FROM segment.profile_default ORDER BY customer_id;
SELECT c.id, c.country, segment_of(c.id) FROM src_shop.customers AS c ORDER BY c.id;
SELECT (profile_of(3)).abandoned_products, (profile_of(3)).segment, (profile_of(1)).next_restock;

-- A second refresh: customer 3 orders what was left in the cart.
INSERT INTO src_shop.orders VALUES (302, 3, '2025-06-30 08:00', 25, 'paid');
INSERT INTO src_shop.lines VALUES (302, 'sock', 1), (302, 'hat', 1);
SELECT changed FROM segment.refresh(as_of => '2025-07-01');
SELECT customer_id, from_segment, to_segment FROM segment.history
 WHERE refresh_id = (SELECT last_refresh FROM segment.segmentations) ORDER BY customer_id;

-- A source that changed since it was configured: the refresh says what, and
-- leaves the profile as it was.
-- Trend Followers also needs trend_lines lines bought soon after a launch:
-- one lucky purchase of a new product is not a trend.  Customer 8 has two.
SELECT customer_id, trend_share, trend_lines, segment FROM segment.profile_default
 WHERE trend_lines > 0 ORDER BY customer_id;
UPDATE segment.product_sources SET trend_lines = 3 WHERE segmentation = 'default';
SELECT name, predicate FROM segment.rule_predicates WHERE builtin = 'trend_follower';
SELECT changed FROM segment.refresh(as_of => '2025-07-01');
SELECT customer_id, trend_share, trend_lines, segment FROM segment.profile_default WHERE customer_id = 8;
UPDATE segment.product_sources SET trend_lines = 2 WHERE segmentation = 'default';

SELECT count(*) AS refreshes FROM segment.refreshes \gset
ALTER TABLE src_shop.events RENAME COLUMN sku TO item;
SELECT segment.refresh(as_of => '2025-07-02');
ALTER TABLE src_shop.events RENAME COLUMN item TO sku;
ALTER TABLE src_shop.events ALTER COLUMN customer_id TYPE text;
SELECT segment.refresh(as_of => '2025-07-02');
ALTER TABLE src_shop.events ALTER COLUMN customer_id TYPE integer USING customer_id::integer;
ALTER TABLE src_shop.tickets ALTER COLUMN rating TYPE text;
SELECT segment.refresh(as_of => '2025-07-02');
ALTER TABLE src_shop.tickets ALTER COLUMN rating TYPE integer USING rating::integer;
ALTER TABLE src_shop.products RENAME TO items;
SELECT segment.refresh(as_of => '2025-07-02');
ALTER TABLE src_shop.items RENAME TO products;
ALTER TABLE src_shop.orders RENAME COLUMN order_id TO id;
SELECT segment.refresh(as_of => '2025-07-02');
ALTER TABLE src_shop.orders RENAME COLUMN id TO order_id;
ALTER TABLE src_shop.customers RENAME COLUMN country TO country_code;
SELECT segment.refresh(as_of => '2025-07-02');
ALTER TABLE src_shop.customers RENAME COLUMN country_code TO country;
INSERT INTO src_shop.events VALUES (1, 'session', 'infinity', NULL);
SELECT segment.refresh(as_of => '2025-07-02');
DELETE FROM src_shop.events WHERE at = 'infinity';
SELECT (SELECT count(*) FROM segment.refreshes) = :refreshes AS no_new_refresh,
       (SELECT r.as_of FROM segment.refreshes AS r JOIN segment.segmentations AS x ON r.id = x.last_refresh
         WHERE x.name = 'default') AS profile_as_of;

-- Rules on customer columns need one row per customer.
CREATE VIEW src_shop.customers_twice AS
    SELECT id, country, signup_channel FROM src_shop.customers
    UNION ALL SELECT 4, 'AT', 'ads';
SELECT segment.configure('src_shop.orders', 'customer_id', 'ordered_at', 'amount',
                         status => 'status', exclude_status => '{cancelled}',
                         customers => 'src_shop.customers_twice', customers_key => 'id',
                         r_breaks => '{7,14,30,90}', f_breaks => '{0.5,1.5,2.5,3.5}',
                         m_breaks => '{50,100,200,350}');
SELECT segment.refresh(as_of => '2025-07-02');
SELECT segment.enable_rule('Champions in Germany', enabled => false);
SELECT segment.enable_rule('From Ads', enabled => false);
SELECT customers FROM segment.refresh(as_of => '2025-07-02');
SELECT segment.enable_rule('Champions in Germany');
SELECT segment.enable_rule('From Ads');

-- Reconfigured with the customers table: the sources and rules are kept.
SELECT segment.configure('src_shop.orders', 'customer_id', 'ordered_at', 'amount',
                         status => 'status', exclude_status => '{cancelled}',
                         customers => 'src_shop.customers', customers_key => 'id',
                         r_breaks => '{7,14,30,90}', f_breaks => '{0.5,1.5,2.5,3.5}',
                         m_breaks => '{50,100,200,350}');
SELECT (SELECT count(*) FROM segment.event_sources) AS events,
       (SELECT count(*) FROM segment.contact_sources) AS contacts,
       (SELECT count(*) FROM segment.product_sources) AS products,
       (SELECT count(*) FROM segment.rules) AS rules;

-- Without the contacts: their columns are NULL and Angry Customers does not hold.
SELECT segment.drop_source('contacts');
SELECT segment.drop_source('contacts');
SELECT name, predicate FROM segment.rule_predicates WHERE builtin = 'angry';
SELECT changed FROM segment.refresh(as_of => '2025-07-01');
SELECT customer_id, support_contacts, negative_contacts, segment FROM segment.profile_default
 WHERE customer_id IN (1, 2) ORDER BY customer_id;

-- Without a customers relation the events say who the customers are: those
-- who never ordered join the profile as prospects (key 9 too).  A built-in
-- rule whose priority is taken is not added, with a notice.
SELECT segment.configure('src_shop.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'web');
SELECT segment.add_rule('Everyone', 'true', 6, 'web');
SELECT segment.configure_event_source('src_shop.events', 'customer_id', 'name', 'at', product => 'sku',
                                kinds => '{"session": "visit", "pdp": "product_view", "add_to_cart": "cart_add",
                                           "purchase": "checkout", "nl_signup": "subscribe", "nl_open": "newsletter_open",
                                           "search": "ignore", "wishlist": "ignore"}',
                                segmentation => 'web');
SELECT segment.drop_rule('Everyone', 'web');
SELECT segment.add_builtin_rules('web');
SELECT customers, prospects FROM segment.refresh('web', '2025-07-01');
SELECT customer_id, frequency, visits, last_visit, subscribed, segment FROM segment.profile_web
 WHERE frequency = 0 ORDER BY customer_id;
SELECT source, rows, customers, skipped, details FROM segment.refresh_sources
 WHERE segmentation = 'web';

-- A new orders relation keyed by text: the events keyed by integer no longer fit.
CREATE TABLE src_shop.web_orders (visitor text, at timestamptz, amount numeric);
SELECT segment.configure('src_shop.web_orders', 'visitor', 'at', 'amount', segmentation => 'web');

SELECT segment.drop_segmentation('web');
SELECT segment.drop_segmentation('default');
SELECT (SELECT count(*) FROM segment.event_sources) + (SELECT count(*) FROM segment.contact_sources)
       + (SELECT count(*) FROM segment.product_sources) AS sources;
DROP SCHEMA src_shop CASCADE;
