"""The timed part of bench/kmeans.sh (run by it, on its throwaway cluster).

Per round, on the table customer_features(customer_id, features float8[]):
  (a)  scikit-learn KMeans.fit on the standardised features already in a
       numpy array, algorithm "lloyd" and "elkan" with its thread pool, and
       "lloyd" on one thread (on a busy machine OpenMP threads can lose more
       than they gain); the fastest of the three is (a);
  (b)  the analyst's workflow: COPY the features out with psycopg2, parse
       them into numpy, standardise, fit (the algorithm that was faster in
       (a)), COPY the labels into a new table;
  (c)  segment: create_kmeans_model() (stored model, standardize) and a new table of
       labels from kmeans_assign(), in SQL;
  (c1) (c) with the restarts in the backend alone ("workers": 0).
Same k, n_init, tol, max_iter and k-means++ everywhere.  Prints a table per
round, then medians, the ratios (c)/(a) and (b)/(c), the inertias and the
agreement of the labels.

    bench.py ROUNDS N_INIT
"""
import io
import os
import statistics
import sys
import time

import numpy as np
import psycopg2
import sklearn
import threadpoolctl
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

K = 8
TOL = 1e-4
MAX_ITER = 300
SEED = 0


def connect():
    # PGHOST, PGPORT, PGUSER and PGDATABASE come from the environment
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def export(conn):
    """The features as an (n, 4) array and the ids, via COPY."""
    buf = io.StringIO()
    with conn.cursor() as cur:
        cur.copy_expert("COPY (SELECT customer_id, features FROM customer_features) TO STDOUT", buf)
    # numpy's C parser on the text with the braces and commas blanked out
    text = buf.getvalue().translate(str.maketrans("{},", "   "))
    table = np.fromstring(text, dtype=float, sep=" ").reshape(-1, 5)
    return table[:, 0].astype(np.int64), np.ascontiguousarray(table[:, 1:])


def standardise(x):
    return (x - x.mean(axis=0)) / x.std(axis=0)


def sklearn_fit(x, algorithm, n_init, threads=None):
    km = KMeans(n_clusters=K, init="k-means++", n_init=n_init, tol=TOL, max_iter=MAX_ITER,
                algorithm=algorithm, random_state=SEED)
    if threads is None:
        km.fit(x)
    else:
        with threadpoolctl.threadpool_limits(limits=threads):
            km.fit(x)
    return km


def write_labels(conn, ids, labels):
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS labels_b")
        cur.execute("CREATE TABLE labels_b (customer_id bigint, cluster integer)")
        buf = io.StringIO("".join("%d\t%d\n" % pair
                                  for pair in zip(ids.tolist(), (labels + 1).tolist())))
        cur.copy_expert("COPY labels_b FROM STDIN", buf)


def workflow(n_init, algorithm, threads=None):
    """(b): export, fit, write back; returns the fitted estimator."""
    conn = connect()
    ids, x = export(conn)
    km = sklearn_fit(standardise(x), algorithm, n_init, threads)
    write_labels(conn, ids, km.labels_)
    conn.close()
    return km


def segment_fit(conn, n_init, workers=None):
    """(c): fit a stored model and write the labels; returns (fit s, assign s, model)."""
    opts = '{"n_init": %d, "tol": %r, "max_iter": %d, "seed": %d, "standardize": true%s}' % (
        n_init, TOL, MAX_ITER, SEED, "" if workers is None else ', "workers": %d' % workers)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM segment.kmeans_models WHERE name = 'bench'")
        cur.execute("DROP TABLE IF EXISTS labels_c")
        t0 = time.monotonic()
        cur.execute("SELECT segment.create_kmeans_model('bench', 'customer_features', 'features', %s, %s)",
                    (K, opts))
        t1 = time.monotonic()
        cur.execute("""CREATE TABLE labels_c AS
                       SELECT customer_id,
                              segment.kmeans_assign((SELECT model FROM segment.kmeans_models
                                                      WHERE name = 'bench'), features) AS cluster
                         FROM customer_features""")
        t2 = time.monotonic()
        cur.execute("SELECT model::text::jsonb FROM segment.kmeans_models WHERE name = 'bench'")
        model = cur.fetchone()[0]
    return t1 - t0, t2 - t1, model


def timed(fn, *args):
    t0 = time.monotonic()
    out = fn(*args)
    return time.monotonic() - t0, out


