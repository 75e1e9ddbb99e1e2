/*
 * kmeans_fit.c
 *	  The in-memory k-means aggregates: kmeans(features, k [, options]) fits a
 *	  model, kmeans_k_scores(features, k_max [, options]) fits k = 2..k_max
 *	  and scores each (inertia, silhouette).
 *
 * Both collect every point in an "internal" state (k-means needs them all in
 * memory), limited to maintenance_work_mem as pgvector's IVFFlat build is:
 * a fit is a maintenance-like job, and data beyond that goes to the step
 * aggregate and its driver instead.  The state has combine, serial and
 * deserial functions, so the rows are read by parallel workers.
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

PG_FUNCTION_INFO_V1(segment_kmeans_trans);
PG_FUNCTION_INFO_V1(segment_kmeans_combine);
PG_FUNCTION_INFO_V1(segment_kmeans_serial);
PG_FUNCTION_INFO_V1(segment_kmeans_deserial);
PG_FUNCTION_INFO_V1(segment_kmeans_final);
PG_FUNCTION_INFO_V1(segment_kmeans_scores_final);

#define KMEANS_STATE_VERSION 1
#define KMEANS_INITIAL_POINTS 1024

/* Transition state: the points, row-major, in the aggregate context. */
typedef struct KMeansState
{
	int32		k;
	int32		dim;
	int64		n;
	int64		cap;			/* points allocated */
	double	   *points;
	Jsonb	   *options;		/* NULL when none were given */
} KMeansState;

/* Error unless the points fit in maintenance_work_mem. */
static void
kmeans_check_memory(int64 n, int dim)
{
	Size		need = mul_size(mul_size((Size) n, (Size) dim), sizeof(double));
	Size		limit = (Size) maintenance_work_mem * 1024;

	if (need > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k-means input does not fit in maintenance_work_mem"),
				 errdetail("The points need at least %zu MB, maintenance_work_mem is %d MB.",
						   need / (1024 * 1024) + 1, maintenance_work_mem / 1024),
				 errhint("Increase maintenance_work_mem, or use segment.kmeans_fit() with the option '{\"method\": \"step\"}'.")));
}

/* Make room for extra more points. */
static void
kmeans_state_reserve(KMeansState *st, int64 extra)
{
	int64		want = st->n + extra;
	int64		newcap;

	if (want <= st->cap)
		return;
	kmeans_check_memory(want, st->dim);
	newcap = Max(Max(st->cap * 2, want), KMEANS_INITIAL_POINTS);
	/* do not double past the limit when the exact size fits */
	if ((Size) newcap * st->dim * sizeof(double) > (Size) maintenance_work_mem * 1024)
		newcap = want;
	if (st->points == NULL)
		st->points = MemoryContextAllocHuge(CurrentMemoryContext,
											mul_size(mul_size(newcap, st->dim), sizeof(double)));
	else
		st->points = repalloc_huge(st->points,
								   mul_size(mul_size(newcap, st->dim), sizeof(double)));
	st->cap = newcap;
}

static void
kmeans_same_k(int a, int b)
{
	if (a != b)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of clusters must be the same for all rows"),
				 errdetail("Got %d and %d.", a, b)));
}

