/*
 * kmeans_step.c
 *	  k-means beyond one process's memory: aggregates whose state is a
 *	  concrete float8[] (so Citus pushes them down to the shards partially,
 *	  and parallel workers combine them without serial functions), and the
 *	  functions the driver segment.kmeans_fit_step() iterates with.
 *
 *	  kmeans_moments(features, model): count, mean and M2 per feature after
 *	  the model's log1p, for the z-score and the tolerance.
 *	  kmeans_step(features, model): one Lloyd iteration's partial result:
 *	  per centroid the count and the sum of its points, the inertia against
 *	  the current centroids, and the points farthest from their centroid
 *	  (for empty clusters, chosen exactly as the in-memory fit does).
 *	  kmeans_start / kmeans_update / kmeans_shift / kmeans_finish turn those
 *	  into models.
 *
 * Both transition functions update the state array in place: it is ours, in
 * the aggregate context, as quantile.c does.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "kmeans.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(segment_kmeans_moments_trans);
PG_FUNCTION_INFO_V1(segment_kmeans_moments_combine);
PG_FUNCTION_INFO_V1(segment_kmeans_step_trans);
PG_FUNCTION_INFO_V1(segment_kmeans_step_combine);
PG_FUNCTION_INFO_V1(segment_kmeans_start);
PG_FUNCTION_INFO_V1(segment_kmeans_update);
PG_FUNCTION_INFO_V1(segment_kmeans_shift);
PG_FUNCTION_INFO_V1(segment_kmeans_finish);

/* State tags, so that one aggregate's state is never read as the other's. */
#define KMEANS_MOMENTS_TAG 71001.0
#define KMEANS_STEP_TAG 71002.0

/* moments layout: tag, dim, n, mean[dim], m2[dim] */
#define MOM_HEADER 3
/* step layout: tag, k, dim, n, inertia, then k * (count, sum[dim]),
 * then k * (dist, label, point[dim]) sorted by distance descending */
#define STEP_HEADER 5
#define STEP_CLUSTER(s, d, j) ((s) + STEP_HEADER + (Size) (j) * (1 + (d)))
#define STEP_FAR(s, k, d, i) ((s) + STEP_HEADER + (Size) (k) * (1 + (d)) + (Size) (i) * (2 + (d)))

/* A zeroed one-dimensional float8 array of n elements in CurrentMemoryContext. */
static ArrayType *
kmeans_float8_array(Size n)
{
	Size		nbytes = add_size(ARR_OVERHEAD_NONULLS(1), mul_size(n, sizeof(float8)));
	ArrayType  *a;

	if (n > (Size) PG_INT32_MAX || nbytes > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k-means step state is too large"),
				 errhint("Use fewer clusters or features.")));
	a = palloc0(nbytes);
	SET_VARSIZE(a, nbytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = FLOAT8OID;
	ARR_DIMS(a)[0] = (int) n;
	ARR_LBOUND(a)[0] = 1;
	return a;
}

/* Counts above 2^53 are not exact in a double. */
#define KMEANS_MAX_COUNT 9007199254740992.0

/* Whether v is a whole number in [lo, hi] (false for NaN and the infinities). */
static bool
kmeans_whole_in(double v, double lo, double hi)
{
	return v >= lo && v <= hi && v == floor(v);
}

static void
kmeans_bad_state(const char *which)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid %s state", which),
			 errdetail("The state must be a float8 array written by the %s aggregate.", which)));
}

/* The values of a state array, after checking its tag and length. */
static double *
kmeans_state_values(ArrayType *a, double tag, const char *which, int *k, int *d)
{
	double	   *s;
	int			len;

	if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID ||
		ARR_DIMS(a)[0] < STEP_HEADER)
		kmeans_bad_state(which);
	s = (double *) ARR_DATA_PTR(a);
	len = ARR_DIMS(a)[0];
	if (s[0] != tag)
		kmeans_bad_state(which);
	/* k, the dimension and the count are whole numbers, never NaN */
	if (tag == KMEANS_MOMENTS_TAG)
	{
		if (!kmeans_whole_in(s[1], 1, KMEANS_MAX_DIM) || !kmeans_whole_in(s[2], 0, KMEANS_MAX_COUNT) ||
			len != MOM_HEADER + 2 * (int) s[1])
			kmeans_bad_state(which);
		*k = 0;
		*d = (int) s[1];
	}
	else
	{
		if (!kmeans_whole_in(s[1], 1, KMEANS_MAX_K) || !kmeans_whole_in(s[2], 1, KMEANS_MAX_DIM) ||
			!kmeans_whole_in(s[3], 0, KMEANS_MAX_COUNT) || !(s[4] >= 0 && isfinite(s[4])) ||
			len != STEP_HEADER + (int) s[1] * (3 + 2 * (int) s[2]))
			kmeans_bad_state(which);
		*k = (int) s[1];
		*d = (int) s[2];
	}
	return s;
}

