/*
 * kmeans_core.c
 *	  The clustering core: seeded random numbers, greedy k-means++,
 *	  Lloyd and Hamerly iterations, empty-cluster relocation, silhouettes.
 *
 * The definitions follow scikit-learn's KMeans (sklearn/cluster/_kmeans.py):
 * greedy k-means++ with 2 + floor(ln k) local trials, convergence when the
 * labels no longer change or when the sum of squared centroid shifts is at
 * most tol_abs (tol times the mean feature variance), a last assignment pass
 * so that the labels match the final centroids, and empty clusters moved to
 * the points farthest from their centroid.
 *
 * Hamerly's algorithm (G. Hamerly, "Making k-means even faster", SDM 2010)
 * keeps per point an upper bound on the distance to its centroid and a lower
 * bound on the distance to the second closest one; a point whose upper bound
 * is below max(lower bound, half the distance from its centroid to the
 * nearest other centroid) cannot change cluster and is skipped.  It gives the
 * same labels as Lloyd's algorithm and needs O(n) extra memory, against
 * O(n k) for Elkan's, which matters at a million points.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"

#include "kmeans.h"
#include "segment.h"

/* Seconds on a monotonic clock, for the DEBUG2 timings of each stage. */
double
kmeans_clock(void)
{
	instr_time	t;

	INSTR_TIME_SET_CURRENT(t);
	return INSTR_TIME_GET_DOUBLE(t);
}

