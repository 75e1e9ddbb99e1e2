#!/usr/bin/env bash
# The RFM benchmark, on the generated shop of bench/generate.sql:
#   (a)  the floor: a bare GROUP BY customer_id with max/count/sum into a
#        table (nothing that computes RFM in SQL can read less or do less);
#   (a2) the same GROUP BY with the rfm aggregate (first/last order, orders,
#        purchase days, sum, mean, mean gap) instead of max/count/sum;
#   (b)  RFM as one writes it in SQL today: a CTE of per-customer figures,
#        three NTILE(5) windows, a CASE for the 11 named segments;
#   (c)  segment.rfm_scores() into a table, serial;
#   (c2) the same with max_parallel_workers_per_gather = 2.
# Every figure is a ratio to a baseline measured in the same run, on the
# same throwaway cluster.  Targets: (c)/(a) <= 1.5, (b)/(c) >= 2.
#
#   bench/rfm.sh small     10k customers, ~100k orders (seconds)
#   bench/rfm.sh large     1M customers, ~10M orders (minutes)
#   bench/rfm.sh 200000    any number of customers (~10 orders each)
#
# One untimed warm-up round, then ROUNDS (default 3) timed rounds, the steps
# interleaved; the report gives medians and every timed run, in wall-clock
# seconds and in CPU seconds of the backend (parallel workers left out): on a
# shared machine the CPU time moves less than the wall-clock time.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

AS_OF='2026-01-01 00:00:00+00'     # the generated shop ends here

size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

bench_cluster

log "generating the shop: $customers customers (bench/generate.sql)"
psql_quiet -c 'CREATE EXTENSION segment'
gen_start=$(date +%s)
psql_quiet -v customers="$customers" -f "$BENCH_DIR/generate.sql" >/dev/null
gen_seconds=$(( $(date +%s) - gen_start ))

# The timed steps: label|query file|description.
STEPS=(
    "a|floor|(a) floor: GROUP BY customer, max/count/sum into a table"
    "g|rfm_aggregate|(a2) the same GROUP BY with the segment.rfm() aggregate"
    "b|sql|(b) SQL today: CTE, 3 x NTILE(5), CASE into a table"
    "c|scores|(c) segment.rfm_scores() into a table, serial"
    "p|scores_parallel|(c2) segment.rfm_scores(), 2 workers per Gather"
)

# The backend's CPU time (user + system, clock ticks) is read from /proc:
# psql runs on the server's machine here.
timing_script() {
    local run step label file
    echo 'SET client_min_messages = warning;'
    echo 'CREATE TABLE bench_times (step text, run int, seconds float8, cpu_seconds float8);'
    echo 'SELECT pg_backend_pid() AS backend_pid \gset'
    echo '\setenv BENCH_PID :backend_pid'
    for run in $(seq 0 "$ROUNDS"); do
        for step in "${STEPS[@]}"; do
            IFS='|' read -r label file _ <<<"$step"
            cat <<EOF
\\set ticks0 \`awk '{print \$14 + \$15}' /proc/\$BENCH_PID/stat\`
SELECT clock_timestamp() AS t0 \\gset
\\i $BENCH_DIR/rfm/$file.sql
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS seconds \\gset
\\set ticks1 \`awk '{print \$14 + \$15}' /proc/\$BENCH_PID/stat\`
INSERT INTO bench_times VALUES ('$label', $run, :seconds, (:ticks1 - :ticks0) / $(getconf CLK_TCK)::float8);
EOF
        done
    done
}

log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps"
timing_script | psql_quiet -v as_of="$AS_OF" -f -

echo
echo "RFM benchmark, size $size ($customers customers), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
bench_machine
echo "bench/generate.sql took ${gen_seconds} s"
descriptions=$(bench_descriptions)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v descriptions="$descriptions" -v rounds="$ROUNDS" \
    -f "$BENCH_DIR/rfm/report.sql"
