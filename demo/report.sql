-- The demo report: the example shop segmented the way a shop would run it,
-- with segment.configure() once and segment.refresh() on a schedule; here two
-- refreshes, a month apart, so that the history has something to show.  The
-- segmentation also reads the shop's events, support tickets and order lines
-- (segment.configure_event_source, _contacts, _products), and has two rules of the
-- shop's own.
\pset footer off
\set QUIET on
SET client_min_messages = warning;
SET TimeZone = 'UTC';
\echo
\echo 'The example shop (demo/shop.sql): customers and orders'
SELECT (SELECT count(*) FROM shop.customers) AS customers,
       (SELECT count(*) FROM shop.orders) AS orders,
       (SELECT count(*) FROM shop.orders WHERE status = 'cancelled') AS cancelled,
       (SELECT sum(amount) FROM shop.orders WHERE status = 'paid') AS revenue,
       (SELECT min(ordered_at)::date FROM shop.orders) AS first_order,
       (SELECT max(ordered_at)::date FROM shop.orders) AS last_order;

\echo 'Besides the orders: site and newsletter events (since March 2025), support tickets, products, order lines'
SELECT (SELECT count(*) FROM shop.events) AS events,
       (SELECT count(*) FROM shop.events WHERE customer_id IS NULL) AS "not logged in",
       (SELECT count(*) FROM shop.tickets) AS tickets,
       (SELECT count(*) FROM shop.tickets WHERE rating < 3) AS "rated 1 or 2",
       (SELECT count(*) FROM shop.products) AS products,
       (SELECT count(*) FROM shop.products WHERE launched_at >= '2025-05-15') AS "launched since May 15",
       (SELECT count(*) FROM shop.order_lines) AS "order lines";

\echo 'One segmentation: paid orders, coupons, the customers table (for prospects and customer.country), lifetime value and 4 clusters'
SELECT segment.configure(orders => 'shop.orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount',
                         discount => 'discount',
                         status => 'status', exclude_status => '{cancelled}',
                         customers => 'shop.customers', customers_key => 'customer_id',
                         clv => true, clusters => 4, cluster_options => '{"seed": 7}') AS profile;

\echo 'Its sources: the events (the shop''s event names mapped to kinds), the tickets (a rating below 3 is negative),'
\echo 'the order lines and products; two rules of the shop''s own: Angry Champions (1), Champions in Germany (3)'
SELECT segment.configure_event_source('shop.events', 'customer_id', 'event', 'occurred_at', product => 'sku',
       kinds => '{"session_start": "visit", "view_item": "product_view", "add_to_cart": "cart_add",
                  "purchase": "checkout", "nl_subscribe": "subscribe", "nl_unsubscribe": "unsubscribe",
                  "nl_open": "newsletter_open", "search": "ignore"}') \g /dev/null
SELECT segment.configure_contact_source('shop.tickets', 'customer_id', 'opened_at',
                                  negative => 'rating', negative_below => 3) \g /dev/null
SELECT segment.configure_product_source('shop.order_lines', 'order_id', 'sku', quantity => 'qty',
                                  products => 'shop.products', launched_at => 'launched_at',
                                  category => 'category') \g /dev/null
SELECT segment.add_rule('Angry Champions',
                        $$negative_contacts > 0 AND rfm_segment = 'Champions'$$, 1) \g /dev/null
SELECT segment.add_rule('Champions in Germany',
                        $$rfm_segment = 'Champions' AND customer.country = 'DE'$$, 3) \g /dev/null
\echo

SELECT id AS may_refresh FROM segment.refresh(as_of => '2025-05-31 23:59:59+00') \gset
SELECT id AS june_refresh, as_of AS june_as_of FROM segment.refresh(as_of => '2025-06-30 23:59:59+00') \gset

\echo 'RFM segments as of 2025-06-30 (the rfm_segment column of the profile)'
SELECT rfm_segment AS "RFM segment",
       count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS "share %",
       sum(monetary) AS revenue,
       round(100.0 * sum(monetary) / sum(sum(monetary)) OVER (), 1) AS "revenue %",
       round(avg(recency_days)) AS "mean recency (days)",
       round(avg(frequency), 1) AS "mean orders"
  FROM segment.profile_default
 WHERE frequency > 0
 GROUP BY rfm_segment
 ORDER BY min((SELECT min(priority) FROM segment.rfm_segment_map AS m
                WHERE m.segment = profile_default.rfm_segment));

