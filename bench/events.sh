#!/usr/bin/env bash
# The events benchmark, on the generated events of bench/events/generate.sql:
# GROUP BY customer over the same rows with
#   (a) a bare count(*)                        the floor
#   (r) segment.rfm(occurred_at, amount)       the baseline: the orders aggregate
#   (e) segment.events(...)                    event types = kind names
#   (m) segment.events(..., kinds jsonb)       with a mapping of type names
#   (c) segment.contacts(...), (l) segment.order_lines(...)   for comparison
# Every figure is a ratio to a baseline measured in the same run, on the same
# throwaway cluster; one process (no parallel workers), so that ratios compare
# per-row work.  Each step's CPU time is that of its backend (utime + stime
# from /proc/self/stat, read by the backend itself); on a machine shared with
# other work it is much steadier than the wall-clock time, which the report
# shows too.
#
#   bench/events.sh small     10k customers, 500k events (seconds)
#   bench/events.sh large     1M customers, 50M events (about half an hour)
#   bench/events.sh 200000    any number of customers (~50 events each)
#
# One untimed warm-up round, then ROUNDS (default 3) timed rounds, the steps
# interleaved; the report gives medians.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

AS_OF='2026-01-01 00:00:00+00'     # the generated events end here

size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

bench_cluster "
ALTER SYSTEM SET shared_buffers = '6GB';
ALTER SYSTEM SET work_mem = '2GB';"

log "generating $customers customers' events (bench/events/generate.sql)"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -v customers="$customers" -f "$BENCH_DIR/events/generate.sql" >/dev/null

# The timed steps: label|query file|description.
STEPS=(
    "a|bare|(a) GROUP BY customer, count(*)"
    "r|rfm|(r) GROUP BY customer, segment.rfm(occurred_at, amount)"
    "e|events|(e) GROUP BY customer, segment.events(type, at, product, as_of, window)"
    "m|events_mapped|(m) ... segment.events(..., kinds jsonb)"
    "c|contacts|(c) GROUP BY customer, segment.contacts(at, flag, as_of, window)"
    "l|order_lines|(l) GROUP BY customer, segment.order_lines(at, launched, product, 30)"
)

timing_script() {
    local run step label file
    echo 'SET client_min_messages = warning;'
    echo 'CREATE TABLE bench_times (step text, run int, seconds float8, cpu float8, result bigint);'
    bench_cpu_function
    for run in $(seq 0 "$ROUNDS"); do
        for step in "${STEPS[@]}"; do
            IFS='|' read -r label file _ <<<"$step"
            cat <<SQL
SELECT clock_timestamp() AS t0, pg_temp.cpu_seconds() AS c0 \\gset
\\i $BENCH_DIR/events/$file.sql
INSERT INTO bench_times VALUES ('$label', $run, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz),
                                pg_temp.cpu_seconds() - :c0, :'result');
SQL
        done
    done
}

# The plan of each step (all should be a HashAggregate over a Seq Scan).
plans=$(for step in "${STEPS[@]}"; do
    IFS='|' read -r label file _ <<<"$step"
    printf '(%s) ' "$label"
    sed -e '/^--/d' -e 's/ \\gset$//' "$BENCH_DIR/events/$file.sql" |
        sed '1s/^/EXPLAIN (COSTS OFF) /' |
        psql_quiet -v as_of="$AS_OF" -At -f - | sed -n 's/^ *-> *//p' | head -1 | tr -d '\n'
    printf '; '
done)

log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps"
timing_script | psql_quiet -v as_of="$AS_OF" -f -

echo
echo "Events benchmark, size $size ($customers customers), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
bench_machine
descriptions=$(bench_descriptions)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v descriptions="$descriptions" -v rounds="$ROUNDS" \
    -v plans="$plans" -f "$BENCH_DIR/events/report.sql"
