/*
 * kmeans_fit.c
 *	  The in-memory k-means aggregates: kmeans(features, k [, options]) fits a
 *	  model, kmeans_k_scores(features, k_max [, options]) fits k = 1..k_max
 *	  and scores each (inertia, silhouette).
 *
 * Both collect every point (k-means needs them all in memory) in a float8[]
 * state (kmeans_state.c), limited to maintenance_work_mem as pgvector's
 * IVFFlat build is, and to the 1 GB of an array: a fit is a maintenance-like
 * job, and data beyond that goes to the step aggregate and its driver
 * instead.  The final functions here prepare the points (transform, order)
 * and run the restarts (kmeans_parallel.c, kmeans_core.c).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "kmeans.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(segment_kmeans_final);
PG_FUNCTION_INFO_V1(segment_kmeans_scores_final);

/*
 * The points are put in lexicographic order (see kmeans_prepare) by sorting
 * (first feature, row number) pairs, which compare without touching the
 * rows unless the first features are equal, and then moving the rows.
 * kmeans_item_cmp orders the rows of a run of equal first features.
 */
typedef struct KMeansSortItem
{
	uint64		key;			/* the row's first feature, see kmeans_sort_key */
	int64		row;
} KMeansSortItem;

typedef struct KMeansSortArg
{
	const double *z;
	int			d;
} KMeansSortArg;

/* A uint64 whose unsigned order is the order of the doubles (-0 as +0). */
static inline uint64
kmeans_sort_key(double v)
{
	uint64		u;

	if (v == 0)
		v = 0;
	memcpy(&u, &v, sizeof(u));
	return (u & UINT64CONST(0x8000000000000000)) ? ~u : u | UINT64CONST(0x8000000000000000);
}

/* Lexicographic order of two rows, the first feature compared first. */
static inline int
kmeans_item_cmp(const KMeansSortItem *a, const KMeansSortItem *b, KMeansSortArg *arg)
{
	const double *x;
	const double *y;
	int			c;

	if (a->key < b->key)
		return -1;
	if (a->key > b->key)
		return 1;
	x = arg->z + a->row * arg->d;
	y = arg->z + b->row * arg->d;
	for (c = 1; c < arg->d; c++)
	{
		if (x[c] < y[c])
			return -1;
		if (x[c] > y[c])
			return 1;
	}
	return 0;
}

#define ST_SORT kmeans_sort_items
#define ST_ELEMENT_TYPE KMeansSortItem
#define ST_COMPARE_ARG_TYPE KMeansSortArg
#define ST_COMPARE(a, b, arg) kmeans_item_cmp(a, b, arg)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * Bucket of value v among nb buckets evenly spread over [lo, lo + (nb - 1) /
 * scale]: a map that keeps the order, as rounding is monotonic.
 */
static inline int64
kmeans_bucket(double v, double lo, double scale, int64 nb)
{
	return Min((int64) ((v - lo) * scale), nb - 1);
}

/* The scale for nb buckets over [lo, hi]; 0 (one bucket) for an infinite range. */
static inline double
kmeans_bucket_scale(double lo, double hi, int64 nb)
{
	return (hi > lo && isfinite(hi - lo)) ? (double) (nb - 1) / (hi - lo) : 0;
}

/*
 * Where each of nb buckets by the first feature starts among the m rows:
 * starts[b] for b in 0..nb (starts[nb] = m), with *lo and *scale for
 * kmeans_bucket().  One pass for the range, one for the counts.
 */
static void
kmeans_bucket_starts(const double *rows, int64 m, int d, int64 nb,
					 double *lo, double *scale, int64 *starts)
{
	double		min = rows[0],
				max = rows[0];
	int64		i,
				b;

	for (i = 1; i < m; i++)
	{
		min = Min(min, rows[i * d]);
		max = Max(max, rows[i * d]);
	}
	*lo = min;
	*scale = kmeans_bucket_scale(min, max, nb);
	memset(starts, 0, sizeof(int64) * (nb + 1));
	for (i = 0; i < m; i++)
		starts[kmeans_bucket(rows[i * d], min, *scale, nb) + 1]++;
	for (b = 0; b < nb; b++)
		starts[b + 1] += starts[b];
}

