#!/usr/bin/env bash
# The pipeline benchmark, on the generated shop of bench/generate.sql:
#   refresh   segment.refresh() against the floor (a bare GROUP BY of the
#             orders: nothing that computes RFM can do less);
#   first     the first refresh of a segmentation configured just before it
#             (every stored figure, profile and history row inserted), against
#             the floor and the refresh;
#   lookup    SELECT count(*) FROM customers WHERE segment_of(id) = '...'
#             against the same count as a join with the profile table;
#   one call  a single segment_of() per statement (pgbench, prepared),
#             against the same lookup in SQL and against SELECT 1.
# Every figure is a ratio to a baseline measured in the same run, on the
# same throwaway cluster.
#
#   bench/pipeline.sh small     10k customers, ~100k orders (seconds)
#   bench/pipeline.sh large     1M customers, ~10M orders (minutes)
#   bench/pipeline.sh 200000    any number of customers (~10 orders each)
#
# One untimed warm-up round, then ROUNDS (default 3) timed rounds, the steps
# interleaved; the report gives medians.  After each refresh the profile is
# vacuumed (untimed), as autovacuum would; autovacuum itself is off so that it
# does not run in the middle of a timed query.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

SECONDS_PER_CALL_RUN=${SECONDS_PER_CALL_RUN:-10}
AS_OF='2026-01-01 00:00:00+00'     # the generated shop ends here

size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

# The generator is bench/generate.sql (shared with bench/rfm.sh).
generator=${SEGMENT_BENCH_GENERATOR:-$BENCH_DIR/generate.sql}
if [ ! -f "$generator" ]; then
    echo "$0: $generator is missing (it comes with bench/rfm.sh)" >&2
    exit 1
fi

bench_cluster

log "generating the shop: $customers customers ($generator)"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -v customers="$customers" -f "$generator" >/dev/null
psql_quiet <<'EOF'
SELECT segment.configure(orders => 'orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount',
                         discount => 'discount',
                         customers => 'customers', customers_key => 'customer_id');
EOF

# The timed steps: label|query file|description.
STEPS=(
    "a|floor|(a) floor: GROUP BY customer, max/count/sum into a table"
    "r|refresh|(r) segment.refresh(mode => 'full'): profile, rules, history"
    "j|join|(j) count(*) of a segment: hash join customers x profile"
    "s|segment_of|(s) count(*) of a segment: WHERE segment_of(id) = ..."
    "n|first|(n) segment.refresh() of a new segmentation: its first"
)

# Keep the profiles as autovacuum would, outside the timing.  Before (n), a
# new segmentation configured like the default one (the last round's
# dropped, the history's dead rows vacuumed away, everything flushed).
bench_after_step() {
    case $1 in
        r) echo 'VACUUM (ANALYZE) segment.profile_default;' ;;
        s)
            cat <<'SQL'
\o /dev/null
SELECT segment.drop_segmentation('first') FROM segment.segmentations WHERE name = 'first';
VACUUM segment.history;
SELECT segment.configure(orders => 'orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount',
                         discount => 'discount',
                         customers => 'customers', customers_key => 'customer_id',
                         segmentation => 'first', is_default => false);
CHECKPOINT;
\o
SQL
            ;;
    esac
}

log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps"
bench_timing_script pipeline | psql_quiet -v as_of="$AS_OF" -f -

# One call per statement, prepared, one client: latency per statement.
log "timing single calls with pgbench (${SECONDS_PER_CALL_RUN} s each)"
calls=$(mktemp -d)
chmod 755 "$calls"
max_id=$customers
printf '\\set id random(1, %s)\nSELECT 1;\n' "$max_id" >"$calls/select1.sql"
printf '\\set id random(1, %s)\nSELECT segment FROM segment.profile_default WHERE customer_id = :id;\n' \
    "$max_id" >"$calls/sql.sql"
printf '\\set id random(1, %s)\nSELECT segment_of(:id::bigint);\n' "$max_id" >"$calls/segment_of.sql"
pgbench_latency() {
    "$PG_BIN/pgbench" -n -M prepared -c 1 -T "$SECONDS_PER_CALL_RUN" -f "$calls/$1.sql" 2>/dev/null |
        sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'
}
pgbench_latency select1 >/dev/null          # warm-up
lat_select1=$(pgbench_latency select1)
lat_sql=$(pgbench_latency sql)
lat_segment_of=$(pgbench_latency segment_of)
rm -rf "$calls"

bench_report "Pipeline benchmark" pipeline -v lat_select1="$lat_select1" -v lat_sql="$lat_sql" \
    -v lat_segment_of="$lat_segment_of"
