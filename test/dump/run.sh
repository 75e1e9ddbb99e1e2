# Dump and restore (issue 12, finding 8): a configured, refreshed database
# (test/dump/setup.psql) goes through pg_dump -Fc and pg_restore into a new
# database, where test/dump/*.sql (pgTAP) compare every configuration table
# and profile with what the source had, and refresh again.
#
# Sourced by scripts/test.sh after the pgTAP suites: uses its PG_BIN, PGHOST,
# PGPORT, SEGMENT_ROOT, SEGMENT_TMP, log, psql_quiet and prove_suite, and adds
# to its counts.  A step that fails before pg_prove counts as one failure.

dump_dir="$SEGMENT_TMP/dump"
log "dump/restore: a configured, refreshed database through pg_dump -Fc and pg_restore (test/dump/)"
mkdir -p "$dump_dir"
dump_step=""
if ! { dump_step="setup (test/dump/setup.psql)"
       psql_quiet -c 'CREATE DATABASE segment_dump_source' &&
       psql_quiet -d segment_dump_source -f "$SEGMENT_ROOT/test/dump/setup.psql" >"$dump_dir/setup.out" 2>&1 &&
       dump_step="pg_dump -Fc" &&
       "$PG_BIN/pg_dump" -Fc -d segment_dump_source -f "$dump_dir/source.dump" 2>"$dump_dir/pg_dump.err" &&
       dump_step="pg_restore into a new database" &&
       psql_quiet -c 'CREATE DATABASE segment_dump_restored' &&
       "$PG_BIN/pg_restore" --exit-on-error -d segment_dump_restored "$dump_dir/source.dump" \
           2>"$dump_dir/pg_restore.err" &&
       psql_quiet -d segment_dump_restored -c 'CREATE EXTENSION pgtap'; }; then
    log "dump/restore: $dump_step failed:"
    cat "$dump_dir"/setup.out "$dump_dir"/*.err 2>/dev/null | tail -n 20 >&2
    failed+=("dump/restore (test/dump/): $dump_step")
    tests_failed=$((tests_failed + 1))
else
    prove_suite "dump/restore (test/dump/)" "$dump_dir/prove.out" \
        -d segment_dump_restored "$SEGMENT_ROOT"/test/dump/*.sql
fi