static void
kmeans_same_options(Jsonb *a, Jsonb *b)
{
	if ((a == NULL) != (b == NULL) ||
		(a != NULL && (VARSIZE(a) != VARSIZE(b) || memcmp(a, b, VARSIZE(a)) != 0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means options must be the same for all rows")));
}

static void
kmeans_same_dim(int a, int b)
{
	if (a != b)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("feature vectors must all have the same length"),
				 errdetail("Expected %d features, got %d.", a, b)));
}

/* Transition: append one feature vector; NULL vectors are skipped. */
Datum
segment_kmeans_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MemoryContext old;
	KMeansState *st = PG_ARGISNULL(0) ? NULL : (KMeansState *) PG_GETARG_POINTER(0);
	int			k;
	Jsonb	   *options = NULL;
	ArrayType  *a;
	const double *v;
	int			dim;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "segment_kmeans_trans called in non-aggregate context");
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("number of clusters must not be null")));
	k = PG_GETARG_INT32(2);
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
		options = PG_GETARG_JSONB_P(3);

	if (PG_ARGISNULL(1))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	a = PG_GETARG_ARRAYTYPE_P(1);
	v = kmeans_check_features(a, st ? st->dim : 0, &dim);

	if (st == NULL)
	{
		KMeansOptions opts;

		kmeans_check_k(k);
		/* validate the options once, so that a typo fails before the scan */
		kmeans_parse_options(options, &opts);
		old = MemoryContextSwitchTo(aggcxt);
		st = palloc0(sizeof(KMeansState));
		st->k = k;
		st->dim = dim;
		if (options)
		{
			st->options = palloc(VARSIZE(options));
			memcpy(st->options, options, VARSIZE(options));
		}
		MemoryContextSwitchTo(old);
	}
	else
	{
		kmeans_same_k(st->k, k);
		kmeans_same_options(st->options, options);
	}

	old = MemoryContextSwitchTo(aggcxt);
	kmeans_state_reserve(st, 1);
	MemoryContextSwitchTo(old);
	memcpy(st->points + st->n * st->dim, v, sizeof(double) * dim);
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Combine: append the right state's points to the left one (copied). */
Datum
segment_kmeans_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MemoryContext old;
	KMeansState *left = PG_ARGISNULL(0) ? NULL : (KMeansState *) PG_GETARG_POINTER(0);
	KMeansState *right = PG_ARGISNULL(1) ? NULL : (KMeansState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "segment_kmeans_combine called in non-aggregate context");
	if (right == NULL)
	{
		if (left == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(left);
	}
	old = MemoryContextSwitchTo(aggcxt);
	if (left == NULL)
	{
		left = palloc0(sizeof(KMeansState));
		left->k = right->k;
		left->dim = right->dim;
		if (right->options)
		{
			left->options = palloc(VARSIZE(right->options));
			memcpy(left->options, right->options, VARSIZE(right->options));
		}
	}
	else
	{
		kmeans_same_k(left->k, right->k);
		kmeans_same_dim(left->dim, right->dim);
		kmeans_same_options(left->options, right->options);
	}
	kmeans_state_reserve(left, right->n);
	MemoryContextSwitchTo(old);
	if (right->n > 0)
		memcpy(left->points + left->n * left->dim, right->points,
			   mul_size(mul_size(right->n, right->dim), sizeof(double)));
	left->n += right->n;
	PG_RETURN_POINTER(left);
}

/*
 * Serialize: version, k, dim, n, options length, options, then the points.
 * Read back with memcpy, so no alignment is assumed.
 */
Datum
segment_kmeans_serial(PG_FUNCTION_ARGS)
{
	KMeansState *st = (KMeansState *) PG_GETARG_POINTER(0);
	int32		optlen = st->options ? VARSIZE(st->options) : 0;
	Size		ptsz = mul_size(mul_size(st->n, st->dim), sizeof(double));
	Size		sz = add_size(add_size(VARHDRSZ + 4 * sizeof(int32) + sizeof(int64), optlen), ptsz);
	bytea	   *out;
	char	   *p;
	int32		hdr[3] = {KMEANS_STATE_VERSION, st->k, st->dim};

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_kmeans_serial called in non-aggregate context");
	if (sz > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k-means partial state is too large to pass between parallel workers"),
				 errhint("Disable parallel query for this fit (SET max_parallel_workers_per_gather = 0), or use the step method.")));
	out = palloc(sz);
	SET_VARSIZE(out, sz);
	p = VARDATA(out);
	memcpy(p, hdr, sizeof(hdr));
	p += sizeof(hdr);
	memcpy(p, &st->n, sizeof(int64));
	p += sizeof(int64);
	memcpy(p, &optlen, sizeof(int32));
	p += sizeof(int32);
	if (optlen > 0)
		memcpy(p, st->options, optlen);
	p += optlen;
	if (ptsz > 0)
		memcpy(p, st->points, ptsz);
	PG_RETURN_BYTEA_P(out);
}

static void
kmeans_bad_serial(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid k-means aggregate state")));
}