/*
 * Sort the m rows at rows in place, lexicographically, with room for m
 * items in items and m rows in tmp: the (first feature, row) pairs go to
 * about m / 4 buckets by the first feature's value, each bucket is sorted on
 * its own (equal first features by the rest of the row), and the rows are
 * put in that order.  Called on pieces that fit in the CPU caches.
 */
static void
kmeans_sort_rows(double *rows, int64 m, int d, KMeansSortItem *items, double *tmp,
				 int64 *pos)
{
	int64		nb = m / 4 + 1;
	double		lo,
				scale;
	KMeansSortArg arg = {rows, d};
	int64		i,
				b;

	kmeans_bucket_starts(rows, m, d, nb, &lo, &scale, pos);
	/* pos[b] moves from the start of bucket b to its end, the next start */
	for (i = 0; i < m; i++)
	{
		KMeansSortItem *it = &items[pos[kmeans_bucket(rows[i * d], lo, scale, nb)]++];

		it->key = kmeans_sort_key(rows[i * d]);
		it->row = i;
	}
	for (b = 0; b < nb; b++)
	{
		int64		begin = b == 0 ? 0 : pos[b - 1];

		if (pos[b] - begin > 1)
			kmeans_sort_items(items + begin, pos[b] - begin, &arg);
		if ((b & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	for (i = 0; i < m; i++)
		memcpy(tmp + i * d, rows + items[i].row * d, sizeof(double) * d);
	memcpy(rows, tmp, mul_size(mul_size(m, d), sizeof(double)));
}

/*
 * The n rows of z in lexicographic order, in a new array (z is freed).  A
 * first pass moves the rows to KMEANS_SORT_PIECES pieces by the first
 * feature's value (a map that keeps the order), writing a few streams in
 * order; each piece, a few thousand rows that fit in the CPU caches, is then
 * sorted in place.  Random accesses to all the points (a radix sort's
 * scatter, the final gather of the rows) cost a cache and TLB miss each,
 * and made the sort grow faster than the points.  Skewed values only make
 * some pieces larger.
 */
static double *
kmeans_sort_points(double *z, int64 n, int d)
{
	int64		np = Min((int64) KMEANS_SORT_PIECES, n / 16 + 1);
	int64	   *start = palloc(sizeof(int64) * (np + 1));
	double	   *out = MemoryContextAllocHuge(CurrentMemoryContext,
											 mul_size(mul_size(n, d), sizeof(double)));
	double		lo,
				scale;
	int64		largest = 0;
	int64		i,
				p;
	KMeansSortItem *items;
	double	   *tmp;
	int64	   *pos;

	kmeans_bucket_starts(z, n, d, np, &lo, &scale, start);
	for (p = 0; p < np; p++)
		largest = Max(largest, start[p + 1] - start[p]);
	CHECK_FOR_INTERRUPTS();
	for (i = 0; i < n; i++)
		memcpy(out + start[kmeans_bucket(z[i * d], lo, scale, np)]++ * d, z + i * d,
			   sizeof(double) * d);
	pfree(z);

	/* start[p] is now the end of piece p */
	items = MemoryContextAllocHuge(CurrentMemoryContext,
								   mul_size(largest, sizeof(KMeansSortItem)));
	tmp = MemoryContextAllocHuge(CurrentMemoryContext,
								 mul_size(mul_size(largest, d), sizeof(double)));
	pos = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(largest / 4 + 2, sizeof(int64)));
	for (p = 0; p < np; p++)
	{
		int64		begin = p == 0 ? 0 : start[p - 1];

		CHECK_FOR_INTERRUPTS();
		if (start[p] - begin > 1)
			kmeans_sort_rows(out + begin * d, start[p] - begin, d, items, tmp, pos);
	}
	pfree(items);
	pfree(tmp);
	pfree(pos);
	pfree(start);
	return out;
}

/*
 * Build a model holding the transform for these options (log1p, z-score),
 * and the transformed points; also sets tol_abs from their variance.
 */
static KMeansModel *
kmeans_prepare(const KMeansPoints *st, KMeansOptions *opts, int k, double **zout)
{
	int			d = st->dim;
	int64		n = st->n;
	KMeansModel *m = kmeans_model_alloc(k, d);
	double	   *z;
	double	   *mean = palloc0(sizeof(double) * d);
	double	   *var = palloc0(sizeof(double) * d);
	double		meanvar = 0;
	int64		i;
	int			c;

	if (opts->n_log1p > 0 && opts->n_log1p != d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means option \"log1p\" must have one value per feature"),
				 errdetail("Got %d values for %d features.", opts->n_log1p, d)));
	for (c = 0; c < d; c++)
	{
		KMEANS_LOG1P(m)[c] = (opts->n_log1p > 0 ? opts->log1p[c] : opts->log1p_all) ? 1 : 0;
		KMEANS_SCALE(m)[c] = 1;
	}

	/* log1p first: the z-score is taken of the logged values */
	z = MemoryContextAllocHuge(CurrentMemoryContext,
							   mul_size(mul_size(n, d), sizeof(double)));
	for (i = 0; i < n; i++)
	{
		/* the transition stores finite points only: a state may be crafted */
		for (c = 0; c < d; c++)
			if (!isfinite(st->points[i * d + c]))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid kmeans aggregate state"),
						 errdetail("Point " INT64_FORMAT " has a non-finite feature.", i + 1)));
		kmeans_transform(m, st->points + i * d, z + i * d);
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	/*
	 * Parallel workers hand over their rows in any order, and k-means++
	 * picks points by position: sort the rows so that a seed gives the same
	 * model however the rows arrived.
	 */
	{
		double		ts = kmeans_clock();

		z = kmeans_sort_points(z, n, d);
		elog(DEBUG2, "k-means sort: %.3f s", kmeans_clock() - ts);
	}

	/* two-pass mean and (population) variance */
	CHECK_FOR_INTERRUPTS();
	for (i = 0; i < n; i++)
		for (c = 0; c < d; c++)
			mean[c] += z[i * d + c];
	for (c = 0; c < d; c++)
		mean[c] /= n;
	for (i = 0; i < n; i++)
		for (c = 0; c < d; c++)
		{
			double		t = z[i * d + c] - mean[c];

			var[c] += t * t;
		}
	for (c = 0; c < d; c++)
	{
		var[c] /= n;
		if (!isfinite(var[c]) || !isfinite(mean[c]))
			kmeans_too_large();
	}

	if (opts->standardize)
	{
		m->flags |= KMEANS_FLAG_STANDARDIZE;
		for (c = 0; c < d; c++)
		{
			double		sd = sqrt(var[c]);

			KMEANS_CENTER(m)[c] = mean[c];
			/* a constant feature keeps scale 1, as in scikit-learn */
			KMEANS_SCALE(m)[c] = sd < 10 * DBL_EPSILON ? 1 : sd;
		}
		for (i = 0; i < n; i++)
			for (c = 0; c < d; c++)
				z[i * d + c] = (z[i * d + c] - KMEANS_CENTER(m)[c]) / KMEANS_SCALE(m)[c];
		for (c = 0; c < d; c++)
			meanvar += var[c] / (KMEANS_SCALE(m)[c] * KMEANS_SCALE(m)[c]);
	}
	else
		for (c = 0; c < d; c++)
			meanvar += var[c];
	meanvar /= d;

	/*
	 * No squared distance, nor the inertia, may overflow: every coordinate
	 * below sqrt(DBL_MAX / (4 d n)) in magnitude guarantees it.
	 */
	{
		double		limit = sqrt(DBL_MAX / (4.0 * d * (double) n));

		for (i = 0; i < n * d; i++)
			if (!(fabs(z[i]) < limit))
				kmeans_too_large();
	}

	m->n = n;
	m->seed = opts->seed;
	m->n_init = opts->n_init;
	m->max_iter = opts->max_iter;
	m->tol = opts->tol;
	m->tol_abs = opts->tol * meanvar;
	if (opts->algorithm == KMEANS_ALGO_LLOYD)
		m->flags |= KMEANS_FLAG_LLOYD;
	pfree(mean);
	pfree(var);
	*zout = z;
	return m;
}