/*
 * Check the means and M2 of a moments state: never NaN, M2 >= 0; an
 * infinity is what huge features overflow to, an error of its own.
 */
static void
kmeans_moments_check(const double *s, int d)
{
	int			c;

	for (c = 0; c < d; c++)
		if (isnan(s[MOM_HEADER + c]) || !(s[MOM_HEADER + d + c] >= 0))
			kmeans_bad_state("kmeans_moments");
	for (c = 0; c < 2 * d; c++)
		if (isinf(s[MOM_HEADER + c]))
			kmeans_too_large();
}

/*
 * Check the body of a step state before a model is built from it: whole
 * counts adding up to n, finite sums, and a farthest list of finite points
 * with labels in 0..k-1, empty slots (distance -1) only at its end.
 */
static void
kmeans_step_check(const double *s, int k, int d)
{
	double		total = 0;
	bool		empty = false;
	int			j,
				c;

	for (j = 0; j < k; j++)
	{
		const double *cl = STEP_CLUSTER(s, d, j);

		if (!kmeans_whole_in(cl[0], 0, KMEANS_MAX_COUNT))
			kmeans_bad_state("kmeans_step");
		total += cl[0];
		for (c = 0; c < d; c++)
			if (!isfinite(cl[1 + c]))
				kmeans_bad_state("kmeans_step");
	}
	if (total != s[3])
		kmeans_bad_state("kmeans_step");
	for (j = 0; j < k; j++)
	{
		const double *f = STEP_FAR(s, k, d, j);

		if (f[0] == -1)
		{
			empty = true;
			continue;
		}
		if (empty || !(f[0] >= 0 && isfinite(f[0])) || !kmeans_whole_in(f[1], 0, k - 1))
			kmeans_bad_state("kmeans_step");
		for (c = 0; c < d; c++)
			if (!isfinite(f[2 + c]))
				kmeans_bad_state("kmeans_step");
	}
}

/* kmeans_moments transition: Welford's update of count, mean, M2. */
Datum
segment_kmeans_moments_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ArrayType  *state;
	KMeansModel *m;
	double	   *s;
	const double *raw;
	double		buf[KMEANS_MAX_DIM];
	int			k,
				d,
				dim,
				c;
	double		n;

	aggcxt = segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k-means model must not be null")));
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	m = PG_GETARG_KMEANS_MODEL_P(2);
	if (PG_ARGISNULL(0))
	{
		MemoryContext old;

		kmeans_model_check(m);
		old = MemoryContextSwitchTo(aggcxt);
		state = kmeans_float8_array(MOM_HEADER + 2 * m->dim);
		MemoryContextSwitchTo(old);
		s = (double *) ARR_DATA_PTR(state);
		s[0] = KMEANS_MOMENTS_TAG;
		s[1] = m->dim;
	}
	else
		state = PG_GETARG_ARRAYTYPE_P(0);
	s = kmeans_state_values(state, KMEANS_MOMENTS_TAG, "kmeans_moments", &k, &d);
	if (d != m->dim)
		kmeans_bad_state("kmeans_moments");
	raw = kmeans_check_features(PG_GETARG_ARRAYTYPE_P(1), d, &dim);
	kmeans_transform(m, raw, buf);

	n = s[2] + 1;
	s[2] = n;
	for (c = 0; c < d; c++)
	{
		double		delta = buf[c] - s[MOM_HEADER + c];

		s[MOM_HEADER + c] += delta / n;
		s[MOM_HEADER + d + c] += delta * (buf[c] - s[MOM_HEADER + c]);
	}
	PG_RETURN_ARRAYTYPE_P(state);
}