/* Deserialize, validating every length before reading. */
Datum
segment_kmeans_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(in);
	Size		len = VARSIZE_ANY_EXHDR(in);
	int32		hdr[3];
	int32		optlen;
	int64		n;
	KMeansState *st;
	MemoryContext aggcxt;
	MemoryContext old;
	Size		ptsz;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "segment_kmeans_deserial called in non-aggregate context");
	if (len < sizeof(hdr) + sizeof(int64) + sizeof(int32))
		kmeans_bad_serial();
	memcpy(hdr, p, sizeof(hdr));
	memcpy(&n, p + sizeof(hdr), sizeof(int64));
	memcpy(&optlen, p + sizeof(hdr) + sizeof(int64), sizeof(int32));
	p += sizeof(hdr) + sizeof(int64) + sizeof(int32);
	len -= sizeof(hdr) + sizeof(int64) + sizeof(int32);
	if (hdr[0] != KMEANS_STATE_VERSION || hdr[1] < 1 || hdr[1] > KMEANS_MAX_K ||
		hdr[2] < 1 || hdr[2] > KMEANS_MAX_DIM || n < 0 || optlen < 0 || (Size) optlen > len)
		kmeans_bad_serial();
	if (optlen > 0 && optlen < (int32) VARHDRSZ)
		kmeans_bad_serial();
	ptsz = (Size) n * hdr[2] * sizeof(double);
	if (n > (int64) (len / sizeof(double)) || ptsz != len - optlen)
		kmeans_bad_serial();

	old = MemoryContextSwitchTo(aggcxt);
	st = palloc0(sizeof(KMeansState));
	st->k = hdr[1];
	st->dim = hdr[2];
	if (optlen > 0)
	{
		st->options = palloc(optlen);
		memcpy(st->options, p, optlen);
		if (VARSIZE(st->options) != (Size) optlen)
			kmeans_bad_serial();
	}
	if (n > 0)
	{
		kmeans_state_reserve(st, n);
		memcpy(st->points, p + optlen, ptsz);
	}
	st->n = n;
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(st);
}

/* Lexicographic order of two rows of *(int *) arg doubles. */
static int
kmeans_row_cmp(const void *a, const void *b, void *arg)
{
	const double *x = a;
	const double *y = b;
	int			d = *(int *) arg;
	int			c;

	for (c = 0; c < d; c++)
	{
		if (x[c] < y[c])
			return -1;
		if (x[c] > y[c])
			return 1;
	}
	return 0;
}

/*
 * Build a model holding the transform for these options (log1p, z-score),
 * and the transformed points; also sets tol_abs from their variance.
 */
static KMeansModel *
kmeans_prepare(KMeansState *st, KMeansOptions *opts, int k, double **zout)
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
		kmeans_transform(m, st->points + i * d, z + i * d);
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	/*
	 * Parallel workers hand over their rows in any order, and k-means++
	 * picks points by position: sort the rows so that a seed gives the same
	 * model however the rows arrived.
	 */
	qsort_arg(z, n, sizeof(double) * d, kmeans_row_cmp, &d);

	/* two-pass mean and (population) variance */
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
		var[c] /= n;

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
 * given initial centroids), keeping the lowest inertia.  Fills the model's
 * centroids, sizes, inertia and iterations; returns the labels.
 */
static int *
kmeans_fit_points(const double *z, int64 n, int d, int k, KMeansOptions *opts,
				  KMeansModel *m, KMeansRandom *rng)
{
	KMeansResult run;
	int		   *best_labels;
	double	   *init = palloc(sizeof(double) * k * d);
	double		best = -1;
	int			r;
	int64		i;
	int			nonempty = 0;

	kmeans_check_k_le_n(k, n);
	run.centers = palloc(sizeof(double) * k * d);
	run.labels = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(n, sizeof(int)));
	best_labels = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(n, sizeof(int)));

	if (opts->init)
	{
		if (opts->init_k != k || opts->init_dim != d)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means option \"init\" must hold k centroids of the features' length"),
					 errdetail("Got %d centroids of %d values for k = %d and %d features.",
							   opts->init_k, opts->init_dim, k, d)));
		for (r = 0; r < k; r++)
		{
			int			dim;
			int			c;

			for (c = 0; c < d; c++)
				if (!isfinite(opts->init[(Size) r * d + c]))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("initial centroids must be finite")));
			(void) dim;
			kmeans_transform(m, opts->init + (Size) r * d, init + (Size) r * d);
		}
	}

	for (r = 0; r < opts->n_init; r++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!opts->init)
			kmeans_plusplus(z, n, d, k, rng, init);
		kmeans_run(z, n, d, k, init, opts->max_iter, m->tol_abs, opts->algorithm, &run);
		if (best < 0 || run.inertia < best)
		{
			int		   *t = best_labels;

			best = run.inertia;
			memcpy(KMEANS_CENTROIDS(m), run.centers, sizeof(double) * k * d);
			m->iterations = run.iterations;
			best_labels = run.labels;
			run.labels = t;
		}
	}
	m->inertia = best;
	for (r = 0; r < k; r++)
		KMEANS_SIZES(m)[r] = 0;
	for (i = 0; i < n; i++)
		KMEANS_SIZES(m)[best_labels[i]] += 1;
	for (r = 0; r < k; r++)
		if (KMEANS_SIZES(m)[r] > 0)
			nonempty++;
	if (nonempty < k)
		ereport(NOTICE,
				(errmsg("k-means found %d non-empty clusters, fewer than k = %d", nonempty, k),
				 errdetail("The input has fewer distinct points than clusters.")));
	pfree(run.centers);
	pfree(run.labels);
	pfree(init);
	return best_labels;
}