def main():
    rounds = int(sys.argv[1])
    n_init = int(sys.argv[2])
    conn = connect()
    ids, x_raw = export(conn)
    x = standardise(x_raw)
    n = x.shape[0]

    info = threadpoolctl.threadpool_info()
    print("scikit-learn %s, numpy %s; thread pools: %s" % (
        sklearn.__version__, np.__version__,
        "; ".join("%s %s (%s) %d threads" % (p["user_api"], p["internal_api"],
                                              os.path.basename(p["filepath"]), p["num_threads"])
                  for p in info)))
    print("%d customers x %d features, k = %d, n_init = %d, tol = %g, max_iter = %d, k-means++"
          % (n, x.shape[1], K, n_init, TOL, MAX_ITER))
    print()

    # an untimed warm-up of each side, one restart each (page cache, shared
    # buffers, thread pools, code paths)
    sklearn_fit(x, "lloyd", 1)
    sklearn_fit(x, "elkan", 1)
    workflow(1, "lloyd")
    segment_fit(conn, 1)

    rows = []
    header = "%-5s %9s %9s %9s %9s %9s %9s %9s %9s %7s" % (
        "round", "(a)lloyd", "(a)elkan", "(a)lloyd1", "(b)", "(c)", "(c)fit", "(c)assign",
        "(c1)", "load")
    print(header)
    for r in range(1, rounds + 1):
        t_lloyd, km_lloyd = timed(sklearn_fit, x, "lloyd", n_init)
        t_elkan, km_elkan = timed(sklearn_fit, x, "elkan", n_init)
        t_lloyd1, km_lloyd1 = timed(sklearn_fit, x, "lloyd", n_init, 1)
        best = min((t_lloyd, "lloyd", None), (t_elkan, "elkan", None), (t_lloyd1, "lloyd", 1))
        best_algo = best[1] + ("" if best[2] is None else ", 1 thread")
        t_b, km_b = timed(workflow, n_init, best[1], best[2])
        fit_c, assign_c, model = segment_fit(conn, n_init)
        fit_c1, assign_c1, model_c1 = segment_fit(conn, n_init, workers=0)
        row = dict(lloyd=t_lloyd, elkan=t_elkan, lloyd1=t_lloyd1, a=best[0], b=t_b,
                   c=fit_c + assign_c, c_fit=fit_c, c_assign=assign_c,
                   c1=fit_c1 + assign_c1, algo=best_algo,
                   sk_inertia=min(km_lloyd.inertia_, km_elkan.inertia_, km_lloyd1.inertia_),
                   sk_iter=(km_lloyd.n_iter_, km_elkan.n_iter_),
                   seg_inertia=model["inertia"], seg_iter=model["iterations"],
                   same_c1=model_c1["inertia"] == model["inertia"])
        rows.append(row)
        # the machine's 1-minute load average after the round (other users count)
        print("%-5d %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %7.2f" % (
            r, t_lloyd, t_elkan, t_lloyd1, t_b, row["c"], fit_c, assign_c, row["c1"],
            os.getloadavg()[0]), flush=True)

    # label agreement of the last round's (b) and (c), untimed
    with conn.cursor() as cur:
        cur.execute("""SELECT b.cluster, c.cluster FROM labels_b AS b
                         JOIN labels_c AS c USING (customer_id)""")
        pairs = np.array(cur.fetchall())
    ari = adjusted_rand_score(pairs[:, 0], pairs[:, 1])

    med = {key: statistics.median(row[key] for row in rows)
           for key in ("lloyd", "elkan", "lloyd1", "a", "b", "c", "c_fit", "c_assign", "c1")}
    sk_inertia = rows[-1]["sk_inertia"]
    seg_inertia = rows[-1]["seg_inertia"]
    print()
    print("medians over %d rounds (seconds):" % rounds)
    print("  (a)  scikit-learn fit, numpy in memory: lloyd %.2f, elkan %.2f, lloyd on 1 thread %.2f"
          " -> (a) = %.2f" % (med["lloyd"], med["elkan"], med["lloyd1"], med["a"]))
    print("  (b)  export (COPY) + fit (%s) + labels back (COPY into a table): %.2f"
          % (rows[-1]["algo"], med["b"]))
    print("  (c)  segment.create_kmeans_model + labels table from kmeans_assign: %.2f (fit %.2f, assign %.2f)"
          % (med["c"], med["c_fit"], med["c_assign"]))
    print("  (c1) the same with the restarts in the backend alone (workers 0): %.2f" % med["c1"])
    print("ratios (of the medians; per round in brackets):")
    print("  (c)/(a) = %.2f  [%s]   target <= 0.5" % (
        med["c"] / med["a"], ", ".join("%.2f" % (row["c"] / row["a"]) for row in rows)))
    print("  (b)/(c) = %.2f  [%s]   target >= 3" % (
        med["b"] / med["c"], ", ".join("%.2f" % (row["b"] / row["c"]) for row in rows)))
    print("  (c1)/(a) = %.2f, (b)/(c1) = %.2f" % (med["c1"] / med["a"], med["b"] / med["c1"]))
    print("inertia (standardised features): scikit-learn %.6f (n_iter lloyd %d, elkan %d),"
          " segment %.6f (iterations %d)" % (sk_inertia, rows[-1]["sk_iter"][0],
                                             rows[-1]["sk_iter"][1], seg_inertia,
                                             rows[-1]["seg_iter"]))
    print("  segment - scikit-learn = %+.4f%% of scikit-learn's   target +0.1%% or better"
          % (100.0 * (seg_inertia - sk_inertia) / sk_inertia))
    print("  same model with and without parallel workers: %s"
          % all(row["same_c1"] for row in rows))
    print("  adjusted Rand index of the (b) and (c) labels: %.6f" % ari)


if __name__ == "__main__":
    main()
