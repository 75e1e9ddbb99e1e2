# Shared by the benchmarks (bench/*.sh): the size argument and a throwaway
# cluster tuned for them.  Sourced after scripts/common.sh.

BENCH_DIR=$SEGMENT_ROOT/bench

# `--pg MAJOR` anywhere among a benchmark's arguments: the same benchmark in a
# fresh Debian root of the release that ships MAJOR (scripts/debian_root.sh,
# which passes the benchmarks' settings such as ROUNDS on).
bench_args=()
bench_pg=
while [ $# -gt 0 ]; do
    case $1 in
        --pg)
            [ -n "${2:-}" ] || { echo "usage: $0 [ARGUMENTS] [--pg MAJOR]" >&2; exit 2; }
            bench_pg=$2
            shift 2 ;;
        *) bench_args+=("$1"); shift ;;
    esac
done
set -- "${bench_args[@]}"
if [ -n "$bench_pg" ]; then
    exec "$SEGMENT_ROOT/scripts/debian_root.sh" "$bench_pg" "bench/$(basename "$0")" "$@"
fi

# BENCH_LOAD=N: N busy loops beside the benchmark for its whole run, so that
# "a machine shared with other work" is one that can be made again; stopped
# on exit, with the cluster.
bench_load_pids=()
bench_load_stop() {
    local rc=$?
    [ ${#bench_load_pids[@]} -eq 0 ] || kill "${bench_load_pids[@]}" 2>/dev/null || true
    return "$rc"
}
case ${BENCH_LOAD:-0} in
    *[!0-9]*)
        echo "error: BENCH_LOAD must be a number of busy loops, not '$BENCH_LOAD'" >&2
        exit 2 ;;
esac
if [ "${BENCH_LOAD:-0}" -gt 0 ]; then
    trap 'bench_load_stop; stop_cluster' EXIT
    log "starting $BENCH_LOAD busy loop(s) beside the benchmark (BENCH_LOAD)"
    for ((bench_load_i = 0; bench_load_i < BENCH_LOAD; bench_load_i++)); do
        ( trap - EXIT INT TERM; while :; do :; done ) &
        bench_load_pids+=($!)
    done
fi
ROUNDS=${ROUNDS:-3}

# bench_customers SIZE SMALL LARGE: the number of customers for the size
# argument (small, large or a number); exits with a usage line otherwise.
bench_customers() {
    case "$1" in
        small) echo "$2" ;;
        large) echo "$3" ;;
        *[!0-9]*|'') echo "usage: $0 [small|large|NUMBER_OF_CUSTOMERS]" >&2; exit 2 ;;
        *) echo "$1" ;;
    esac
}

# bench_cluster [SQL]: install what is missing, build, start the throwaway
# cluster with the benchmarks' settings (memory for a million customers in
# hash tables, no autovacuum or JIT in the middle of a timed query, no
# parallel workers unless a step asks), then SQL (more ALTER SYSTEM lines,
# which win), and restart it so that they all apply.
bench_cluster() {
    ensure_packages
    build_and_install
    start_cluster
    log "configuring the benchmark cluster"
    psql_quiet <<SQL
ALTER SYSTEM SET shared_buffers = '4GB';
ALTER SYSTEM SET effective_cache_size = '16GB';
ALTER SYSTEM SET work_mem = '1GB';
ALTER SYSTEM SET hash_mem_multiplier = 2;
ALTER SYSTEM SET maintenance_work_mem = '1GB';
ALTER SYSTEM SET temp_buffers = '1GB';
ALTER SYSTEM SET max_wal_size = '16GB';
ALTER SYSTEM SET max_parallel_workers = 8;
ALTER SYSTEM SET max_parallel_workers_per_gather = 0;
ALTER SYSTEM SET autovacuum = off;
ALTER SYSTEM SET jit = off;
${1:-}
SQL
    run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/data" -l "$SEGMENT_TMP/server.log" \
        -w -s restart
}

# bench_cpu_function: the psql lines of pg_temp.cpu_seconds(), the backend's
# own CPU time (user + system: fields 14 and 15 of /proc/self/stat, in clock
# ticks), which other work on the machine disturbs less than wall-clock time.
bench_cpu_function() {
    cat <<SQL
CREATE FUNCTION pg_temp.cpu_seconds() RETURNS float8 LANGUAGE sql AS
\$\$ SELECT (split_part(x, ' ', 12)::bigint + split_part(x, ' ', 13)::bigint)::float8 / $(getconf CLK_TCK)
      FROM (SELECT substr(s, strpos(s, ') ') + 2) AS x FROM pg_read_file('/proc/self/stat') AS s) AS t \$\$;
SQL
}