/* Final: fit the model (NULL for no input rows). */
Datum
segment_kmeans_final(PG_FUNCTION_ARGS)
{
	KMeansState *st;
	KMeansOptions opts;
	MemoryContext fitcxt;
	MemoryContext old;
	KMeansModel *m;
	KMeansModel *result;
	KMeansRandom rng;
	double	   *z;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_kmeans_final called in non-aggregate context");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (KMeansState *) PG_GETARG_POINTER(0);
	if (st->n == 0)
		PG_RETURN_NULL();

	/* the fit's working memory goes away at once, the state stays intact */
	fitcxt = AllocSetContextCreate(CurrentMemoryContext, "k-means fit",
								   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(fitcxt);
	kmeans_parse_options(st->options, &opts);
	kmeans_check_k_le_n(st->k, st->n);
	m = kmeans_prepare(st, &opts, st->k, &z);
	kmeans_random_seed(&rng, (uint64) opts.seed);
	kmeans_fit_points(z, st->n, st->dim, st->k, &opts, m, &rng);
	MemoryContextSwitchTo(old);
	result = palloc(VARSIZE(m));
	memcpy(result, m, VARSIZE(m));
	MemoryContextDelete(fitcxt);
	PG_RETURN_POINTER(result);
}

/*
 * Final of kmeans_k_scores: for k = 2..k_max, the fitted model, its inertia
 * (for an elbow plot), the exact silhouette on a sample and the simplified
 * silhouette on all points.  The sample is the same for every k.
 */
Datum
segment_kmeans_scores_final(PG_FUNCTION_ARGS)
{
	KMeansState *st;
	KMeansOptions opts;
	MemoryContext fitcxt;
	MemoryContext old;
	KMeansModel *proto;
	KMeansRandom rng;
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

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_kmeans_scores_final called in non-aggregate context");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (KMeansState *) PG_GETARG_POINTER(0);
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
	kmeans_parse_options(st->options, &opts);
	if (opts.init)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means option \"init\" cannot be used when choosing k")));
	proto = kmeans_prepare(st, &opts, kmax, &z);
	kmeans_random_seed(&rng, (uint64) opts.seed);

	for (k = 2; k <= kmax; k++)
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

		labels = kmeans_fit_points(z, st->n, st->dim, k, &opts, m, &rng);
		kmeans_random_seed(&srng, (uint64) opts.seed ^ UINT64CONST(0x5EED5EED5EED5EED));
		values[0] = Int32GetDatum(k);
		values[1] = Float8GetDatum(m->inertia);
		values[2] = Float8GetDatum(kmeans_silhouette_sample(z, st->n, st->dim, k, labels,
															opts.silhouette_sample, &srng));
		values[3] = Float8GetDatum(kmeans_simplified_silhouette(z, st->n, st->dim, k,
																KMEANS_CENTROIDS(m), labels));
		values[4] = PointerGetDatum(m);
		MemoryContextSwitchTo(old);
		tup = heap_form_tuple(tupdesc, values, nulls);
		rows[k - 2] = HeapTupleGetDatum(tup);
		MemoryContextSwitchTo(fitcxt);
		pfree(labels);
	}
	MemoryContextSwitchTo(old);
	result = construct_array(rows, kmax - 1, rowtype, typlen, typbyval, typalign);
	MemoryContextDelete(fitcxt);
	PG_RETURN_ARRAYTYPE_P(result);
}