\echo 'Cut points the scores used (segment.cut_points; a score is 1 + the number of cut points below the value)'
SELECT recency_days_breaks, frequency_breaks, monetary_breaks, top_spender_min
  FROM segment.cut_points;

\echo 'Final segments: the first behavioural rule that holds, by priority, else the RFM segment'
SELECT p.segment, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS "share %",
       sum(p.monetary) AS revenue,
       coalesce(r.predicate, '(RFM segment)') AS "rule"
  FROM segment.profile_default AS p
  LEFT JOIN segment.rule_predicates AS r ON r.name = p.segment AND r.segmentation = 'default'
 GROUP BY p.segment, r.priority, r.predicate
 ORDER BY r.priority NULLS LAST, customers DESC;

\echo 'Customers carry every rule that holds (flags), for campaigns that combine them'
SELECT f.flag, count(*) AS customers
  FROM segment.profile_default AS p, unnest(p.flags) AS f(flag)
 GROUP BY f.flag ORDER BY customers DESC;

\echo 'A campaign audience, in plain SQL: lapsing customers from Germany, best first'
SELECT c.customer_id, c.email, segment_of(c.customer_id) AS segment,
       (profile_of(c.customer_id)).monetary AS spent,
       (profile_of(c.customer_id)).recency_days AS "days since last order"
  FROM shop.customers AS c
 WHERE c.country = 'DE' AND segment_of(c.customer_id) = 'Lapsing'
 ORDER BY spent DESC, c.customer_id
 LIMIT 5;

\echo 'Lifetime value (BG/NBD and Gamma-Gamma, fitted by the refresh): the models'
SELECT clv_status, round((bgnbd).r::numeric, 3) AS r, round((bgnbd).alpha::numeric, 2) AS alpha,
       round((bgnbd).a::numeric, 3) AS a, round((bgnbd).b::numeric, 3) AS b,
       round((gamma_gamma).p::numeric, 2) AS p, round((gamma_gamma).q::numeric, 2) AS q,
       round((gamma_gamma).v::numeric, 2) AS v
  FROM segment.refresh_models WHERE refresh_id = :june_refresh;

\echo 'Valuable and slipping away: the rule At Risk, High Value (p_alive < 0.5, CLV in the top fifth)'
SELECT customer_id, frequency, recency_days, monetary, round(p_alive::numeric, 2) AS p_alive,
       round(clv::numeric, 2) AS "12-month CLV", rfm_segment
  FROM segment.profile_default
 WHERE segment = 'At Risk, High Value'
 ORDER BY clv DESC, customer_id
 LIMIT 5;

\echo 'Clusters (k-means on log recency, frequency and monetary, standardised): what each one is'
SELECT cluster, customers, round((100 * share)::numeric, 1) AS "share %",
       round(mean_recency_days) AS "mean recency (days)", round(mean_frequency::numeric, 1) AS "mean orders",
       round(mean_monetary) AS "mean spend", round(mean_clv) AS "mean CLV",
       (SELECT string_agg(format('%s %s%%', e.key, round(100 * e.value::numeric)), ', '
                          ORDER BY e.value::numeric DESC, e.key)
          FROM (SELECT * FROM jsonb_each(rfm_segments) ORDER BY value::numeric DESC, key LIMIT 2) AS e)
           AS "main RFM segments"
  FROM segment.describe_clusters()
 ORDER BY cluster;

\echo 'What changed in June (segment.transitions between the two refreshes; the largest moves)'
SELECT from_segment, to_segment, customers
  FROM segment.transitions(from_refresh => :may_refresh, to_refresh => :june_refresh)
 WHERE from_segment IS DISTINCT FROM to_segment
 ORDER BY customers DESC, from_segment, to_segment
 LIMIT 8;

\echo 'Where the generator''s kinds of customer landed: their three largest RFM segments (% of the kind)'
SELECT kind, customers, string_agg(format('%s %s%%', segment, pct), ', ' ORDER BY pct DESC, segment) AS "top RFM segments"
  FROM (SELECT c.kind, coalesce(p.rfm_segment, '(no order)') AS segment,
               sum(count(*)) OVER (PARTITION BY c.kind) AS customers,
               round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY c.kind)) AS pct,
               row_number() OVER (PARTITION BY c.kind ORDER BY count(*) DESC, p.rfm_segment) AS rank
          FROM segment.profile_default AS p
          JOIN shop.customers AS c ON c.customer_id = p.customer_id
         GROUP BY c.kind, p.rfm_segment) AS ranked
 WHERE rank <= 3
 GROUP BY kind, customers
 ORDER BY customers DESC;

