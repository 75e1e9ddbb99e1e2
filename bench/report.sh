#!/usr/bin/env bash
# The segment report's cost (segment.report(), issue 17) on the generated
# shop of bench/generate.sql, configured with 4 clusters and lifetime value
# (every section of the page) and refreshed twice (movement): the report's
# time as a ratio to SELECT count(*) FROM the profile and to the last
# refresh, measured in the same run, and the page's size.
#
#   bench/report.sh small     10k customers (seconds)
#   bench/report.sh large     1M customers (minutes: most of it generating and refreshing)
#   bench/report.sh 200000    any number of customers (~10 orders each)
#
# ROUNDS (default 3) timed rounds after a warm-up; medians.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

bench_cluster

log "generating the shop: $customers customers (bench/generate.sql)"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -v customers="$customers" -f "$BENCH_DIR/generate.sql" >/dev/null
log "configuring and refreshing it twice (as of 2025-12-01, then 2026-01-01)"
psql_quiet <<'SQL' >/dev/null
SET client_min_messages = warning;
SELECT segment.configure(orders => 'orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount',
                         discount => 'discount', customers => 'customers', customers_key => 'customer_id',
                         clusters => 4, cluster_options => '{"seed": 1}', clv => true);
SELECT segment.refresh(as_of => '2025-12-01 00:00:00+00');
SQL
psql_quiet <<SQL
SET client_min_messages = warning;
CREATE TABLE bench_times (step text, run int, seconds float8);
SELECT clock_timestamp() AS t0 \\gset
SELECT segment.refresh(as_of => '2026-01-01 00:00:00+00') \\g /dev/null
INSERT INTO bench_times VALUES ('refresh', 1, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
VACUUM (ANALYZE) segment.profile_default;
$(for run in $(seq 0 "$ROUNDS"); do cat <<RUN
SELECT clock_timestamp() AS t0 \\gset
SELECT count(*) FROM segment.profile_default \\g /dev/null
INSERT INTO bench_times VALUES ('count', $run, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
SELECT clock_timestamp() AS t0 \\gset
SELECT length(segment.report()) AS bytes \\gset
INSERT INTO bench_times VALUES ('report', $run, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
RUN
done)
\\pset footer off
SELECT $customers AS customers, (SELECT count(*) FROM orders) AS orders,
       :bytes AS report_bytes,
       round(m.report::numeric, 3) AS report_s,
       round(m.count::numeric, 3) AS count_s,
       round((m.report / nullif(m.count, 0))::numeric, 1) AS report_per_count,
       round(m.refresh::numeric, 2) AS refresh_s,
       round((m.report / nullif(m.refresh, 0))::numeric, 3) AS report_per_refresh
  FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE step = 'report' AND run > 0) AS report,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE step = 'count' AND run > 0) AS count,
               max(seconds) FILTER (WHERE step = 'refresh') AS refresh
          FROM bench_times) AS m;
SQL