/* kmeans_moments combine: Chan et al.'s pairwise merge of mean and M2. */
Datum
segment_kmeans_moments_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ArrayType  *left;
	ArrayType  *right;
	double	   *l,
			   *r;
	int			k,
				d,
				rd,
				c;
	double		n;

	aggcxt = segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	right = PG_GETARG_ARRAYTYPE_P(1);
	r = kmeans_state_values(right, KMEANS_MOMENTS_TAG, "kmeans_moments", &k, &rd);
	if (PG_ARGISNULL(0))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcxt);

		left = (ArrayType *) palloc(VARSIZE(right));
		memcpy(left, right, VARSIZE(right));
		MemoryContextSwitchTo(old);
		PG_RETURN_ARRAYTYPE_P(left);
	}
	left = PG_GETARG_ARRAYTYPE_P(0);
	l = kmeans_state_values(left, KMEANS_MOMENTS_TAG, "kmeans_moments", &k, &d);
	if (d != rd)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("feature vectors must all have the same length"),
				 errdetail("Expected %d features, got %d.", d, rd)));
	n = l[2] + r[2];
	if (r[2] == 0)
		PG_RETURN_ARRAYTYPE_P(left);
	for (c = 0; c < d; c++)
	{
		double		delta = r[MOM_HEADER + c] - l[MOM_HEADER + c];

		l[MOM_HEADER + d + c] += r[MOM_HEADER + d + c] + delta * delta * l[2] * r[2] / n;
		l[MOM_HEADER + c] += delta * r[2] / n;
	}
	l[2] = n;
	PG_RETURN_ARRAYTYPE_P(left);
}

/*
 * Whether a farthest-point candidate (dist a, point pa) ranks before another:
 * larger distance first, then larger features, as kmeans_relocate_empty.
 */
static bool
kmeans_far_before(double a, const double *pa, double b, const double *pb, int d)
{
	int			c;

	if (a != b)
		return a > b;
	for (c = 0; c < d; c++)
		if (pa[c] != pb[c])
			return pa[c] > pb[c];
	return false;
}

/* Insert a candidate into the sorted farthest list (k slots, dist -1 = empty). */
static void
kmeans_far_insert(double *s, int k, int d, double dist, double label, const double *p)
{
	int			pos = k;
	double	   *slot;

	while (pos > 0)
	{
		double	   *o = STEP_FAR(s, k, d, pos - 1);

		if (o[0] >= 0 && !kmeans_far_before(dist, p, o[0], o + 2, d))
			break;
		pos--;
	}
	if (pos >= k)
		return;
	/* shift the tail down one slot, dropping the last */
	if (pos < k - 1)
		memmove(STEP_FAR(s, k, d, pos + 1), STEP_FAR(s, k, d, pos),
				sizeof(double) * (2 + d) * (k - 1 - pos));
	slot = STEP_FAR(s, k, d, pos);
	slot[0] = dist;
	slot[1] = label;
	memcpy(slot + 2, p, sizeof(double) * d);
}

/* A fresh step state for a model's k and dim. */
static ArrayType *
kmeans_step_new(int k, int d)
{
	ArrayType  *state = kmeans_float8_array(STEP_HEADER + (Size) k * (3 + 2 * d));
	double	   *s = (double *) ARR_DATA_PTR(state);
	int			i;

	s[0] = KMEANS_STEP_TAG;
	s[1] = k;
	s[2] = d;
	for (i = 0; i < k; i++)
		STEP_FAR(s, k, d, i)[0] = -1;
	return state;
}

/* kmeans_step transition: assign one point to the model's nearest centroid. */
Datum
segment_kmeans_step_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ArrayType  *state;
	KMeansModel *m;
	double	   *s;
	const double *raw;
	double		z[KMEANS_MAX_DIM];
	double		dist;
	double	   *cl;
	int			k,
				d,
				dim,
				j,
				c;

	aggcxt = segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k-means model must not be null")));
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	m = PG_GETARG_KMEANS_MODEL_P(2);
	if (PG_ARGISNULL(0))
	{
		MemoryContext old;

		/* validate the model once per group, not per row */
		kmeans_model_check(m);
		old = MemoryContextSwitchTo(aggcxt);
		state = kmeans_step_new(m->k, m->dim);
		MemoryContextSwitchTo(old);
	}
	else
		state = PG_GETARG_ARRAYTYPE_P(0);
	s = kmeans_state_values(state, KMEANS_STEP_TAG, "kmeans_step", &k, &d);
	if (k != m->k || d != m->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model must be the same for all rows")));
	raw = kmeans_check_features(PG_GETARG_ARRAYTYPE_P(1), d, &dim);
	kmeans_transform(m, raw, z);
	j = kmeans_nearest(z, KMEANS_CENTROIDS(m), k, d, &dist);

	if (!isfinite(dist) || !isfinite(s[4] + dist))
		kmeans_too_large();
	s[3] += 1;
	s[4] += dist;
	cl = STEP_CLUSTER(s, d, j);
	cl[0] += 1;
	for (c = 0; c < d; c++)
		cl[1 + c] += z[c];
	if (k > 1)
		kmeans_far_insert(s, k, d, dist, j, z);
	PG_RETURN_ARRAYTYPE_P(state);
}

