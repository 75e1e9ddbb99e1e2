#!/usr/bin/env bash
# The scale-out benchmark: what 2 parallel workers and 2 postgres_fdw shards
# buy, at which sizes.
#
#   parallel   rfm GROUP BY customer (over orders, and over the same orders
#              hash-partitioned by customer with partitionwise aggregation),
#              breaks over all orders, one kmeans_step
#              iteration, bgnbd_fit: each with 0 workers and with 2 workers
#              (parallel plan forced, so every size is measured with one),
#              on tables of 100k, 1M (and 10M) rows; the report gives the
#              speed-up t(0 workers) / t(2 workers) and whether the planner
#              picks a parallel plan by itself at that size.
#   sharded    the same rfm GROUP BY (pushed down to the shards) and breaks
#              (rows fetched) over orders partitioned across two shard
#              servers on loopback, against the local table at 0 and 2
#              workers (and the hash-partitioned local copy at 2); and
#              refresh() over each of them.
# Every figure is a ratio to a baseline measured in the same run, on the
# same throwaway clusters: one untimed warm-up, then ROUNDS (default 3)
# timed rounds, the modes interleaved; medians.
#
#   bench/parallel.sh small     100k and 1M rows; sharded at 1M (minutes)
#   bench/parallel.sh large     100k, 1M and 10M rows; sharded at 10M (longer)
#   PARTS=sharded bench/parallel.sh large    only the sharded part (10M)
#   PARTS=parallel bench/parallel.sh small   only the parallel part
source "$(dirname "$0")/../scripts/common.sh"

BENCH_DIR=$SEGMENT_ROOT/bench/parallel
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-parallel sharded}
for part in $PARTS; do
    case $part in
        parallel | sharded) ;;
        *) echo "$0: PARTS takes parallel and sharded, not \"$part\"" >&2; exit 2 ;;
    esac
done
part_on() { [[ " $PARTS " == *" $1 "* ]]; }

case "${1:-small}" in
    small) sizes=(100000 1000000); fdw_rows=1000000 ;;
    large) sizes=(100000 1000000 10000000); fdw_rows=10000000 ;;
    *) echo "usage: $0 [small|large]" >&2; exit 2 ;;
esac

ensure_packages
build_and_install
start_cluster

configure_server() {
    local name=$1
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SEGMENT_TMP" -p "$2" -d postgres <<'EOF'
ALTER SYSTEM SET shared_buffers = '2GB';
ALTER SYSTEM SET work_mem = '512MB';
ALTER SYSTEM SET maintenance_work_mem = '1GB';
ALTER SYSTEM SET max_wal_size = '16GB';
ALTER SYSTEM SET max_parallel_workers = 8;
ALTER SYSTEM SET autovacuum = off;
ALTER SYSTEM SET jit = off;
EOF
    run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/$name" -l "$SEGMENT_TMP/$name.log" \
        -w -s restart
}
log "configuring the benchmark cluster"
configure_server data 5432
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -c 'CREATE TABLE bench_times (part text, size bigint, step text, mode text, run int,
                                         seconds float8, result text)
               ; CREATE TABLE bench_plans (size bigint, step text, default_parallel boolean)
               ; CREATE TABLE bench_load (part text, size bigint, at text, loadavg text)'
# The machine's load (other work on it skews the ratios, parallel ones most).
record_load() {
    psql_quiet -c "INSERT INTO bench_load VALUES ('$1', $2, '$3', '$(cut -d' ' -f1-3 /proc/loadavg)')"
}

# psql lines that time one statement: $1 part, $2 size, $3 step, $4 mode,
# $5 run, $6 SQL.
timed() {
    cat <<EOF
SELECT clock_timestamp() AS t0 \\gset
$6 \\gset r_
INSERT INTO bench_times VALUES ('$1', $2, '$3', '$4', $5,
    extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), '');
EOF
}
SERIAL='SET max_parallel_workers_per_gather = 0;'
PARALLEL='SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET min_parallel_index_scan_size = 0;'
DEFAULTS='SET max_parallel_workers_per_gather = 2; RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;'

mapfile -t QUERIES < <(grep -v '^--' "$BENCH_DIR/queries.sql")

