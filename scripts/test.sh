#!/usr/bin/env bash
# The test command: install what is missing, build, start a throwaway
# cluster, run pg_regress (sql/ + expected/) and the pgTAP suites (test/).
# Exits non-zero on any failure.
source "$(dirname "$0")/common.sh"

SEGMENT_PACKAGES+=("postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl)
ensure_packages
build_and_install
start_cluster

failed=0

log "pg_regress (sql/, expected/)"
rm -rf "$SEGMENT_ROOT/results" "$SEGMENT_ROOT/regression.diffs" "$SEGMENT_ROOT/regression.out"
if ! make -C "$SEGMENT_ROOT" -s PG_CONFIG="$PG_BIN/pg_config" installcheck; then
    [ -f "$SEGMENT_ROOT/regression.diffs" ] && cat "$SEGMENT_ROOT/regression.diffs"
    failed=1
fi

log "pgTAP (test/, pg_prove)"
psql_quiet -c 'CREATE DATABASE segment_tap'
psql_quiet -d segment_tap -c 'CREATE EXTENSION pgtap; CREATE EXTENSION segment;'
if ! SEGMENT_SHARED_DATA="$SEGMENT_ROOT/../shared/data" \
    pg_prove --ext .sql -d segment_tap -r "$SEGMENT_ROOT/test/"; then
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    log "FAILED (server log: see above; cluster is removed on exit)"
    tail -n 30 "$SEGMENT_TMP/server.log" >&2 || true
    exit 1
fi
log "all tests passed"