/* kmeans_step combine: add counts and sums, merge the farthest lists. */
Datum
segment_kmeans_step_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ArrayType  *left;
	ArrayType  *right;
	double	   *l,
			   *r;
	int			k,
				d,
				rk,
				rd,
				i;

	aggcxt = segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	right = PG_GETARG_ARRAYTYPE_P(1);
	r = kmeans_state_values(right, KMEANS_STEP_TAG, "kmeans_step", &rk, &rd);
	if (PG_ARGISNULL(0))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcxt);

		left = (ArrayType *) palloc(VARSIZE(right));
		memcpy(left, right, VARSIZE(right));
		MemoryContextSwitchTo(old);
		PG_RETURN_ARRAYTYPE_P(left);
	}
	left = PG_GETARG_ARRAYTYPE_P(0);
	l = kmeans_state_values(left, KMEANS_STEP_TAG, "kmeans_step", &k, &d);
	if (k != rk || d != rd)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model must be the same for all rows")));
	l[3] += r[3];
	l[4] += r[4];
	for (i = 0; i < k * (1 + d); i++)
		l[STEP_HEADER + i] += r[STEP_HEADER + i];
	for (i = 0; i < k; i++)
	{
		double	   *f = STEP_FAR(r, k, d, i);

		if (f[0] < 0)
			break;
		kmeans_far_insert(l, k, d, f[0], f[1], f + 2);
	}
	PG_RETURN_ARRAYTYPE_P(left);
}

/*
 * kmeans_start(k, dim, options, moments): the driver's first model, with the
 * transform (log1p flags; z-score and tolerance from the moments when given)
 * and the initial centroids of option "init" (raw units) when given.
 */
Datum
segment_kmeans_start(PG_FUNCTION_ARGS)
{
	int			k = PG_GETARG_INT32(0);
	int			dim = PG_GETARG_INT32(1);
	Jsonb	   *options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	KMeansOptions opts;
	KMeansModel *m;
	int			c,
				j;

	kmeans_check_k(k);
	if (dim < 1 || dim > KMEANS_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of features must be between 1 and %d", KMEANS_MAX_DIM)));
	kmeans_parse_options(options, &opts);
	if (opts.n_log1p > 0 && opts.n_log1p != dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means option \"log1p\" must have one value per feature"),
				 errdetail("Got %d values for %d features.", opts.n_log1p, dim)));
	m = kmeans_model_alloc(k, dim);
	m->flags = KMEANS_FLAG_STEP | KMEANS_FLAG_LLOYD;
	m->seed = opts.seed;
	m->n_init = opts.n_init;
	m->max_iter = opts.max_iter;
	m->tol = opts.tol;
	for (c = 0; c < dim; c++)
	{
		KMEANS_LOG1P(m)[c] = (opts.n_log1p > 0 ? opts.log1p[c] : opts.log1p_all) ? 1 : 0;
		KMEANS_SCALE(m)[c] = 1;
	}

	if (!PG_ARGISNULL(3))
	{
		int			mk,
					md;
		double	   *s = kmeans_state_values(PG_GETARG_ARRAYTYPE_P(3), KMEANS_MOMENTS_TAG,
											"kmeans_moments", &mk, &md);
		double		n = s[2];
		double		meanvar = 0;

		kmeans_moments_check(s, md);
		if (md != dim)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("feature vectors must all have the same length"),
					 errdetail("Expected %d features, got %d.", dim, md)));
		if (n < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no feature vectors to cluster")));
		if (k > n)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("number of clusters k must not exceed the number of points"),
					 errdetail("k is %d, there are %.0f points.", k, n)));
		m->n = (int64) n;
		for (c = 0; c < dim; c++)
		{
			double		var = s[MOM_HEADER + dim + c] / n;

			if (opts.standardize)
			{
				double		sd = sqrt(var);

				KMEANS_CENTER(m)[c] = s[MOM_HEADER + c];
				KMEANS_SCALE(m)[c] = sd < 10 * DBL_EPSILON ? 1 : sd;
			}
			meanvar += var / (KMEANS_SCALE(m)[c] * KMEANS_SCALE(m)[c]);
		}
		if (!isfinite(meanvar))
			kmeans_too_large();
		m->tol_abs = opts.tol * meanvar / dim;
		if (opts.standardize)
			m->flags |= KMEANS_FLAG_STANDARDIZE;
	}

	if (opts.init)
	{
		if (opts.init_k != k || opts.init_dim != dim)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means option \"init\" must hold k centroids of the features' length"),
					 errdetail("Got %d centroids of %d values for k = %d and %d features.",
							   opts.init_k, opts.init_dim, k, dim)));
		for (j = 0; j < k; j++)
		{
			for (c = 0; c < dim; c++)
				if (!isfinite(opts.init[(Size) j * dim + c]))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("initial centroids must be finite")));
			kmeans_transform(m, opts.init + (Size) j * dim, KMEANS_CENTROIDS(m) + (Size) j * dim);
		}
	}
	PG_RETURN_POINTER(kmeans_model_check(m));
}

