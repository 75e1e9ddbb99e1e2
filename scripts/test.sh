#!/usr/bin/env bash
# The test command: install what is missing, build, start a throwaway
# cluster, run pg_regress (sql/ + expected/) and the pgTAP suites (test/).
# Exits non-zero on any failure.
source "$(dirname "$0")/common.sh"

SEGMENT_PACKAGES+=("postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl)
ensure_packages
build_and_install
start_cluster

failed=()

log "pg_regress (sql/, expected/)"
rm -rf "$SEGMENT_ROOT/results" "$SEGMENT_ROOT/regression.diffs" "$SEGMENT_ROOT/regression.out"
if ! make -C "$SEGMENT_ROOT" -s PG_CONFIG="$PG_BIN/pg_config" installcheck; then
    [ -f "$SEGMENT_ROOT/regression.diffs" ] && cat "$SEGMENT_ROOT/regression.diffs"
    failed+=("pg_regress (the differences are above)")
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
else
    log "CDNOW sample not found ($CDNOW): test/clv_cdnow.sql skips its tests"
fi
log "(test/pipeline_cron.sql waits up to a minute for pg_cron to run a job)"
if ! pg_prove -d segment_tap "$SEGMENT_ROOT"/test/*.sql; then
    failed+=("pgTAP (test/)")
fi

# Three more servers on loopback: a coordinator and two shards, each with
# pg_stat_statements, so that the tests can see which statements postgres_fdw
# sent to the shards and which ones a refresh ran on the coordinator.
start_sharded_server() {
    local name=$1 port=$2
    start_server "$name" "$port" 127.0.0.1
    cat >>"$SEGMENT_TMP/$name/postgresql.conf" <<EOF
shared_preload_libraries = 'pg_cron,pg_stat_statements'
pg_stat_statements.track = 'all'
EOF
    run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/$name" -l "$SEGMENT_TMP/$name.log" \
        -w -s restart
}

log "sharded: a coordinator and two shards over postgres_fdw (test/sharded/)"
shard_ports=()
for shard in shard1 shard2; do
    port=$(free_port)
    start_sharded_server "$shard" "$port"
    shard_ports+=("$port")
    psql_quiet -p "$port" -c 'CREATE DATABASE segment_shard'
    psql_quiet -p "$port" -d segment_shard -f "$SEGMENT_ROOT/test/sharded/shard.psql"
done
coordinator_port=$(free_port)
start_sharded_server coordinator "$coordinator_port"
psql_quiet -p "$coordinator_port" -c 'CREATE DATABASE segment_sharded'
psql_quiet -p "$coordinator_port" -d segment_sharded \
    -c 'CREATE EXTENSION pgtap; CREATE EXTENSION segment; CREATE EXTENSION pg_stat_statements;'
psql_quiet -p "$coordinator_port" -d segment_sharded \
    -v shard1_port="${shard_ports[0]}" -v shard2_port="${shard_ports[1]}" \
    -f "$SEGMENT_ROOT/test/sharded/setup.psql"
if ! pg_prove -p "$coordinator_port" -d segment_sharded "$SEGMENT_ROOT"/test/sharded/*.sql; then
    failed+=("sharded (test/sharded/)")
fi

if [ ${#failed[@]} -ne 0 ]; then
    SEGMENT_REPORTED_FAILURE=1
    log "FAILED: $(IFS=';'; echo "${failed[*]}" | sed 's/;/; /g')"
    exit 1
fi
log "all tests passed"