part_on parallel || sizes=()
for size in "${sizes[@]}"; do
    log "parallel: generating $size rows per table"
    psql_quiet -v rows="$size" -f "$BENCH_DIR/generate.sql" >/dev/null 2>&1
    log "parallel: timing at $size rows (1 warm-up + $ROUNDS rounds)"
    record_load parallel "$size" start
    {
        echo 'SET client_min_messages = warning; SET enable_partitionwise_aggregate = on;'
        for q in "${QUERIES[@]}"; do
            label=${q%%|*}
            sql=${q#*|}
            # does the planner pick a parallel plan by itself at this size?
            echo "$DEFAULTS"
            echo "DO \$\$ DECLARE l text; found_gather boolean := false; BEGIN FOR l IN EXECUTE \$q\$EXPLAIN $sql\$q\$ LOOP found_gather := found_gather OR l LIKE '%Gather%'; END LOOP; INSERT INTO bench_plans VALUES ($size, '$label', found_gather); END \$\$;"
            for run in $(seq 0 "$ROUNDS"); do
                echo "$SERIAL"
                timed parallel "$size" "$label" 0 "$run" "$sql"
                echo "$PARALLEL"
                timed parallel "$size" "$label" 2 "$run" "$sql"
            done
        done
    } | psql_quiet -f - >/dev/null
    record_load parallel "$size" end
done

# Sharded: a coordinator (this cluster) and two shard servers on loopback.
if part_on sharded; then
    log "sharded: two shard servers, $fdw_rows orders"
    shard_ports=()
    for shard in shard1 shard2; do
        port=$(free_port)
        start_server "$shard" "$port" 127.0.0.1
        configure_server "$shard" "$port"
        shard_ports+=("$port")
        "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres -c 'CREATE EXTENSION segment' \
            -c 'CREATE UNLOGGED TABLE orders_part (customer_id bigint, ordered_at timestamptz, amount numeric(12,2))'
    done
    # (only the orders and their hash-partitioned copy: the sharded part reads no other table)
    psql_quiet -v rows="$fdw_rows" -v orders_only=1 -f "$BENCH_DIR/generate.sql" >/dev/null 2>&1
    psql_quiet -v shard1_port="${shard_ports[0]}" -v shard2_port="${shard_ports[1]}" \
        -f "$BENCH_DIR/shard.sql" >/dev/null
    for port in "${shard_ports[@]}"; do
        "$PG_BIN/psql" -X -q -p "$port" -d postgres -c 'VACUUM ANALYZE orders_part'
    done
    log "sharded: timing (1 warm-up + $ROUNDS rounds)"
    RFM_LOCAL='SELECT count(*), sum((r).orders), max((r).last_order) FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM orders GROUP BY customer_id) AS q'
    RFM_SHARDED=${RFM_LOCAL//FROM orders /FROM orders_sharded }
    RFM_HASHED=${RFM_LOCAL//FROM orders /FROM orders_hashed }
    record_load sharded "$fdw_rows" start
    {
        echo 'SET client_min_messages = warning; SET enable_partitionwise_aggregate = on;'
        for run in $(seq 0 "$ROUNDS"); do
            echo "$SERIAL"
            timed sharded "$fdw_rows" rfm local0 "$run" "$RFM_LOCAL"
            echo "$PARALLEL"
            timed sharded "$fdw_rows" rfm local2 "$run" "$RFM_LOCAL"
            timed sharded "$fdw_rows" rfm hashed2 "$run" "$RFM_HASHED"
            echo "$SERIAL"
            timed sharded "$fdw_rows" rfm fdw "$run" "$RFM_SHARDED"
            timed sharded "$fdw_rows" breaks local0 "$run" 'SELECT segment.breaks(amount::float8, 5) FROM orders'
            timed sharded "$fdw_rows" breaks fdw "$run" 'SELECT segment.breaks(amount::float8, 5) FROM orders_sharded'
            timed sharded "$fdw_rows" refresh local0 "$run" "SELECT customers FROM segment.refresh('local', '2026-01-01', mode => 'full')"
            echo "$PARALLEL"
            timed sharded "$fdw_rows" refresh local2 "$run" "SELECT customers FROM segment.refresh('local', '2026-01-01', mode => 'full')"
            timed sharded "$fdw_rows" refresh hashed2 "$run" "SELECT customers FROM segment.refresh('hashed', '2026-01-01', mode => 'full')"
            echo "$SERIAL"
            timed sharded "$fdw_rows" refresh fdw "$run" "SELECT customers FROM segment.refresh('sharded', '2026-01-01', mode => 'full')"
        done
    } | psql_quiet -f - >/dev/null
    record_load sharded "$fdw_rows" end
fi

echo
echo "Scale-out benchmark ($1), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
psql_quiet -v rounds="$ROUNDS" -f "$BENCH_DIR/report.sql"