static void
kmeans_check_k_le_n(int k, int64 n)
{
	if (k > n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of clusters k must not exceed the number of points"),
				 errdetail("k is %d, there are " INT64_FORMAT " points.", k, n)));
}

/*
 * Fit k clusters on the transformed points z: n_init runs (k-means++ or the
 * given initial centroids), keeping the lowest inertia, in parallel workers
 * when worth it.  Fills the model's centroids, sizes, inertia and
 * iterations; returns the labels.
 */
static int *
kmeans_fit_points(const double *z, int64 n, int d, int k, KMeansOptions *opts,
				  KMeansModel *m)
{
	int		   *labels;
	double	   *init = NULL;
	int			r;
	int64		i;
	int			nonempty = 0;
	double		t0,
				t1;

	kmeans_check_k_le_n(k, n);
	if (opts->init)
	{
		if (opts->init_k != k || opts->init_dim != d)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means option \"init\" must hold k centroids of the features' length"),
					 errdetail("Got %d centroids of %d values for k = %d and %d features.",
							   opts->init_k, opts->init_dim, k, d)));
		init = palloc(sizeof(double) * k * d);
		for (r = 0; r < k; r++)
		{
			int			c;

			for (c = 0; c < d; c++)
				if (!isfinite(opts->init[(Size) r * d + c]))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("initial centroids must be finite")));
			kmeans_transform(m, opts->init + (Size) r * d, init + (Size) r * d);
		}
	}

	t0 = kmeans_clock();
	kmeans_best_of_restarts(z, n, d, k, init, opts->n_init, opts->max_iter, m->tol_abs,
							opts->algorithm, opts->seed, opts->workers,
							KMEANS_CENTROIDS(m), &m->inertia, &m->iterations);
	t1 = kmeans_clock();

	/* the labels of the best run: nearest centroid, as its last assignment */
	labels = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(n, sizeof(int)));
	kmeans_assign_all(z, n, d, k, KMEANS_CENTROIDS(m), labels);
	elog(DEBUG2, "k-means fit: restarts %.3f s, labels %.3f s", t1 - t0, kmeans_clock() - t1);
	for (r = 0; r < k; r++)
		KMEANS_SIZES(m)[r] = 0;
	for (i = 0; i < n; i++)
		KMEANS_SIZES(m)[labels[i]] += 1;
	for (r = 0; r < k; r++)
		if (KMEANS_SIZES(m)[r] > 0)
			nonempty++;
	if (nonempty < k)
		ereport(NOTICE,
				(errmsg("k-means found %d non-empty clusters, fewer than k = %d", nonempty, k),
				 errdetail("The input has fewer distinct points than clusters.")));
	if (init)
		pfree(init);
	return labels;
}

