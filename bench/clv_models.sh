#!/usr/bin/env bash
# The purchase-model fit benchmark, on the generated shop of
# bench/clv/generate.sql: bgnbd_fit, pareto_nbd_fit and mbgnbd_fit over every
# customer's summary, each of the other two as a ratio to the BG/NBD fit of
# the same run (medians over rounds, on the same throwaway cluster).
#
#   bench/clv_models.sh small     10k customers (seconds)
#   bench/clv_models.sh large     1M customers (minutes)
#   bench/clv_models.sh 200000    any number of customers (~10 orders each)
#
# One untimed warm-up round, then ROUNDS (default 3) timed rounds, the fits
# interleaved.  The summaries are computed once, before the rounds.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

AS_OF='2026-01-01 00:00:00+00'     # the generated shop ends here

size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)
generator=${SEGMENT_BENCH_GENERATOR:-$BENCH_DIR/clv/generate.sql}

bench_cluster

log "generating the shop: $customers customers ($generator)"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -v customers="$customers" -f "$generator" >/dev/null
log "summarising every customer (clv_summary)"
psql_quiet -v as_of="$AS_OF" -c 'SET client_min_messages = warning' \
    -f "$BENCH_DIR/clv_models/summary.sql"

# The timed steps: label|query file|description.
STEPS=(
    "bg|fit_bgnbd|(bg) bgnbd_fit over every customer"
    "pn|fit_pareto|(pn) pareto_nbd_fit over every customer"
    "mbg|fit_mbgnbd|(mbg) mbgnbd_fit over every customer"
)

log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps"
bench_timing_script clv_models | psql_quiet -v as_of="$AS_OF" -f -

bench_report "Purchase-model fit benchmark" clv_models
