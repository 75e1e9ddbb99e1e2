"""Deterministic customer features for the k-means benchmark.

Writes "customer_id<TAB>{f1,f2,f3,f4}" lines (PostgreSQL COPY text format) to
stdout: for each customer, log(1 + days since the last order), log(1 + number
of orders), log(1 + total spend) and the share of orders with a discount.
The customers come from a mixture of eight behavioural groups of unequal
size (one-time buyers, lapsed, new, regulars, loyal, champions, discount
hunters, big-ticket buyers) with correlated frequency and spend inside each
group, so the clusters overlap as they do in a real shop ("overlap", the default:
k-means needs some 50 iterations on it).

The other shape, "blobs", is the one issue 18 measured on: eight
well-separated anisotropic Gaussian blobs of 3% to 28% of the points, four
features on different scales, 2% uniform outliers (k-means converges in a
few iterations, so seeding and set-up dominate).

    generate.py N_CUSTOMERS [SEED] [overlap|blobs]
"""
import sys

import numpy as np

# name, share, mean of (log recency, log frequency, log spend), their
# standard deviations, correlation of frequency and spend, discount share
# as a beta(a, b)
GROUPS = [
    ("one-time",      0.30, (5.6, 0.69, 3.7), (0.45, 0.02, 0.55), 0.0, (1.0, 6.0)),
    ("lapsed",        0.17, (6.1, 1.35, 4.6), (0.30, 0.30, 0.50), 0.6, (1.5, 5.0)),
    ("new",           0.12, (2.6, 0.80, 3.9), (0.55, 0.15, 0.50), 0.4, (1.2, 5.0)),
    ("regular",       0.15, (3.6, 1.95, 5.4), (0.50, 0.30, 0.45), 0.7, (2.0, 5.0)),
    ("loyal",         0.09, (2.9, 2.60, 6.2), (0.50, 0.25, 0.40), 0.7, (2.0, 6.0)),
    ("champion",      0.04, (1.8, 3.30, 7.2), (0.45, 0.25, 0.35), 0.8, (1.5, 8.0)),
    ("discount",      0.08, (3.4, 1.70, 4.5), (0.60, 0.35, 0.45), 0.6, (6.0, 2.5)),
    ("big-ticket",    0.05, (4.3, 1.10, 7.4), (0.60, 0.25, 0.40), 0.3, (1.0, 7.0)),
]


def generate(n, seed):
    rng = np.random.default_rng(seed)
    shares = np.array([g[1] for g in GROUPS])
    group = rng.choice(len(GROUPS), size=n, p=shares / shares.sum())
    x = np.empty((n, 4))
    for j, (_, _, mean, sd, rho, (a, b)) in enumerate(GROUPS):
        idx = np.flatnonzero(group == j)
        cov = np.diag(np.square(sd))
        cov[1, 2] = cov[2, 1] = rho * sd[1] * sd[2]
        x[idx, :3] = rng.multivariate_normal(mean, cov, size=idx.size)
        x[idx, 3] = rng.beta(a, b, size=idx.size)
    # the features are logs of counts and amounts: keep them in range
    x[:, 0] = np.clip(x[:, 0], 0.0, np.log1p(3650))
    x[:, 1] = np.maximum(x[:, 1], np.log(2))
    x[:, 2] = np.maximum(x[:, 2], 0.0)
    return x


# share of the points and centre of each blob (in units of each feature's
# scale), then the feature scales
BLOB_SHARES = [0.28, 0.20, 0.15, 0.12, 0.09, 0.07, 0.06, 0.03]
BLOB_SCALES = np.array([1.0, 10.0, 100.0, 0.1])


def generate_blobs(n, seed):
    rng = np.random.default_rng(seed)
    k = len(BLOB_SHARES)
    shares = np.array(BLOB_SHARES) * 0.98
    centres = rng.uniform(-8.0, 8.0, size=(k, 4))
    # a random linear map per blob: anisotropic, correlated features
    maps = rng.normal(0.0, 0.8, size=(k, 4, 4))
    group = rng.choice(k + 1, size=n, p=np.append(shares, 0.02))
    x = np.empty((n, 4))
    for j in range(k):
        idx = np.flatnonzero(group == j)
        x[idx] = centres[j] + rng.standard_normal((idx.size, 4)) @ maps[j]
    idx = np.flatnonzero(group == k)
    x[idx] = rng.uniform(-11.0, 11.0, size=(idx.size, 4))
    return x * BLOB_SCALES


def main():
    n = int(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20260101
    shape = sys.argv[3] if len(sys.argv) > 3 else "overlap"
    if shape not in ("overlap", "blobs"):
        sys.exit("generate.py: shape must be overlap or blobs")
    x = generate(n, seed) if shape == "overlap" else generate_blobs(n, seed)
    out = sys.stdout
    chunk = 100000
    for start in range(0, n, chunk):
        block = x[start:start + chunk]
        lines = ["%d\t{%r,%r,%r,%r}\n" % (start + i + 1, *map(float, row))
                 for i, row in enumerate(block)]
        out.write("".join(lines))


if __name__ == "__main__":
    main()
