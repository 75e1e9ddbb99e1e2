#!/usr/bin/env bash
# The pg_regress suite (sql/, expected/) against a server run under Valgrind
# memcheck: a throwaway cluster as scripts/test.sh starts, restarted with
# its postgres under valgrind.  Exits non-zero when Valgrind reports an error
# with a frame in the extension (segment.so or its sources); errors wholly
# inside PostgreSQL or libc are counted and shown as notes only.  Slow: some
# 20-50 times the plain run.
#
#   ./scripts/memcheck.sh                 the whole pg_regress suite
#   ./scripts/memcheck.sh rfm kmeans      some tests (make memcheck REGRESS="rfm kmeans")
#   VALGRIND_SUPP=/path/postgresql/src/tools/valgrind.supp ./scripts/memcheck.sh
#                                         PostgreSQL's suppressions, added to ours
#   MEMCHECK_TAP="test/catalog.sql" ./scripts/memcheck.sh rfm
#                                         pgTAP files too (pg_prove), after pg_regress
#
# Debian's server is not built with USE_VALGRIND: palloc'd memory is not
# tracked chunk by chunk, so reads past a palloc'd size inside its memory
# context are not seen; invalid reads and writes of malloc'd or unmapped
# memory, uses of uninitialised values and uninitialised bytes sent to the
# client (or written to files) are.
source "$(dirname "$0")/common.sh"

SEGMENT_PACKAGES+=(valgrind)
[ -z "${MEMCHECK_TAP:-}" ] ||
    SEGMENT_PACKAGES+=("postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl)
ensure_packages
build_and_install
start_cluster

tests=("$@")
[ ${#tests[@]} -gt 0 ] || [ -z "${REGRESS:-}" ] || read -r -a tests <<<"$REGRESS"

# Valgrind wraps the real server binary: pg_ctl -p runs this script instead.
# No --error-exitcode: a backend exiting with it looks like a crash to the
# postmaster, which then restarts every process; the logs are read instead.
# No JIT: valgrind cannot name the frames of generated code, and loading
# llvmjit.so brings ld.so's own reports.
VG_DIR=$SEGMENT_TMP/valgrind
mkdir -p "$VG_DIR"
supp=(--suppressions="$SEGMENT_ROOT/scripts/valgrind.supp")
[ -n "${VALGRIND_SUPP:-}" ] && supp+=(--suppressions="$VALGRIND_SUPP")
cat >"$SEGMENT_TMP/postgres-valgrind" <<WRAPPER
#!/bin/sh
exec valgrind --quiet --leak-check=no --gen-suppressions=all ${supp[*]} \\
    --trace-children=yes --track-origins=yes --read-var-info=yes --num-callers=30 \\
    --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \\
    --log-file=$VG_DIR/%p.log "$PG_BIN/postgres" "\$@" -c jit=off
WRAPPER
chmod 755 "$SEGMENT_TMP/postgres-valgrind"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$VG_DIR"
log "restarting the server under valgrind"
run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/data" -m fast -w -s stop
run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/data" -l "$SEGMENT_TMP/data.log" \
    -p "$SEGMENT_TMP/postgres-valgrind" -t 600 -w -s start

start=$(date +%s)
log "pg_regress under valgrind: ${tests[*]:-all tests}"
rm -rf "$SEGMENT_ROOT/results" "$SEGMENT_ROOT/regression.diffs" "$SEGMENT_ROOT/regression.out"
regress_rc=0
make -C "$SEGMENT_ROOT" -s PG_CONFIG="$PG_BIN/pg_config" installcheck \
    ${tests[0]:+REGRESS="${tests[*]}"} 2>&1 | tee "$SEGMENT_TMP/regress.out" || regress_rc=$?
tap_rc=0
if [ -n "${MEMCHECK_TAP:-}" ]; then
    log "pgTAP under valgrind: $MEMCHECK_TAP"
    psql_quiet -c 'CREATE DATABASE segment_tap'
    psql_quiet -d segment_tap -c 'CREATE EXTENSION pgtap; CREATE EXTENSION segment;'
    (cd "$SEGMENT_ROOT" && pg_prove -d segment_tap $MEMCHECK_TAP) || tap_rc=$?
fi
run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/data" -m fast -t 600 -w -s stop || true
elapsed=$(( $(date +%s) - start ))

# The error blocks that are the extension's: a frame of segment.so or of one
# of our source files (the build has debugging information) among the first
# frames of the stack where the error happens (our code, or a function it
# called directly) or of an uninitialised value's allocation (our code asked
# for that memory).  Deeper down, our frames only say that PostgreSQL's own
# code ran on our behalf (say, the catalog work of a CREATE TABLE run through
# SPI, whose invalidation messages valgrind reports in any backend).
ours=$(cd "$SEGMENT_ROOT/src" && ls *.c *.h | sed 's/\./\\./g' | paste -sd '|')
keep="$SEGMENT_ROOT/results/valgrind"
mkdir -p "$keep"
cp "$VG_DIR"/*.log "$keep/" 2>/dev/null || true
cp "$SEGMENT_TMP/data.log" "$keep/server.log"
awk -v ours="[( /](${ours}):[0-9]+\\\\)|segment\\\\.so" -v out="$keep/segment-errors.txt" '
    /VALGRINDERROR-BEGIN/ { inblock = 1; block = ""; primary = ""; origin = ""; part = 0; depth = 0; next }
    /VALGRINDERROR-END/   { inblock = 0; total++
                            if (primary ~ ours || origin ~ ours) { seg++; print "---- " FILENAME "\n" block > out }
                            next }
    inblock { sub(/^==[0-9]+== ?/, ""); block = block $0 "\n"
              if ($0 ~ /^ *(Uninitialised value was created|Address 0x)/) { part = 1; depth = 0; next }
              if (++depth > 7) next
              if (part == 0) primary = primary $0 "\n"
              else origin = origin $0 "\n" }
    END { printf "%d %d\n", total + 0, seg + 0 }' "$keep"/[0-9]*.log >"$SEGMENT_TMP/counts" 2>/dev/null ||
    echo "0 0" >"$SEGMENT_TMP/counts"
read -r total seg <"$SEGMENT_TMP/counts"
logs=$(ls "$keep"/[0-9]*.log 2>/dev/null | wc -l)

echo "memcheck: ${tests[*]:-all pg_regress tests}${MEMCHECK_TAP:+ + $MEMCHECK_TAP} in ${elapsed} s under valgrind ($logs processes);" \
     "valgrind errors: $seg in the extension, $((total - seg)) elsewhere; logs in results/valgrind/"
if [ "$seg" -gt 0 ]; then
    cat "$keep/segment-errors.txt"
fi
rc=0
# Results that differ under valgrind are shown but do not fail the run: the
# tests that stop runaway calls with statement_timeout (security_inputs)
# time out on correct calls too at valgrind's speed; scripts/test.sh judges
# the results, this script the memory.
if [ "$regress_rc" -ne 0 ]; then
    log "note: pg_regress results differ under valgrind (statement_timeout at valgrind's speed; regression.diffs):"
    [ -f "$SEGMENT_ROOT/regression.diffs" ] && head -n 20 "$SEGMENT_ROOT/regression.diffs"
fi
if [ "$tap_rc" -ne 0 ]; then
    log "pgTAP failed under valgrind (above)"
    rc=1
fi
if [ "$seg" -gt 0 ]; then
    log "FAILED: $seg valgrind errors with a frame in the extension (above; results/valgrind/segment-errors.txt)"
    rc=1
fi
[ "$rc" -eq 0 ] || SEGMENT_REPORTED_FAILURE=1
exit "$rc"
