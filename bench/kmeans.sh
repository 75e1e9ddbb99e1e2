#!/usr/bin/env bash
# The k-means benchmark against scikit-learn (Debian's python3-sklearn), on
# generated customer features (bench/kmeans/generate.py: log recency, log
# frequency, log spend, discount share; eight overlapping groups), k = 8:
#   (a)  scikit-learn KMeans fit on the features already in numpy
#        (lloyd and elkan; the faster is (a));
#   (b)  the analyst's workflow: export with COPY, fit, labels back with COPY;
#   (c)  segment.create_kmeans_model() + a labels table from kmeans_assign(), in SQL;
# same k-means++, n_init, tol and max_iter.  Every figure is measured in the
# same run, on the same throwaway cluster; see bench/kmeans/bench.py.
#
#   bench/kmeans.sh small     50k customers (a minute)
#   bench/kmeans.sh large     1M customers x 4 features (several minutes)
#   bench/kmeans.sh 200000    any number of customers
#   SHAPE=blobs bench/kmeans.sh large   well-separated anisotropic blobs with
#                             2% outliers (few iterations) instead of the
#                             overlapping groups (SHAPE=overlap, the default)
#
# ROUNDS (default 3) timed rounds, N_INIT (default 10) restarts.  scikit-learn
# runs with its default thread pool (OpenMP, one thread per CPU); segment's
# restarts run in the backend and max_parallel_workers_per_gather = 1
# parallel worker, two processes in all: the same two CPUs.  (c1) repeats
# (c) in the backend alone.
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

N_INIT=${N_INIT:-10}
SHAPE=${SHAPE:-overlap}
PYTHON=/usr/bin/python3         # Debian's, with the packages below

size=${1:-small}
customers=$(bench_customers "$size" 50000 1000000)

kmeans_bench_cluster python3-sklearn python3-numpy python3-psycopg2 python3-threadpoolctl
kmeans_features customer_features "$customers" "$SHAPE"
psql_quiet -c 'VACUUM (ANALYZE) customer_features'

log "timing: $ROUNDS rounds of (a) lloyd, (a) elkan, (b), (c), (c1)"
echo
echo "k-means benchmark, size $size ($customers customers, shape $SHAPE), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'),"
bench_machine
"$PYTHON" "$BENCH_DIR/kmeans/bench.py" "$ROUNDS" "$N_INIT"
