-- The demo report: the example shop segmented the way a shop would run it,
-- with segment.configure() once and segment.refresh() on a schedule; here two
-- refreshes, a month apart, so that the history has something to show.
\pset footer off
\set QUIET on
SET client_min_messages = warning;
\echo
\echo 'The example shop (demo/shop.sql): customers and orders'
SELECT (SELECT count(*) FROM shop.customers) AS customers,
       (SELECT count(*) FROM shop.orders) AS orders,
       (SELECT count(*) FROM shop.orders WHERE status = 'cancelled') AS cancelled,
       (SELECT sum(amount) FROM shop.orders WHERE status = 'paid') AS revenue,
       (SELECT min(ordered_at)::date FROM shop.orders) AS first_order,
       (SELECT max(ordered_at)::date FROM shop.orders) AS last_order;

\echo 'One segmentation: paid orders, coupons, the customers table (for prospects), lifetime value and 4 clusters'
SELECT segment.configure(orders => 'shop.orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount',
                         discount => 'discount',
                         status => 'status', exclude_status => '{cancelled}',
                         customers => 'shop.customers', customers_key => 'customer_id',
                         clv => true, clusters => 4, cluster_options => '{"seed": 7}') AS profile;

SELECT id AS may_refresh FROM segment.refresh(as_of => '2025-05-31 23:59:59+00') \gset
SELECT id AS june_refresh FROM segment.refresh(as_of => '2025-06-30 23:59:59+00') \gset

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
  FROM segment.transitions(:may_refresh, :june_refresh)
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
