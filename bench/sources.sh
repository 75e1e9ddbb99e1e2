#!/usr/bin/env bash
# The sources benchmark: segment.refresh() of the generated shop
# (bench/generate.sql) with its site events (bench/events/generate.sql),
# support contacts, products and order lines (bench/sources/generate.sql):
#   (a) a bare GROUP BY over the events: count and max per customer into a
#       table (nothing that reads the events per customer can do less)
#   (o) refresh of a segmentation of the orders only
#   (e) refresh of a segmentation with the events
#   (s) refresh of a segmentation with the events, contacts and products
# Three segmentations of the same orders and customers, so each refresh
# replaces a profile of its own.  Every figure is a ratio to a baseline
# measured in the same run, on the same throwaway cluster; one process (no
# parallel workers).  CPU time is that of the backend (utime + stime from
# /proc/self/stat, read by the backend itself), steadier than the wall
# clock on a shared machine; both are shown.
#
#   bench/sources.sh small     10k customers, ~100k orders, 500k events (a minute)
#   bench/sources.sh large     1M customers, ~10M orders, 50M events, 300k
#                              contacts, ~13M order lines (about an hour)
#   bench/sources.sh 200000    any number of customers
#
# One untimed warm-up round, then ROUNDS (default 3) timed rounds, the steps
# interleaved; the report gives medians.  After each refresh its profile is
# vacuumed (untimed), as autovacuum would.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

AS_OF='2026-01-01 00:00:00+00'     # the generated shop ends here

size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

bench_cluster "
ALTER SYSTEM SET shared_buffers = '6GB';
ALTER SYSTEM SET work_mem = '2GB';"

log "generating the shop: $customers customers (bench/generate.sql)"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -v customers="$customers" -f "$BENCH_DIR/generate.sql" >/dev/null
log "generating the events (bench/events/generate.sql)"
psql_quiet -v customers="$customers" -f "$BENCH_DIR/events/generate.sql" >/dev/null
log "generating contacts, products and order lines (bench/sources/generate.sql)"
psql_quiet -v customers="$customers" -f "$BENCH_DIR/sources/generate.sql" >/dev/null
psql_quiet -f "$BENCH_DIR/sources/configure.sql" >/dev/null

# The timed steps: label|query file|description.
STEPS=(
    "a|floor|(a) GROUP BY customer over the events, count/max into a table"
    "o|refresh_orders|(o) refresh(), orders only"
    "e|refresh_events|(e) refresh(), orders + events"
    "s|refresh_all|(s) refresh(), orders + events + contacts + order lines/products"
)

timing_script() {
    local run step label file
    echo 'SET client_min_messages = warning;'
    echo 'CREATE TABLE bench_times (step text, run int, seconds float8, cpu float8, result text);'
    bench_cpu_function
    for run in $(seq 0 "$ROUNDS"); do
        for step in "${STEPS[@]}"; do
            IFS='|' read -r label file _ <<<"$step"
            cat <<SQL
SELECT clock_timestamp() AS t0, pg_temp.cpu_seconds() AS c0 \\gset
\\i $BENCH_DIR/sources/$file.sql
INSERT INTO bench_times VALUES ('$label', $run, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz),
                                pg_temp.cpu_seconds() - :c0, :'result');
SQL
            case "$label" in
                o) echo 'VACUUM (ANALYZE) segment.profile_orders;' ;;
                e) echo 'VACUUM (ANALYZE) segment.profile_events;' ;;
                s) echo 'VACUUM (ANALYZE) segment.profile_all;' ;;
            esac
        done
    done
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps (load average $load_before)"
timing_script | psql_quiet -v as_of="$AS_OF" -f -
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "Sources benchmark, size $size ($customers customers), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM,"
echo "load average (1, 5, 15 min) before the timing $load_before, after it $load_after"
descriptions=$(for step in "${STEPS[@]}"; do
    IFS='|' read -r label _ desc <<<"$step"
    printf '%s|%s\n' "$label" "$desc"
done)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v descriptions="$descriptions" -v rounds="$ROUNDS" \
    -v as_of="$AS_OF" -f "$BENCH_DIR/sources/report.sql"
