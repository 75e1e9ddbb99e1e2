#!/usr/bin/env bash
# The lifetime-value benchmark, on the generated shop of bench/clv/generate.sql:
#   share     segment.refresh(mode => 'full') with lifetime value (clv => true)
#             against the same refresh without it, on the same orders, both
#             without change capture (the same work but lifetime value): the CLV part
#             (clv_summary, both fits, predictions, the high-value cut) is
#             their difference, as a share of the refresh with it;
#   fits      bgnbd_fit and gamma_gamma_fit over every customer's summary;
#   predict   p_alive, expected purchases and 12-month CLV per customer into
#             a table, in rows per second.
# Every figure is a median over rounds, and the share a ratio of two times
# measured in the same run, on the same throwaway cluster.
#
#   bench/clv.sh small     10k customers, ~100k orders (seconds)
#   bench/clv.sh large     1M customers, ~10M orders (minutes)
#   bench/clv.sh 200000    any number of customers (~10 orders each)
#   SEGMENT_BENCH_GENERATOR=bench/generate.sql bench/clv.sh large
#                          on the pipeline's shop instead (orders stored as
#                          they were placed, customers interleaved)
#
# The shop is vacuumed and checkpointed, then one untimed warm-up round (its
# writes flushed by a checkpoint), then ROUNDS (default 3) timed rounds, the
# steps interleaved; the report gives medians.  After each refresh the profile is
# vacuumed (untimed), as autovacuum would; autovacuum itself is off so that it
# does not run in the middle of a timed query.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

AS_OF='2026-01-01 00:00:00+00'     # the generated shop ends here

size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

# The shop of this benchmark: orders drawn from the BG/NBD and Gamma-Gamma
# processes, so that the fits are those of a shop the models describe.
generator=${SEGMENT_BENCH_GENERATOR:-$BENCH_DIR/clv/generate.sql}

bench_cluster

log "generating the shop: $customers customers ($generator)"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -v customers="$customers" -f "$generator" >/dev/null
psql_quiet <<'SQL'
SELECT segment.configure(orders => 'orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount',
                         discount => 'discount',
                         customers => 'customers', customers_key => 'customer_id',
                         segmentation => 'base');
SELECT segment.configure(orders => 'orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount',
                         discount => 'discount',
                         customers => 'customers', customers_key => 'customer_id',
                         segmentation => 'clv', clv => true, clv_months => 12,
                         clv_discount_rate => 0.01);
-- Without change capture: a full refresh of a segmentation with capture also
-- stores its figures for the next incremental one (with lifetime value, its
-- summaries too), work that is not lifetime value's; left out of both, the
-- difference of the two refreshes is lifetime value alone.
SELECT segment_internal.drop_capture('base');
SELECT segment_internal.drop_capture('clv');
SQL
# As the other benchmarks: the generated rows vacuumed (their hint bits set,
# the visibility map made) and flushed by a checkpoint before any timing, so
# that the rounds do not share the machine with the writing out of the
# gigabyte just generated.
psql_quiet -c 'VACUUM ANALYZE' -c 'CHECKPOINT'

# The timed steps: label|query file|description.  Every second round runs
# them in reverse order, so that the refreshes' places in a round cannot
# bias the share (a run with (c) first gave 0.195 where the run before,
# (b) first, gave 0.251; alternating within one run showed no consistent
# difference, so that was the machine, but the order no longer matters).
BENCH_ALTERNATE=1
# Each step in a session of its own, as a scheduled refresh runs (pg_cron
# starts a backend per job): sharing one backend with the SQL steps (s), (f)
# and (p), the refresh without lifetime value ran 0.8 s faster than in a
# session of its own and the one with it did not, which a scheduled refresh
# never sees (docs/performance.md, lifetime value in a refresh).
BENCH_RECONNECT=${BENCH_RECONNECT-1}   # BENCH_RECONNECT= for one session
STEPS=(
    "b|refresh_base|(b) segment.refresh(mode => 'full') without lifetime value"
    "c|refresh_clv|(c) segment.refresh(mode => 'full') with lifetime value"
    "s|summary|(s) clv_summary per customer, alone (own pass over the orders)"
    "f1|fit_bgnbd|(f1) bgnbd_fit over every customer"
    "f2|fit_gamma|(f2) gamma_gamma_fit over every customer"
    "p|predict|(p) p_alive, expected purchases, 12-month CLV per customer"
)

# The warm-up round's first refreshes write every profile row (later ones
# write none): flushed before the timed rounds, not in the middle of the first.
bench_after_warmup() {
    echo 'CHECKPOINT;'
}

# Keep the profiles as autovacuum would, outside the timing.
bench_after_step() {
    case $1 in
        b) echo 'VACUUM (ANALYZE) segment.profile_base;' ;;
        c) echo 'VACUUM (ANALYZE) segment.profile_clv;' ;;
    esac
}

log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps"
bench_timing_script clv | psql_quiet -v as_of="$AS_OF" -f -

bench_report "Lifetime-value benchmark" clv
