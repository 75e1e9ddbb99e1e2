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
# The CDNOW sample of the BG/NBD papers, for test/clv_cdnow.sql (which skips
# without it: a user's clone has no ../shared/data).
CDNOW="$SEGMENT_ROOT/../shared/data/cdnow"
if [ -f "$CDNOW/CDNOW_sample.txt" ] && [ -f "$CDNOW/cdnow_customers_summary_with_transactions.csv" ]; then
    log "loading the CDNOW sample from $CDNOW"
    psql_quiet -d segment_tap <<SQL
CREATE TABLE cdnow_summary (id integer, x integer, t_x float8, t_cal float8, zbar float8);
\\copy cdnow_summary FROM '$CDNOW/cdnow_customers_summary_with_transactions.csv' WITH (FORMAT csv, HEADER)
CREATE TEMP TABLE cdnow_raw (line text);
\\copy cdnow_raw FROM '$CDNOW/CDNOW_sample.txt'
CREATE TABLE cdnow_orders AS
SELECT f[2]::integer AS customer_id, to_date(f[3], 'YYYYMMDD') AS ordered_on,
       f[4]::integer AS cds, f[5]::numeric AS amount
  FROM (SELECT regexp_split_to_array(btrim(line, E' \\r'), '\\s+') AS f FROM cdnow_raw) AS s;
SQL
fi
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