# bench_timing_script SUBDIR: the psql script that times the steps of STEPS
# ("label|file|description"; bench/SUBDIR/file.sql sets :result) by wall
# clock into bench_times: a warm-up round (run 0), then ROUNDS rounds, the
# steps interleaved (with BENCH_ALTERNATE set, every second timed round
# runs them in reverse order, so that a step's place in the round, which
# can cost it, weighs on every step alike).  With BENCH_RECONNECT set, each
# step runs in a session of its own (psql's \connect, untimed), as a
# scheduled job runs: what an earlier step left in the backend's memory
# then cannot cost a later one.  After each step it prints what bench_after_step LABEL
# prints, when the script defines that function (untimed upkeep, a VACUUM),
# and after the warm-up round what bench_after_warmup prints, if defined.
bench_timing_script() {
    local subdir=$1 run step label file i
    local order=()
    echo 'SET client_min_messages = warning;'
    echo 'CREATE TABLE bench_times (step text, run int, seconds float8, result text);'
    for run in $(seq 0 "$ROUNDS"); do
        order=("${STEPS[@]}")
        if [ -n "${BENCH_ALTERNATE:-}" ] && [ $((run % 2)) = 0 ] && [ "$run" != 0 ]; then
            order=()
            for ((i = ${#STEPS[@]} - 1; i >= 0; i--)); do order+=("${STEPS[i]}"); done
        fi
        for step in "${order[@]}"; do
            IFS='|' read -r label file _ <<<"$step"
            if [ -n "${BENCH_RECONNECT:-}" ]; then
                printf '%s\n' '\connect' 'SET client_min_messages = warning;'
            fi
            cat <<SQL
SELECT clock_timestamp() AS t0 \\gset
\\i $BENCH_DIR/$subdir/$file.sql
INSERT INTO bench_times VALUES ('$label', $run, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), :'result');
SQL
            if declare -F bench_after_step >/dev/null; then bench_after_step "$label"; fi
        done
        if [ "$run" = 0 ] && declare -F bench_after_warmup >/dev/null; then bench_after_warmup; fi
    done
}

# bench_descriptions: the "label|description" lines of STEPS, for the reports.
bench_descriptions() {
    local step label desc
    for step in "${STEPS[@]}"; do
        IFS='|' read -r label _ desc <<<"$step"
        printf '%s|%s\n' "$label" "$desc"
    done
}

# bench_machine: a line on the machine, for the reports.
bench_machine() {
    echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# bench_report TITLE SUBDIR [psql options]: the heading (TITLE, the size,
# PostgreSQL, the machine), then bench/SUBDIR/report.sql on the timings.
# Expects size and customers.
bench_report() {
    local title=$1 subdir=$2
    shift 2
    echo
    echo "$title, size $size ($customers customers), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
    bench_machine
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v descriptions="$(bench_descriptions)" -v rounds="$ROUNDS" \
        "$@" -f "$BENCH_DIR/$subdir/report.sql"
}

# kmeans_bench_cluster PACKAGES...: the cluster of the k-means benchmarks
# (bench/kmeans.sh, bench/kmeans_scale.sh), with their Python packages:
# memory for ten million points in one fit, one parallel worker.
kmeans_bench_cluster() {
    SEGMENT_PACKAGES+=("$@")
    bench_cluster "
ALTER SYSTEM SET shared_buffers = '2GB';
ALTER SYSTEM SET work_mem = '256MB';
ALTER SYSTEM SET max_wal_size = '8GB';
ALTER SYSTEM SET max_parallel_workers_per_gather = 1;
ALTER SYSTEM SET maintenance_work_mem = '4GB';"
}

# kmeans_features TABLE N SHAPE: N customers' features of bench/kmeans/generate.py
# (seed 20260101) into a new table, segment created.
kmeans_features() {
    local table=$1 n=$2 shape=$3
    log "generating $n customers' features, shape $shape (bench/kmeans/generate.py)"
    psql_quiet -c 'CREATE EXTENSION segment' \
               -c "CREATE TABLE $table (customer_id bigint PRIMARY KEY, features float8[] NOT NULL)"
    "$PYTHON" "$BENCH_DIR/kmeans/generate.py" "$n" 20260101 "$shape" |
        psql_quiet -c "\\copy $table FROM STDIN"
}
