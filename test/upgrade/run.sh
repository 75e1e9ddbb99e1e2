# The update from 0.1 (issue 15): a database made with 0.1's install script
# and API (test/upgrade/setup_0.1.psql) goes through ALTER EXTENSION segment
# UPDATE TO '0.2'; then
#   - its catalog (test/upgrade/catalog.sql: every function, aggregate, type,
#     table, column, constraint, index, trigger, view, comment, privilege and
#     extension member) equals a fresh 0.2's (one test);
#   - test/dump/roundtrip.sql finds every configuration table and profile as
#     0.1 left them and a refresh that changes no segment;
#   - test/upgrade/after.sql calls 0.2's API on what 0.1 stored.
#
# Sourced by scripts/test.sh after the dump test: uses its PG_BIN,
# SEGMENT_ROOT, SEGMENT_TMP, log, psql_quiet and prove_suite, and adds to its
# counts.  A step that fails before pg_prove counts as one failure.

upgrade_dir="$SEGMENT_TMP/upgrade"
log "upgrade: a database made with 0.1, ALTER EXTENSION segment UPDATE TO '0.2' (test/upgrade/)"
mkdir -p "$upgrade_dir"
upgrade_step=""
if ! { upgrade_step="setup with 0.1 (test/upgrade/setup_0.1.psql)"
       psql_quiet -c 'CREATE DATABASE segment_upgrade' &&
       psql_quiet -d segment_upgrade -f "$SEGMENT_ROOT/test/upgrade/setup_0.1.psql" >"$upgrade_dir/setup.out" 2>&1 &&
       upgrade_step="ALTER EXTENSION segment UPDATE TO '0.2'" &&
       psql_quiet -d segment_upgrade -c "ALTER EXTENSION segment UPDATE TO '0.2'" >"$upgrade_dir/update.out" 2>&1 &&
       # 0.2 added refreshes.cut_ranks, NULL in the refreshes 0.1 logged: the
       # snapshot of 0.1's rows gets that empty last field too
       psql_quiet -d segment_upgrade -c "UPDATE dump_check.snapshot SET row = pg_catalog.left(row, -1) || ',)'
                                           WHERE tab = 'segment.refreshes'" >>"$upgrade_dir/update.out" 2>&1 &&
       upgrade_step="a fresh 0.2 to compare with" &&
       psql_quiet -c 'CREATE DATABASE segment_upgrade_fresh' &&
       psql_quiet -d segment_upgrade_fresh -c 'CREATE EXTENSION segment' >"$upgrade_dir/fresh.out" 2>&1 &&
       psql_quiet -d segment_upgrade -c 'CREATE EXTENSION pgtap'; }; then
    log "upgrade: $upgrade_step failed:"
    tail -n 20 "$upgrade_dir"/*.out >&2
    failed+=("upgrade (test/upgrade/): $upgrade_step")
    tests_failed=$((tests_failed + 1))
else
    psql_quiet -d segment_upgrade -f "$SEGMENT_ROOT/test/upgrade/catalog.sql" >"$upgrade_dir/updated.catalog"
    psql_quiet -d segment_upgrade_fresh -f "$SEGMENT_ROOT/test/upgrade/catalog.sql" >"$upgrade_dir/fresh.catalog"
    if [ -s "$upgrade_dir/fresh.catalog" ] &&
       diff "$upgrade_dir/updated.catalog" "$upgrade_dir/fresh.catalog" >"$upgrade_dir/catalog.diff"; then
        tests_passed=$((tests_passed + 1))
        log "upgrade: the updated catalog equals a fresh 0.2's ($(wc -l <"$upgrade_dir/fresh.catalog") facts)"
    else
        log "upgrade: the updated catalog differs from a fresh 0.2's (< updated, > fresh):"
        head -n 40 "$upgrade_dir/catalog.diff" >&2
        tests_failed=$((tests_failed + 1))
        failed+=("upgrade (test/upgrade/): catalog after the update")
    fi
    prove_suite "upgrade (test/upgrade/)" "$upgrade_dir/prove.out" \
        -d segment_upgrade "$SEGMENT_ROOT"/test/dump/roundtrip.sql "$SEGMENT_ROOT"/test/upgrade/after.sql
fi
