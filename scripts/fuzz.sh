#!/usr/bin/env bash
# Bounded SQL-level fuzz run over the extension's C functions (fuzz/fuzz.py):
# states (float8[]) called directly and bound into aggregates of the caller's
# own, model texts, composites.  A throwaway cluster as scripts/test.sh
# starts; crashed backends are restarted, hung ones killed.  Prints a summary
# per function, writes reproducers to fuzz/findings.sql (FUZZ_FINDINGS) and
# exits non-zero on any crash, hang, statement timeout, XX000 or state that
# shows uninitialised memory.
#
#   ./scripts/fuzz.sh                         5000 inputs or 150 s, seed 1
#   FUZZ_SEED=7 FUZZ_COUNT=50000 FUZZ_TIME=1800 ./scripts/fuzz.sh
#   FUZZ_ONLY='^bgnbd' ./scripts/fuzz.sh      only the functions matching
#   FUZZ_TIMEOUT=2                            statement_timeout, seconds
#   FUZZ_REDUCE_TIME=60                       seconds spent shortening reproducers
source "$(dirname "$0")/common.sh"

SEGMENT_PACKAGES+=(python3 python3-psycopg2)
ensure_packages
build_and_install
start_cluster
psql_quiet -c 'CREATE DATABASE segment_fuzz'
psql_quiet -d segment_fuzz -c 'CREATE EXTENSION segment'

rc=0
/usr/bin/python3 "$SEGMENT_ROOT/fuzz/fuzz.py" \
    --dsn "host=$PGHOST port=$PGPORT user=postgres dbname=segment_fuzz" \
    --seed "${FUZZ_SEED:-1}" --count "${FUZZ_COUNT:-5000}" --time-limit "${FUZZ_TIME:-150}" \
    --timeout "${FUZZ_TIMEOUT:-2}" --reduce-time "${FUZZ_REDUCE_TIME:-60}" --only "${FUZZ_ONLY:-}" \
    --server-log "$SEGMENT_TMP/data.log" \
    --findings "${FUZZ_FINDINGS:-$SEGMENT_ROOT/fuzz/findings.sql}" || rc=$?
if [ "$rc" -ne 0 ]; then
    SEGMENT_REPORTED_FAILURE=1
    log "FAILED: crashes, hangs, timeouts, internal errors or leaks (reproducers in ${FUZZ_FINDINGS:-fuzz/findings.sql})"
fi
exit "$rc"