/* Final: fit the model (NULL for no input rows). */
Datum
segment_kmeans_final(PG_FUNCTION_ARGS)
{
	KMeansPoints p;
	KMeansPoints *st = &p;
	KMeansOptions opts;
	MemoryContext fitcxt;
	MemoryContext old;
	KMeansModel *m;
	KMeansModel *result;
	double	   *z;
	double		t0;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	kmeans_points_view(PG_GETARG_ARRAYTYPE_P(0), st, NULL, 0);
	if (st->n == 0)
		PG_RETURN_NULL();

	/* the fit's working memory goes away at once, the state stays intact */
	fitcxt = AllocSetContextCreate(CurrentMemoryContext, "k-means fit",
								   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(fitcxt);
	kmeans_decode_options(st->s + KP_OPTS, &opts);
	kmeans_check_k_le_n(st->k, st->n);
	t0 = kmeans_clock();
	m = kmeans_prepare(st, &opts, st->k, &z);
	elog(DEBUG2, "k-means fit of " INT64_FORMAT " points: prepare %.3f s",
		 st->n, kmeans_clock() - t0);
	kmeans_fit_points(z, st->n, st->dim, st->k, &opts, m);
	MemoryContextSwitchTo(old);
	result = palloc(VARSIZE(m));
	memcpy(result, m, VARSIZE(m));
	MemoryContextDelete(fitcxt);
	PG_RETURN_POINTER(result);
}

/*
 * Final of kmeans_k_scores: for k = 1..k_max, the fitted model, its inertia
 * (for an elbow plot, which needs k = 1: the total sum of squares), the
 * exact silhouette on a sample and the simplified silhouette on all points
 * (NULL for k = 1, where no silhouette is defined).  The sample is the same
 * for every k.
 */
Datum
segment_kmeans_scores_final(PG_FUNCTION_ARGS)
{
	KMeansPoints p;
	KMeansPoints *st = &p;
	KMeansOptions opts;
	MemoryContext fitcxt;
	MemoryContext old;
	KMeansModel *proto;
	double	   *z;
	int			kmax;
	int			k;
	Oid			arraytype;
	Oid			rowtype;
	TupleDesc	tupdesc;
	Datum	   *rows;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	ArrayType  *result;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	kmeans_points_view(PG_GETARG_ARRAYTYPE_P(0), st, NULL, 0);
	if (st->n == 0)
		PG_RETURN_NULL();
	kmax = st->k;
	if (kmax < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k_max must be at least 2"),
				 errdetail("Got %d.", kmax)));
	kmeans_check_k_le_n(kmax, st->n);

	arraytype = get_fn_expr_rettype(fcinfo->flinfo);
	rowtype = OidIsValid(arraytype) ? get_element_type(arraytype) : InvalidOid;
	if (!OidIsValid(rowtype))
		elog(ERROR, "could not determine the result type of kmeans_k_scores");
	tupdesc = lookup_rowtype_tupdesc_copy(rowtype, -1);
	tupdesc = BlessTupleDesc(tupdesc);
	get_typlenbyvalalign(rowtype, &typlen, &typbyval, &typalign);
	rows = palloc(sizeof(Datum) * kmax);

	fitcxt = AllocSetContextCreate(CurrentMemoryContext, "k-means scores",
								   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(fitcxt);
	kmeans_decode_options(st->s + KP_OPTS, &opts);
	if (opts.init)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means option \"init\" cannot be used when choosing k")));
	proto = kmeans_prepare(st, &opts, kmax, &z);

	for (k = 1; k <= kmax; k++)
	{
		KMeansModel *m = kmeans_model_alloc(k, st->dim);
		int		   *labels;
		KMeansRandom srng;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		HeapTuple	tup;

		/* copy the header and transform of the prototype */
		memcpy(m, proto, offsetof(KMeansModel, data));
		SET_VARSIZE(m, kmeans_model_size(k, st->dim));
		m->k = k;
		memcpy(m->data, proto->data, sizeof(double) * 3 * st->dim);

		labels = kmeans_fit_points(z, st->n, st->dim, k, &opts, m);
		kmeans_random_seed(&srng, (uint64) opts.seed ^ UINT64CONST(0x5EED5EED5EED5EED));
		values[0] = Int32GetDatum(k);
		values[1] = Float8GetDatum(m->inertia);
		if (k == 1)
			nulls[2] = nulls[3] = true;
		else
		{
			values[2] = Float8GetDatum(kmeans_silhouette_sample(z, st->n, st->dim, k, labels,
																opts.silhouette_sample, &srng));
			values[3] = Float8GetDatum(kmeans_simplified_silhouette(z, st->n, st->dim, k,
																	KMEANS_CENTROIDS(m), labels));
		}
		values[4] = PointerGetDatum(m);
		MemoryContextSwitchTo(old);
		tup = heap_form_tuple(tupdesc, values, nulls);
		rows[k - 1] = HeapTupleGetDatum(tup);
		MemoryContextSwitchTo(fitcxt);
		pfree(labels);
	}
	MemoryContextSwitchTo(old);
	result = construct_array(rows, kmax, rowtype, typlen, typbyval, typalign);
	MemoryContextDelete(fitcxt);
	PG_RETURN_ARRAYTYPE_P(result);
}