/* splitmix64, to spread a user seed over the generator's state. */
static uint64
kmeans_splitmix(uint64 *x)
{
	uint64		z = (*x += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Seed the generator: equal seeds give equal streams on every platform. */
void
kmeans_random_seed(KMeansRandom *rng, uint64 seed)
{
	int			i;

	for (i = 0; i < 4; i++)
		rng->s[i] = kmeans_splitmix(&seed);
}

static inline uint64
kmeans_rotl(uint64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* A uniform double in [0, 1) from xoshiro256**. */
double
kmeans_random_double(KMeansRandom *rng)
{
	uint64	   *s = rng->s;
	uint64		result = kmeans_rotl(s[1] * 5, 7) * 9;
	uint64		t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = kmeans_rotl(s[3], 45);
	return (result >> 11) * (1.0 / 9007199254740992.0);
}

/* Index of the nearest centre (lowest index on ties) and its squared distance. */
int
kmeans_nearest(const double *x, const double *centers, int k, int d, double *sqdist)
{
	int			best = 0;
	double		bestd = kmeans_sqdist(x, centers, d);
	int			j;

	for (j = 1; j < k; j++)
	{
		double		dd = kmeans_sqdist(x, centers + (Size) j * d, d);

		if (dd < bestd)
		{
			bestd = dd;
			best = j;
		}
	}
	if (sqdist)
		*sqdist = bestd;
	return best;
}

/* An array of n doubles, allowed beyond 1 GB. */
static double *
kmeans_alloc_doubles(int64 n)
{
	return (double *) MemoryContextAllocHuge(CurrentMemoryContext,
											 mul_size((Size) n, sizeof(double)));
}

/*
 * Squared distances from x to the KMEANS_BLOCK centres of a block, given
 * transposed: d rows, kp values apart.  Eight independent sums in registers
 * (pipelined, vectorisable); each adds the features in the order
 * kmeans_sqdist does, so the results are bit-identical to it.
 */
static inline void
kmeans_block_sqdist(const double *restrict x, const double *restrict ct, int kp, int d,
					double *restrict out)
{
	double		a0 = 0,
				a1 = 0,
				a2 = 0,
				a3 = 0,
				a4 = 0,
				a5 = 0,
				a6 = 0,
				a7 = 0;
	int			c;

	for (c = 0; c < d; c++, ct += kp)
	{
		double		xc = x[c];
		double		t0 = xc - ct[0],
					t1 = xc - ct[1],
					t2 = xc - ct[2],
					t3 = xc - ct[3],
					t4 = xc - ct[4],
					t5 = xc - ct[5],
					t6 = xc - ct[6],
					t7 = xc - ct[7];

		a0 += t0 * t0;
		a1 += t1 * t1;
		a2 += t2 * t2;
		a3 += t3 * t3;
		a4 += t4 * t4;
		a5 += t5 * t5;
		a6 += t6 * t6;
		a7 += t7 * t7;
	}
	out[0] = a0;
	out[1] = a1;
	out[2] = a2;
	out[3] = a3;
	out[4] = a4;
	out[5] = a5;
	out[6] = a6;
	out[7] = a7;
}

/*
 * Greedy k-means++ (Arthur and Vassilvitskii 2007, with scikit-learn's
 * greedy refinement): each new centre is the best of 2 + floor(ln k)
 * candidates drawn with probability proportional to the squared distance to
 * the nearest centre so far, "best" meaning lowest resulting potential.
 *
 * Two passes over the points per centre: one scores all candidates at once,
 * one updates the nearest distances with the chosen candidate and builds the
 * cumulative sum for the next draw.  Every sum runs in point order, so the
 * draws are reproducible.
 */
void
kmeans_plusplus(const double *x, int64 n, int d, int k, KMeansRandom *rng,
				double *centers)
{
	int			trials = Min(2 + (int) log((double) k), KMEANS_MAX_TRIALS);
	double	   *closest = kmeans_alloc_doubles(n);
	double	   *cumsum = kmeans_alloc_doubles(n);
	double	   *cx = palloc(sizeof(double) * KMEANS_MAX_TRIALS * d);
	int64		cand[KMEANS_MAX_TRIALS];
	double		pot;
	int64		first;
	int64		i;
	int			c;

	first = (int64) (kmeans_random_double(rng) * n);
	if (first >= n)
		first = n - 1;
	memcpy(centers, x + first * d, sizeof(double) * d);
	pot = 0;
	for (i = 0; i < n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		closest[i] = kmeans_sqdist(x + i * d, centers, d);
		pot += closest[i];
		cumsum[i] = pot;
	}

	for (c = 1; c < k; c++)
	{
		int			t;
		int			best_t = 0;
		double		p[KMEANS_MAX_TRIALS] = {0};
		double		acc = 0;
		const double *best;

		CHECK_FOR_INTERRUPTS();
		for (t = 0; t < trials; t++)
		{
			double		r = kmeans_random_double(rng) * pot;

			/* first index with cumsum >= r (numpy searchsorted, side left) */
			cand[t] = Min(segment_lower_bound(cumsum, n, r), n - 1);
			memcpy(cx + (Size) t * d, x + cand[t] * d, sizeof(double) * d);
		}
		/* the potential each candidate would leave */
		for (i = 0; i < n; i++)
		{
			const double *xi = x + i * d;
			double		ci = closest[i];

			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			for (t = 0; t < trials; t++)
			{
				double		dd = kmeans_sqdist(xi, cx + (Size) t * d, d);

				p[t] += Min(dd, ci);
			}
		}
		for (t = 1; t < trials; t++)
			if (p[t] < p[best_t])
				best_t = t;
		best = x + cand[best_t] * d;
		memcpy(centers + (Size) c * d, best, sizeof(double) * d);
		for (i = 0; i < n; i++)
		{
			double		dd = kmeans_sqdist(x + i * d, best, d);

			if (dd < closest[i])
				closest[i] = dd;
			acc += closest[i];
			cumsum[i] = acc;
		}
		pot = acc;
	}
	pfree(closest);
	pfree(cumsum);
	pfree(cx);
}

/*
 * Move each empty cluster to one of the points farthest from their own
 * centroid (dist[i] = squared distance of point i to old_centers[labels[i]]),
 * taking that point out of its cluster's sums, as scikit-learn does.  Ties in
 * distance go to the point with the larger features (lexicographically), so
 * that the step aggregate, which sees the rows in any order, picks the same.
 */
void
kmeans_relocate_empty(const double *x, int64 n, int d, int k, const int *labels,
					  const double *dist, const double *old_centers,
					  double *sums, double *counts)
{
	int			n_empty = 0;
	int			j;
	int64	   *far;
	int			nfar = 0;
	int64		i;

	for (j = 0; j < k; j++)
		if (counts[j] == 0)
			n_empty++;
	if (n_empty == 0)
		return;

	/* the n_empty farthest points, kept sorted descending (n_empty < k) */
	far = palloc(sizeof(int64) * n_empty);
	for (i = 0; i < n; i++)
	{
		int			pos = nfar;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		while (pos > 0)
		{
			int64		o = far[pos - 1];
			bool		before;

			if (dist[i] != dist[o])
				before = dist[i] > dist[o];
			else
			{
				int			c;

				before = false;
				for (c = 0; c < d; c++)
				{
					if (x[i * d + c] != x[o * d + c])
					{
						before = x[i * d + c] > x[o * d + c];
						break;
					}
				}
			}
			if (!before)
				break;
			pos--;
		}
		if (pos >= n_empty)
			continue;
		if (nfar < n_empty)
			nfar++;
		memmove(far + pos + 1, far + pos, sizeof(int64) * (nfar - 1 - pos));
		far[pos] = i;
	}

	i = 0;
	for (j = 0; j < k && i < nfar; j++)
	{
		const double *p;
		int			old;
		int			c;

		if (counts[j] != 0)
			continue;
		p = x + far[i] * d;
		old = labels[far[i]];
		for (c = 0; c < d; c++)
		{
			sums[(Size) old * d + c] -= p[c];
			sums[(Size) j * d + c] = p[c];
		}
		counts[old] -= 1;
		counts[j] = 1;
		i++;
	}
	(void) old_centers;
	pfree(far);
}

/*
 * Centroids from sums and counts; a cluster left without points (its only
 * point was moved to an empty one) keeps its previous centroid.
 */
static void
kmeans_average(int k, int d, const double *sums, const double *counts,
			   const double *old, double *centers)
{
	int			j,
				c;

	for (j = 0; j < k; j++)
		for (c = 0; c < d; c++)
			centers[(Size) j * d + c] = counts[j] > 0 ?
				sums[(Size) j * d + c] / counts[j] : old[(Size) j * d + c];
}

/*
 * Nearest (lowest index on ties) and second nearest squared distances from
 * x to the k centres, given transposed: d rows of kp values (k rounded up to
 * a multiple of KMEANS_BLOCK, padded with zeros).  The running minimum is
 * kept without branches: which centre wins is not predictable.
 */
static inline int
kmeans_two_nearest(const double *restrict x, const double *restrict ct, int k, int kp,
				   int d, double *b1, double *b2)
{
	int			best = 0;
	double		m1 = 0,
				m2 = DBL_MAX;
	int			jb;

	for (jb = 0; jb < kp; jb += KMEANS_BLOCK)
	{
		double		acc[KMEANS_BLOCK];
		int			lim = Min(KMEANS_BLOCK, k - jb);
		int			jj = 0;

		kmeans_block_sqdist(x, ct + jb, kp, d, acc);
		if (jb == 0)
		{
			m1 = acc[0];
			jj = 1;
		}
		for (; jj < lim; jj++)
		{
			double		v = acc[jj];
			bool		lt = v < m1;
			double		hi = v < m1 ? m1 : v;

			/* v below m1: m2 becomes m1; else m2 = min(m2, v) */
			m2 = hi < m2 ? hi : m2;
			best = lt ? jb + jj : best;
			m1 = lt ? v : m1;
		}
	}
	*b1 = m1;
	*b2 = m2;
	return best;
}

/* Centres transposed into d rows of kp values, zero-padded. */
static void
kmeans_transpose(const double *centers, int k, int kp, int d, double *ct)
{
	int			j,
				c;

	memset(ct, 0, sizeof(double) * kp * d);
	for (j = 0; j < k; j++)
		for (c = 0; c < d; c++)
			ct[(Size) c * kp + j] = centers[(Size) j * d + c];
}

/*
 * One k-means run from the given initial centres: Lloyd's or Hamerly's
 * iterations until convergence or max_iter, then a final assignment.
 * res->centers and res->labels must be allocated by the caller.
 *
 * Each iteration is one pass over the points.  Lloyd's computes every
 * distance and the cluster sums from scratch.  Hamerly's first moves each
 * point's bounds by the previous centroid shifts, and looks at the point's
 * features only when the bounds no longer prove its centre; the cluster sums
 * are then updated by the points that changed cluster (as in Hamerly's
 * paper), and recomputed from scratch in the pass after an empty cluster was
 * refilled (the refill moves a point's contribution without its label).
 */
void
kmeans_run(const double *x, int64 n, int d, int k, const double *init,
		   int max_iter, double tol_abs, int algorithm, KMeansResult *res)
{
	double	   *centers = res->centers;
	int		   *labels = res->labels;
	int			kp = (k + KMEANS_BLOCK - 1) / KMEANS_BLOCK * KMEANS_BLOCK;
	double	   *ct = palloc(sizeof(double) * kp * d);
	double	   *old = palloc(sizeof(double) * k * d);
	double	   *sums = palloc(sizeof(double) * k * d);
	double	   *counts = palloc(sizeof(double) * k);
	double	   *shift = palloc0(sizeof(double) * k);
	double	   *lshift = palloc0(sizeof(double) * k);
	double	   *half = palloc(sizeof(double) * k);
	double	   *upper = kmeans_alloc_doubles(n);
	double	   *lower = NULL;
	double		max1 = 0,
				max2 = 0;
	int			argmax1 = -1;
	bool		strict = false;
	bool		hamerly = (algorithm == KMEANS_ALGO_HAMERLY);
	bool		refilled = false;
	int			it;
	int64		i;
	double		inertia;

	memcpy(centers, init, sizeof(double) * k * d);
	kmeans_transpose(centers, k, kp, d, ct);
	if (hamerly)
		lower = kmeans_alloc_doubles(n);

	for (it = 0; it < max_iter; it++)
	{
		int64		changed = 0;
		double		shift_tot = 0;
		int			j;
		bool		full = !hamerly || it == 0;
		bool		resum = full || refilled;

		CHECK_FOR_INTERRUPTS();
		if (resum)
		{
			memset(sums, 0, sizeof(double) * k * d);
			memset(counts, 0, sizeof(double) * k);
		}

		if (full)
		{
			for (i = 0; i < n; i++)
			{
				const double *xi = x + i * d;
				double	   *s;
				double		b1,
							b2;
				int			a = kmeans_two_nearest(xi, ct, k, kp, d, &b1, &b2);
				int			c;

				if (it == 0 || labels[i] != a)
					changed++;
				labels[i] = a;
				if (hamerly)
				{
					upper[i] = sqrt(b1);
					lower[i] = k > 1 ? sqrt(b2) : DBL_MAX;
				}
				else
					upper[i] = b1;	/* exact, for empty-cluster relocation */
				s = sums + (Size) a * d;
				for (c = 0; c < d; c++)
					s[c] += xi[c];
				counts[a] += 1;
				if ((i & 0xFFFF) == 0)
					CHECK_FOR_INTERRUPTS();
			}
		}
		else
		{
			/* half the distance from each centre to its nearest other one */
			for (j = 0; j < k; j++)
			{
				double		m = DBL_MAX;
				int			o;

				for (o = 0; o < k; o++)
					if (o != j)
						m = Min(m, kmeans_sqdist(centers + (Size) j * d,
												 centers + (Size) o * d, d));
				half[j] = k > 1 ? 0.5 * sqrt(m) : DBL_MAX;
			}

			for (i = 0; i < n; i++)
			{
				int			a = labels[i];
				double		u = upper[i] + shift[a];
				double		l = lower[i] - lshift[a];
				double		m = Max(half[a], l);

				if (u > m)
				{
					const double *xi = x + i * d;

					u = sqrt(kmeans_sqdist(xi, centers + (Size) a * d, d));
					if (u > m)
					{
						double		b1,
									b2;
						int			best = kmeans_two_nearest(xi, ct, k, kp, d, &b1, &b2);

						if (best != a)
						{
							int			c;

							changed++;
							labels[i] = best;
							if (!resum)
							{
								double	   *from = sums + (Size) a * d;
								double	   *to = sums + (Size) best * d;

								for (c = 0; c < d; c++)
								{
									from[c] -= xi[c];
									to[c] += xi[c];
								}
								counts[a] -= 1;
								counts[best] += 1;
							}
							a = best;
						}
						u = sqrt(b1);
						l = sqrt(b2);
					}
				}
				upper[i] = u;
				lower[i] = l;
				if (resum)
				{
					const double *xi = x + i * d;
					double	   *s = sums + (Size) a * d;
					int			c;

					for (c = 0; c < d; c++)
						s[c] += xi[c];
					counts[a] += 1;
				}
				if ((i & 0xFFFF) == 0)
					CHECK_FOR_INTERRUPTS();
			}
		}

		/* update step */
		memcpy(old, centers, sizeof(double) * k * d);
		refilled = false;
		for (j = 0; j < k; j++)
		{
			if (counts[j] == 0)
			{
				/* relocation needs exact distances to the old centroids */
				double	   *exact = upper;

				if (hamerly)
				{
					exact = kmeans_alloc_doubles(n);
					for (i = 0; i < n; i++)
						exact[i] = kmeans_sqdist(x + i * d, old + (Size) labels[i] * d, d);
				}
				kmeans_relocate_empty(x, n, d, k, labels, exact, old, sums, counts);
				if (exact != upper)
					pfree(exact);
				refilled = true;
				break;
			}
		}
		kmeans_average(k, d, sums, counts, old, centers);
		kmeans_transpose(centers, k, kp, d, ct);

		max1 = max2 = 0;
		argmax1 = -1;
		for (j = 0; j < k; j++)
		{
			double		s2 = kmeans_sqdist(old + (Size) j * d, centers + (Size) j * d, d);

			shift[j] = sqrt(s2);
			shift_tot += s2;
			if (shift[j] > max1)
			{
				max2 = max1;
				max1 = shift[j];
				argmax1 = j;
			}
			else if (shift[j] > max2)
				max2 = shift[j];
		}
		/* the lower bound drops by the largest shift among the other centres */
		for (j = 0; j < k; j++)
			lshift[j] = j == argmax1 ? max2 : max1;

		if (it > 0 && changed == 0)
		{
			strict = true;
			break;
		}
		if (shift_tot <= tol_abs)
			break;
	}
	res->iterations = Min(it + 1, max_iter);

	/* a last assignment so that the labels match the final centroids */
	inertia = 0;
	for (i = 0; i < n; i++)
	{
		double		dd;

		if (!strict)
		{
			double		b2;

			labels[i] = kmeans_two_nearest(x + i * d, ct, k, kp, d, &dd, &b2);
		}
		else
			dd = kmeans_sqdist(x + i * d, centers + (Size) labels[i] * d, d);
		inertia += dd;
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	res->inertia = inertia;

	pfree(ct);
	pfree(old);
	pfree(sums);
	pfree(counts);
	pfree(shift);
	pfree(lshift);
	pfree(half);
	pfree(upper);
	if (lower)
		pfree(lower);
}

/*
 * Label every point with its nearest centre (lowest index on ties), as the
 * last assignment of kmeans_run does; returns the inertia.
 */
double
kmeans_assign_all(const double *x, int64 n, int d, int k, const double *centers,
				  int *labels)
{
	int			kp = (k + KMEANS_BLOCK - 1) / KMEANS_BLOCK * KMEANS_BLOCK;
	double	   *ct = palloc(sizeof(double) * kp * d);
	double		inertia = 0;
	int64		i;

	kmeans_transpose(centers, k, kp, d, ct);
	for (i = 0; i < n; i++)
	{
		double		b1,
					b2;

		labels[i] = kmeans_two_nearest(x + i * d, ct, k, kp, d, &b1, &b2);
		inertia += b1;
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(ct);
	return inertia;
}

/*
 * The silhouette score (Rousseeuw 1987) of a uniform sample of at most
 * `sample` points, computed exactly within the sample as scikit-learn's
 * silhouette_score(X, labels, sample_size=...) does; a point alone in its
 * cluster scores 0.
 */
double
kmeans_silhouette_sample(const double *x, int64 n, int d, int k, const int *labels,
						 int sample, KMeansRandom *rng)
{
	int64	   *idx;
	int64		m = Min((int64) sample, n);
	int64		i,
				a;
	double	   *sumd = palloc(sizeof(double) * k);
	double	   *cnt = palloc0(sizeof(double) * k);
	double		total = 0;

	/* partial Fisher-Yates shuffle for a sample without replacement */
	idx = (int64 *) MemoryContextAllocHuge(CurrentMemoryContext, mul_size(n, sizeof(int64)));
	for (i = 0; i < n; i++)
		idx[i] = i;
	for (i = 0; i < m; i++)
	{
		int64		r = i + (int64) (kmeans_random_double(rng) * (n - i));
		int64		t;

		if (r >= n)
			r = n - 1;
		t = idx[i];
		idx[i] = idx[r];
		idx[r] = t;
	}
	for (i = 0; i < m; i++)
		cnt[labels[idx[i]]] += 1;

	for (a = 0; a < m; a++)
	{
		const double *xa = x + idx[a] * d;
		int			la = labels[idx[a]];
		double		own,
					other = DBL_MAX;
		int			j;

		CHECK_FOR_INTERRUPTS();
		memset(sumd, 0, sizeof(double) * k);
		for (i = 0; i < m; i++)
			sumd[labels[idx[i]]] += sqrt(kmeans_sqdist(xa, x + idx[i] * d, d));
		if (cnt[la] <= 1)
			continue;			/* contributes 0 */
		own = sumd[la] / (cnt[la] - 1);
		for (j = 0; j < k; j++)
			if (j != la && cnt[j] > 0)
				other = Min(other, sumd[j] / cnt[j]);
		if (other == DBL_MAX)
			continue;
		if (Max(own, other) > 0)
			total += (other - own) / Max(own, other);
	}
	pfree(idx);
	pfree(sumd);
	pfree(cnt);
	return m > 0 ? total / m : 0;
}

/*
 * The simplified silhouette over all points: a = distance to the own
 * centroid, b = distance to the nearest other centroid, s = (b - a) / max(a, b).
 */
double
kmeans_simplified_silhouette(const double *x, int64 n, int d, int k,
							 const double *centers, const int *labels)
{
	double		total = 0;
	int64		i;

	if (k < 2)
		return 0;
	for (i = 0; i < n; i++)
	{
		const double *xi = x + i * d;
		double		own = sqrt(kmeans_sqdist(xi, centers + (Size) labels[i] * d, d));
		double		other = DBL_MAX;
		int			j;

		for (j = 0; j < k; j++)
			if (j != labels[i])
				other = Min(other, sqrt(kmeans_sqdist(xi, centers + (Size) j * d, d)));
		if (Max(own, other) > 0)
			total += (other - own) / Max(own, other);
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return total / n;
}