\echo 'Segments from the events, tickets and products, and the shop''s own (customers: their final segment; flagged: the rule holds)'
SELECT r.priority, r.name AS segment,
       CASE WHEN r.builtin IS NULL THEN 'the shop''s rule'
            WHEN r.builtin = 'angry' THEN 'tickets'
            WHEN r.builtin IN ('due_to_restock', 'trend_follower') THEN 'order lines, products'
            WHEN r.builtin = 'impulse_buyer' THEN 'events, order lines'
            ELSE 'events' END AS "from",
       count(*) FILTER (WHERE p.segment = r.name) AS customers,
       round(100.0 * count(*) FILTER (WHERE p.segment = r.name) / count(*), 1) AS "share %",
       count(*) FILTER (WHERE r.name = ANY (p.flags)) AS flagged
  FROM segment.rule_predicates AS r
 CROSS JOIN segment.profile_default AS p
 WHERE r.segmentation = 'default'
   AND (r.builtin IS NULL OR r.builtin IN ('angry', 'abandoned_cart', 'indecisive', 'curious_prospect',
                                           'due_to_restock', 'trend_follower', 'newsletter_subscriber',
                                           'impulse_buyer'))
 GROUP BY r.priority, r.name, r.builtin
 ORDER BY r.priority;

\echo 'What the June refresh read from each source, and left out (segment.refresh_sources; the counts that are not 0)'
SELECT source, rows, customers AS "customers with data", skipped,
       (SELECT string_agg(format('%s %s', d.key, d.value), ', ' ORDER BY d.key)
          FROM jsonb_each(details) AS d WHERE d.value::numeric <> 0) AS details
  FROM segment.refresh_sources
 WHERE refresh_id = :june_refresh
 ORDER BY source;

\echo 'Urgent: Champions with a ticket rated 1 or 2 in the last 30 days (Angry Champions), best first'
SELECT p.customer_id, c.email, c.country, p.frequency AS orders, p.monetary AS spent,
       t.opened_at::date AS "ticket opened", t.channel, t.topic, t.rating
  FROM segment.profile_default AS p
  JOIN shop.customers AS c USING (customer_id)
 CROSS JOIN LATERAL (SELECT * FROM shop.tickets AS t
                      WHERE t.customer_id = p.customer_id AND t.rating < 3
                      ORDER BY t.opened_at DESC LIMIT 1) AS t
 WHERE p.segment = 'Angry Champions'
 ORDER BY p.monetary DESC, p.customer_id
 LIMIT 5;

\echo 'Due to re-stock by July 14 (next_restock within two weeks): customers per product'
SELECT p.restock_product AS sku, pr.name, count(*) AS customers,
       min(p.next_restock) AS first, max(p.next_restock) AS last
  FROM segment.profile_default AS p
  LEFT JOIN shop.products AS pr ON pr.sku = p.restock_product
 WHERE p.next_restock BETWEEN :'june_as_of'::date AND :'june_as_of'::date + 14
 GROUP BY p.restock_product, pr.name
 ORDER BY customers DESC, sku
 LIMIT 5;

SELECT count(*) AS carts, sum(cardinality(abandoned_products)) AS left_behind
  FROM segment.profile_default WHERE abandoned_at > :'june_as_of'::timestamptz - interval '7 days' \gset
\echo 'Carts abandoned in the last week:' :carts 'customers left' :left_behind 'products behind (abandoned_products); the most often left'
SELECT a.sku, pr.name, pr.category, pr.price, count(*) AS customers
  FROM segment.profile_default AS p, unnest(p.abandoned_products) AS a(sku)
  LEFT JOIN shop.products AS pr ON pr.sku = a.sku
 WHERE p.abandoned_at > :'june_as_of'::timestamptz - interval '7 days'
 GROUP BY a.sku, pr.name, pr.category, pr.price
 ORDER BY customers DESC, a.sku
 LIMIT 5;

-- The report as one web page (segment.report(): sizes, revenue, the RFM grid,
-- June's movement, clusters, lifetime value), written to the file named by
-- the psql variable report_file (scripts/demo.sh passes one).
\if :{?report_file}
\pset format unaligned
\pset tuples_only on
\o :report_file
SELECT segment.report();
\o
\pset tuples_only off
\pset format aligned
\echo
\echo 'The segment report (segment.report()) is in' :report_file
\else
\echo
\echo 'The segment report as a web page: psql -At -c ''SELECT segment.report()'' > report.html'
\endif
