#!/usr/bin/env bash
# The scale curve of segment's k-means (no scikit-learn): fit + labels at
# growing numbers of customers, in memory and with the step driver (the path
# for data larger than memory), on the same generated data as
# bench/kmeans.sh; see bench/kmeans/scale.py.
#
#   bench/kmeans_scale.sh                          1M, 2M, 4M customers
#   SIZES="1000000 4000000 10000000" bench/kmeans_scale.sh
#   SHAPE=blobs bench/kmeans_scale.sh              the other data shape
#
# ROUNDS (default 3) timed rounds, the sizes interleaved in each; N_INIT
# (default 10) restarts; max_parallel_workers_per_gather = 1 as in
# bench/kmeans.sh.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

N_INIT=${N_INIT:-10}
SHAPE=${SHAPE:-overlap}
SIZES=${SIZES:-1000000 2000000 4000000}
PYTHON=/usr/bin/python3

largest=$(printf '%s\n' $SIZES | sort -n | tail -1)
kmeans_bench_cluster python3-numpy python3-psycopg2
kmeans_features all_features "$largest" "$SHAPE"
for n in $SIZES; do
    # the generator's rows are independent draws: the first n are n customers
    psql_quiet -c "CREATE TABLE features_$n AS SELECT * FROM all_features WHERE customer_id <= $n" \
               -c "VACUUM (ANALYZE) features_$n"
done
psql_quiet -c 'DROP TABLE all_features'

log "timing: $ROUNDS rounds over sizes $SIZES"
echo
echo "k-means scale curve, shape $SHAPE, PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
bench_machine
"$PYTHON" "$BENCH_DIR/kmeans/scale.py" "$ROUNDS" "$N_INIT" $SIZES