/* The step state of a model, checked against its shape. */
static double *
kmeans_step_for(KMeansModel *m, ArrayType *state)
{
	int			k,
				d;
	double	   *s = kmeans_state_values(state, KMEANS_STEP_TAG, "kmeans_step", &k, &d);

	if (k == m->k && d == m->dim)
		kmeans_step_check(s, k, d);
	if (k != m->k || d != m->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means step state does not match the model"),
				 errdetail("The state has k = %d and %d features, the model k = %d and %d.",
						   k, d, m->k, m->dim)));
	return s;
}

/*
 * kmeans_update(model, step): the next model of Lloyd's iteration: new
 * centroids from the step's sums, empty clusters moved to the farthest
 * points, iterations + 1.
 */
Datum
segment_kmeans_update(PG_FUNCTION_ARGS)
{
	KMeansModel *m = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(0));
	KMeansModel *out;
	double	   *s = kmeans_step_for(m, PG_GETARG_ARRAYTYPE_P(1));
	int			k = m->k,
				d = m->dim;
	double	   *sums = palloc(sizeof(double) * k * d);
	double	   *counts = palloc(sizeof(double) * k);
	int			j,
				c,
				f = 0;

	for (j = 0; j < k; j++)
	{
		counts[j] = STEP_CLUSTER(s, d, j)[0];
		memcpy(sums + (Size) j * d, STEP_CLUSTER(s, d, j) + 1, sizeof(double) * d);
	}
	/* empty clusters take the farthest points, as kmeans_relocate_empty */
	for (j = 0; j < k; j++)
	{
		double	   *p;
		int			old;

		if (counts[j] != 0)
			continue;
		if (f >= k || STEP_FAR(s, k, d, f)[0] < 0)
			break;
		p = STEP_FAR(s, k, d, f);
		/* a whole number in 0..k-1: kmeans_step_check */
		old = (int) p[1];
		if (old < 0 || old >= k)
			kmeans_bad_state("kmeans_step");
		for (c = 0; c < d; c++)
		{
			sums[(Size) old * d + c] -= p[2 + c];
			sums[(Size) j * d + c] = p[2 + c];
		}
		counts[old] -= 1;
		counts[j] = 1;
		f++;
	}

	out = palloc(VARSIZE(m));
	memcpy(out, m, VARSIZE(m));
	for (j = 0; j < k; j++)
	{
		for (c = 0; c < d; c++)
			if (counts[j] > 0)
				KMEANS_CENTROIDS(out)[(Size) j * d + c] = sums[(Size) j * d + c] / counts[j];
		KMEANS_SIZES(out)[j] = counts[j];
	}
	if (m->iterations >= PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k-means model has too many iterations")));
	out->iterations = m->iterations + 1;
	out->n = (int64) s[3];
	out->inertia = s[4];
	PG_RETURN_POINTER(kmeans_model_check(out));
}

/* kmeans_shift(a, b): sum of squared distances between matching centroids. */
Datum
segment_kmeans_shift(PG_FUNCTION_ARGS)
{
	KMeansModel *a = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(0));
	KMeansModel *b = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(1));
	double		total = 0;
	int			j;

	if (a->k != b->k || a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means models must have the same k and number of features")));
	for (j = 0; j < a->k; j++)
		total += kmeans_sqdist(KMEANS_CENTROIDS(a) + (Size) j * a->dim,
							   KMEANS_CENTROIDS(b) + (Size) j * a->dim, a->dim);
	PG_RETURN_FLOAT8(total);
}

/*
 * kmeans_finish(model, step): the model with the inertia and cluster sizes
 * of a step computed with its own (final) centroids.
 */
Datum
segment_kmeans_finish(PG_FUNCTION_ARGS)
{
	KMeansModel *m = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(0));
	double	   *s = kmeans_step_for(m, PG_GETARG_ARRAYTYPE_P(1));
	KMeansModel *out = palloc(VARSIZE(m));
	int			j;

	memcpy(out, m, VARSIZE(m));
	for (j = 0; j < m->k; j++)
		KMEANS_SIZES(out)[j] = STEP_CLUSTER(s, m->dim, j)[0];
	out->n = (int64) s[3];
	out->inertia = s[4];
	PG_RETURN_POINTER(kmeans_model_check(out));
}
