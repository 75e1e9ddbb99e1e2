#!/usr/bin/env bash
# The test command: install what is missing, build, start a throwaway
# cluster, run pg_regress (sql/ + expected/), the pgTAP suites (test/), a
# dump and restore (test/dump/), the update from 0.1 (test/upgrade/), the demo's scripts (demo/), the SQL examples
# of the docs (scripts/doc_examples.sh), the sharded suite over postgres_fdw
# (test/sharded/), the Citus suite (test/citus/) and a check that the set-up
# left postgresql-common as it was.
# Exits non-zero on any failure; the last line counts the tests: "PG 15:
# 438 passed, 0 failed, 0 skipped" (skipped: pgTAP SKIP and TODO tests).
#
#   ./scripts/test.sh            the PostgreSQL this machine's Debian ships
#   ./scripts/test.sh --pg 17    in a fresh Debian root that ships 17 (root only)
SEGMENT_COMMAND=test     # common.sh takes --pg MAJOR for it
source "$(dirname "$0")/common.sh"

SEGMENT_PACKAGES+=("postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl)
ensure_packages
build_and_install
start_cluster

failed=()
suites_skipped=()
tests_passed=0
tests_failed=0
tests_skipped=0

# Add a pg_regress run's counts ("All 30 tests passed." or "2 of 30 tests
# failed.", the same words on every major, on stderr since 16) to the totals.
count_regress() {
    local out=$1 n m
    n=$(sed -n 's/.*All \([0-9][0-9]*\) tests passed.*/\1/p' "$out" | tail -n 1)
    if [ -n "$n" ]; then
        tests_passed=$((tests_passed + n))
        return
    fi
    read -r m n < <(sed -n 's/.* \([0-9][0-9]*\) of \([0-9][0-9]*\) tests failed.*/\1 \2/p' "$out" | tail -n 1) || true
    if [ -n "${n:-}" ]; then
        tests_passed=$((tests_passed + n - m))
        tests_failed=$((tests_failed + m))
    else
        tests_failed=$((tests_failed + 1))    # it did not get as far as its summary
    fi
}

# Add a pg_prove run's counts to the totals: passed are the assertions run
# ("Tests=345") less those that failed ("Tests: 8 Failed: 1" per file in the
# summary report) and those skipped ("ok 3 # SKIP ...") or known to fail
# ("not ok 4 - ... # TODO ...", a TODO test), both shown by --directives; failed are the planned ones that did not pass ("Failed
# 8/15 subtests" counts those never run too).  A run that failed without
# saying which counts as one failure.
count_prove() {
    local out=$1 rc=$2 total ran_failed bad skipped
    total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$out" | tail -n 1)
    ran_failed=$(sed -n 's/.*(Wstat: .* Tests: [0-9]* Failed: \([0-9][0-9]*\)).*/\1/p' "$out" |
                 awk '{ s += $1 } END { print s + 0 }')
    bad=$(sed -n 's/^Failed \([0-9][0-9]*\)\/[0-9][0-9]* subtests.*/\1/p' "$out" |
          awk '{ s += $1 } END { print s + 0 }')
    [ "$bad" -ge "$ran_failed" ] || bad=$ran_failed
    [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
    skipped=$(grep -c -E '^(ok [0-9]+ # (SKIP|skip)|not ok [0-9]+ .*# TODO)' "$out" || true)
    tests_passed=$((tests_passed + ${total:-0} - ran_failed - skipped))
    tests_failed=$((tests_failed + bad))
    tests_skipped=$((tests_skipped + skipped))
}

log "pg_regress (sql/, expected/)"
rm -rf "$SEGMENT_ROOT/results" "$SEGMENT_ROOT/regression.diffs" "$SEGMENT_ROOT/regression.out"
if ! make -C "$SEGMENT_ROOT" -s PG_CONFIG="$PG_BIN/pg_config" installcheck 2>&1 | tee "$SEGMENT_TMP/regress.out"; then
    [ -f "$SEGMENT_ROOT/regression.diffs" ] && cat "$SEGMENT_ROOT/regression.diffs"
    failed+=("pg_regress (the differences are above)")
fi
count_regress "$SEGMENT_TMP/regress.out"

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
# prove_suite NAME OUTPUT PG_PROVE_ARGS...: run pg_prove, show and count.
prove_suite() {
    local name=$1 out=$2 rc=0
    shift 2
    pg_prove --directives "$@" 2>&1 | tee "$out" || rc=$?
    count_prove "$out" "$rc"
    [ "$rc" -eq 0 ] || failed+=("$name")
}
prove_suite "pgTAP (test/)" "$SEGMENT_TMP/prove.out" -d segment_tap "$SEGMENT_ROOT"/test/*.sql
# pg_dump -Fc and pg_restore of a configured database, then pgTAP (test/dump/).
source "$SEGMENT_ROOT/test/dump/run.sh"
# ALTER EXTENSION segment UPDATE from 0.1 (test/upgrade/).
source "$SEGMENT_ROOT/test/upgrade/run.sh"

# The demo's own scripts, as ./scripts/demo.sh runs them: a change that breaks
# the demo fails here (one test).
log "demo (demo/shop.sql, demo/report.sql)"
psql_quiet -c 'CREATE DATABASE segment_demo'
mkdir -p "$SEGMENT_ROOT/results/report"
demo_report=$SEGMENT_ROOT/results/report/report.html
rm -f "$demo_report"
if psql_quiet -d segment_demo -c 'CREATE EXTENSION segment' &&
   psql_quiet -d segment_demo -f "$SEGMENT_ROOT/demo/shop.sql" >/dev/null &&
   psql_quiet -d segment_demo -v report_file="$demo_report" \
       -f "$SEGMENT_ROOT/demo/report.sql" >"$SEGMENT_TMP/demo.out" 2>&1; then
    tests_passed=$((tests_passed + 1))
    log "demo: ok ($(wc -l <"$SEGMENT_TMP/demo.out") lines of report)"
else
    tail -n 20 "$SEGMENT_TMP/demo.out" >&2
    tests_failed=$((tests_failed + 1))
    failed+=("demo (demo/report.sql)")
fi

# Every SQL example of README.md and docs/*.md, on the demo shop
# (scripts/doc_examples.sh, docs/testing.md): a change that breaks an example
# fails here (one test).
log "docs (the SQL examples of README.md and docs/*.md)"
source "$SEGMENT_ROOT/scripts/doc_examples.sh"
if doc_examples_run; then
    tests_passed=$((tests_passed + 1))
    log "docs: ok ($DOC_EXAMPLES_COUNT examples)"
else
    tests_failed=$((tests_failed + 1))
    failed+=("docs (the example named above)")
fi

# The demo's segment report in headless Chromium (scripts/browser.sh): its
# DOM has the bars, cells and rows the database says (one test); the
# screenshot and PDF stay in results/report/.  Debian's chromium package is
# installed here, not with the others: where it cannot be, the suite says so
# loudly and goes on (as for Citus).
log "browser: the demo's segment report in headless Chromium"
source "$SEGMENT_ROOT/scripts/browser.sh"
if ! browser_install; then
    suites_skipped+=("browser (the segment report in Chromium): Debian's chromium package could not be installed")
elif [ -s "$demo_report" ] && browser_check_report segment_demo "$demo_report"; then
    tests_passed=$((tests_passed + 1))
else
    tests_failed=$((tests_failed + 1))
    failed+=("browser (the segment report in Chromium; results/report/)")
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
prove_suite "sharded (test/sharded/)" "$SEGMENT_TMP/prove-sharded.out" \
    -p "$coordinator_port" -d segment_sharded "$SEGMENT_ROOT"/test/sharded/*.sql

# Citus: a coordinator and two workers (test/citus/), with Citus installed or
# built from ../shared/vendor; said loudly when it cannot run.
source "$SEGMENT_ROOT/scripts/citus.sh"
citus_rc=0
citus_install || citus_rc=$?
if [ "$citus_rc" -eq 0 ]; then
    log "Citus: a coordinator and two workers (test/citus/)"
    start_citus_cluster segment_citus
    psql_quiet -p "$CITUS_COORDINATOR_PORT" -d segment_citus \
        -c 'CREATE EXTENSION pgtap; CREATE EXTENSION segment;'
    psql_quiet -p "$CITUS_COORDINATOR_PORT" -d segment_citus -f "$SEGMENT_ROOT/test/citus/setup.psql" >/dev/null
    prove_suite "Citus (test/citus/)" "$SEGMENT_TMP/prove-citus.out" \
        -p "$CITUS_COORDINATOR_PORT" -d segment_citus "$SEGMENT_ROOT"/test/citus/*.sql
elif [ "$citus_rc" -eq 1 ]; then
    suites_skipped+=("Citus (test/citus/): $CITUS_SKIPPED")
else
    failed+=("Citus (the build failed; its log is named above)")
fi

# The set-up leaves the user's PostgreSQL packages behaving as before: the
# setting that kept postgresql-common from creating a "main" cluster while
# the packages were installed is gone (one test; it matters most in a fresh
# Debian root, where the packages were installed by this run).
if [ -e "$SEGMENT_NO_MAIN" ]; then
    log "set-up: $SEGMENT_NO_MAIN is still there: a PostgreSQL installed later would get no main cluster"
    tests_failed=$((tests_failed + 1))
    failed+=("set-up (postgresql-common's createcluster.d)")
else
    tests_passed=$((tests_passed + 1))
    log "set-up: ok (postgresql-common's createcluster.d as it was)"
fi

for skipped in "${suites_skipped[@]}"; do
    log "WARNING: SKIPPED the suite $skipped"
done
if [ ${#failed[@]} -ne 0 ]; then
    SEGMENT_REPORTED_FAILURE=1
    log "FAILED: $(IFS=';'; echo "${failed[*]}" | sed 's/;/; /g')"
    [ "$tests_failed" -gt 0 ] || tests_failed=1
else
    log "all tests passed"
fi
echo "PG $PG_MAJOR: $tests_passed passed, $tests_failed failed, $tests_skipped skipped"
[ ${#failed[@]} -eq 0 ]
