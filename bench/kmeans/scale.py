"""The timed part of bench/kmeans_scale.sh (run by it, on its throwaway cluster).

Per round and per size n (tables features_<n>), interleaved:
  (m)  segment.create_kmeans_model() in memory + a labels table from kmeans_assign()
       (as (c) of bench/kmeans.sh);
  (s)  the same with the option "method": "step" (k-means++ restarts on a
       sample, then Lloyd's iterations as one aggregate scan each: the path
       for data that does not fit in memory).
Prints the medians, the time per million customers, the ratio of each size
to the smallest, and the inertia of (s) against (m).

    scale.py ROUNDS N_INIT SIZE...
"""
import os
import statistics
import sys
import time

import psycopg2

K = 8
TOL = 1e-4
MAX_ITER = 300
SEED = 0


def fit(conn, n, n_init, method):
    opts = '{"n_init": %d, "tol": %r, "max_iter": %d, "seed": %d, "standardize": true, "method": "%s"}' % (
        n_init, TOL, MAX_ITER, SEED, method)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM segment.kmeans_models WHERE name = 'scale'")
        cur.execute("DROP TABLE IF EXISTS labels")
        t0 = time.monotonic()
        cur.execute("SELECT segment.create_kmeans_model('scale', 'features_%d', 'features', %%s, %%s)" % n,
                    (K, opts))
        t1 = time.monotonic()
        cur.execute("""CREATE TABLE labels AS
                       SELECT customer_id,
                              segment.kmeans_assign((SELECT model FROM segment.kmeans_models
                                                      WHERE name = 'scale'), features) AS cluster
                         FROM features_%d""" % n)
        t2 = time.monotonic()
        cur.execute("SELECT model::text::jsonb FROM segment.kmeans_models WHERE name = 'scale'")
        model = cur.fetchone()[0]
    return t1 - t0, t2 - t1, model


def main():
    rounds = int(sys.argv[1])
    n_init = int(sys.argv[2])
    sizes = sorted(int(a) for a in sys.argv[3:])
    conn = psycopg2.connect("")
    conn.autocommit = True
    print("k = %d, n_init = %d, tol = %g, max_iter = %d, standardised, max_parallel_workers_per_gather = 1"
          % (K, n_init, TOL, MAX_ITER))
    print()
    fit(conn, sizes[0], 1, "memory")    # warm-up
    res = {(n, m): [] for n in sizes for m in ("memory", "step")}
    print("%-5s %10s %-7s %8s %8s %8s %6s %18s %6s" % ("round", "n", "method", "total", "fit",
                                                        "assign", "iters", "inertia", "load"))
    for r in range(1, rounds + 1):
        for n in sizes:
            for method in ("memory", "step"):
                f, a, model = fit(conn, n, n_init, method)
                res[(n, method)].append((f + a, f, a, model))
                print("%-5d %10d %-7s %8.2f %8.2f %8.2f %6d %18.6f %6.2f" % (
                    r, n, method, f + a, f, a, model["iterations"], model["inertia"],
                    os.getloadavg()[0]), flush=True)
    print()
    print("medians over %d rounds (seconds): fit + labels table" % rounds)
    base = {m: statistics.median(t[0] for t in res[(sizes[0], m)]) for m in ("memory", "step")}
    for n in sizes:
        mem = statistics.median(t[0] for t in res[(n, "memory")])
        step = statistics.median(t[0] for t in res[(n, "step")])
        imem = res[(n, "memory")][-1][3]["inertia"]
        istep = res[(n, "step")][-1][3]["inertia"]
        print("  %10d  in memory %7.2f (%.2f s per million, %5.2fx the %dk time)"
              "   step %7.2f (%5.2fx)   step inertia %+.4f%% of in-memory's"
              % (n, mem, mem / (n / 1e6), mem / base["memory"], sizes[0] // 1000,
                 step, step / base["step"], 100.0 * (istep - imem) / imem))


if __name__ == "__main__":
    main()
