#!/usr/bin/env bash
# The Citus benchmark: the same shop (bench/generate.sql) in ordinary tables
# on the coordinator and distributed over two workers (customers and orders
# by customer, colocated; the profile distributed with segment.distribute()),
# on one Citus cluster of three PostgreSQL servers on this machine:
#   floor      a bare GROUP BY of the orders into a coordinator table;
#   refresh    segment.refresh() of each segmentation;
#   clv        the same refresh of a second segmentation of each with
#              lifetime value on (clv => true): the CLV share of a full
#              refresh, (with - without) / with, on one server and on Citus;
#   lookup     SELECT count(*) FROM customers WHERE segment_of(id) = '...'
#              against the same count as a join with the profile.
# Every figure is a ratio to a baseline measured in the same run: the
# distributed steps against the same steps on one server (the coordinator's
# ordinary tables), and segment_of() against the join on the same cluster.
#
#   bench/citus.sh small     10k customers, ~100k orders (a minute)
#   bench/citus.sh 200000    any number of customers (~10 orders each)
#   bench/citus.sh large     1M customers, ~10M orders
#
# One untimed warm-up round, then ROUNDS (default 3) timed rounds, the steps
# interleaved; the report gives medians.  Needs Citus (installed, or built
# from ../shared/vendor as the tests do).
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"
source "$SEGMENT_ROOT/scripts/citus.sh"

AS_OF='2026-01-01 00:00:00+00'     # the generated shop ends here
size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

ensure_packages
build_and_install
start_cluster
if ! citus_install; then
    echo "$0: Citus is needed: ${CITUS_SKIPPED:-its build failed}" >&2
    exit 1
fi
start_citus_cluster segment_bench
nodes=("$CITUS_COORDINATOR_PORT" "${CITUS_WORKER_PORTS[@]}")
log "configuring the three servers alike"
for port in "${nodes[@]}"; do
    psql_quiet -p "$port" -d segment_bench <<'SQL' >/dev/null
ALTER SYSTEM SET work_mem = '512MB';
ALTER SYSTEM SET hash_mem_multiplier = 2;
ALTER SYSTEM SET maintenance_work_mem = '1GB';
ALTER SYSTEM SET max_wal_size = '16GB';
ALTER SYSTEM SET max_parallel_workers_per_gather = 0;
ALTER SYSTEM SET autovacuum = off;
ALTER SYSTEM SET jit = off;
SELECT pg_reload_conf();
SQL
done
bench() { psql_quiet -p "$CITUS_COORDINATOR_PORT" -d segment_bench "$@"; }

log "generating the shop: $customers customers, and its distributed copy"
bench -c 'CREATE EXTENSION segment'
bench -v customers="$customers" -f "$BENCH_DIR/generate.sql" >/dev/null
bench <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE TABLE d_customers (LIKE customers INCLUDING ALL);
CREATE TABLE d_orders (LIKE orders);   -- its key (order_id) is not the distribution column
SELECT create_distributed_table('d_customers', 'customer_id');
SELECT create_distributed_table('d_orders', 'customer_id', colocate_with => 'd_customers');
INSERT INTO d_customers SELECT * FROM customers;
INSERT INTO d_orders SELECT * FROM orders;
VACUUM ANALYZE customers, orders, d_customers, d_orders;
SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'single',
                         discount => 'discount', customers => 'customers', customers_key => 'customer_id');
SELECT segment.configure('d_orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'citus',
                         discount => 'discount', customers => 'd_customers', customers_key => 'customer_id');
SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'single_clv',
                         discount => 'discount', customers => 'customers', customers_key => 'customer_id',
                         clv => true, clv_months => 12, clv_discount_rate => 0.01);
SELECT segment.configure('d_orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'citus_clv',
                         discount => 'discount', customers => 'd_customers', customers_key => 'customer_id',
                         clv => true, clv_months => 12, clv_discount_rate => 0.01);
SELECT segment.distribute('citus');
SELECT segment.distribute('citus_clv');
-- No change capture on one server either: over distributed orders there is
-- none (every refresh is full), and a full refresh of a segmentation with it
-- also stores its figures for the next incremental one, which neither Citus
-- nor a segmentation with lifetime value (never incremental) does; without
-- it both servers, and both sides of each CLV share, do the same work.
SELECT segment_internal.drop_capture('single');
SELECT segment_internal.drop_capture('single_clv');
SQL

# The timed steps: label|query file|description.
STEPS=(
    "a1|floor_single|(a1) one server: GROUP BY customer of the orders into a table"
    "a3|floor_citus|(a3) Citus: the same GROUP BY over the distributed orders"
    "r1|refresh_single|(r1) one server: segment.refresh()"
    "r3|refresh_citus|(r3) Citus: segment.refresh() into the distributed profile"
    "c1|refresh_clv_single|(c1) one server: segment.refresh() with lifetime value"
    "c3|refresh_clv_citus|(c3) Citus: segment.refresh() with lifetime value, distributed profile"
    "j1|join_single|(j1) one server: count(*) of a segment, join customers x profile"
    "s1|segment_of_single|(s1) one server: count(*) WHERE segment_of(id) = ..."
    "j3|join_citus|(j3) Citus: the join of distributed customers x profile (colocated)"
    "s3|segment_of_citus|(s3) Citus: WHERE segment_of(id) = ... over distributed customers"
)

# Keep the profiles as autovacuum would, outside the timing.
bench_after_step() {
    case $1 in
        r1) echo 'VACUUM (ANALYZE) segment.profile_single;' ;;
        r3) echo 'VACUUM (ANALYZE) segment.profile_citus;' ;;
        c1) echo 'VACUUM (ANALYZE) segment.profile_single_clv;' ;;
        c3) echo 'VACUUM (ANALYZE) segment.profile_citus_clv;' ;;
    esac
}

log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps"
bench_timing_script citus | bench -v as_of="$AS_OF" -f -

# Where a refresh's time goes: one more refresh of each, with its DEBUG
# lines (milliseconds since the refresh started, at the end of each step).
steps_of() {
    bench -c 'SET client_min_messages = debug1' \
          -c "SELECT FROM segment.refresh('$1', as_of => '$AS_OF', mode => 'full')" 2>&1 |
        sed -n 's/^DEBUG:  segment.refresh: //p' | paste -sd';' | sed 's/;/; /g'
}
steps_single=$(steps_of single)
steps_citus=$(steps_of citus)
steps_single_clv=$(steps_of single_clv)
steps_citus_clv=$(steps_of citus_clv)

echo
echo "Citus benchmark, size $size ($customers customers), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
echo "$(bench -At -c "SELECT citus_version()" | sed 's/ on .*//'): a coordinator and two workers on one machine,"
bench_machine
descriptions=$(bench_descriptions)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$CITUS_COORDINATOR_PORT" -d segment_bench \
    -v descriptions="$descriptions" -v rounds="$ROUNDS" -f "$BENCH_DIR/citus/report.sql"
echo "Where a refresh's time goes (ms since it started, at the end of each step; one more refresh each):"
echo "  one server: $steps_single"
echo "  Citus:      $steps_citus"
echo "  one server, with lifetime value: $steps_single_clv"
echo "  Citus, with lifetime value:      $steps_citus_clv"
