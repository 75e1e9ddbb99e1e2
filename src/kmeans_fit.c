/*
 * kmeans_fit.c
 *	  The in-memory k-means aggregates: kmeans(features, k [, options]) fits a
 *	  model, kmeans_k_scores(features, k_max [, options]) fits k = 2..k_max
 *	  and scores each (inertia, silhouette).
 *
 * Both collect every point (k-means needs them all in memory) in a float8[]
 * state, limited to maintenance_work_mem as pgvector's IVFFlat build is, and
 * to the 1 GB of an array: a fit is a maintenance-like job, and data beyond
 * that goes to the step aggregate and its driver instead.  A concrete state
 * type rather than "internal", because these aggregates run across
 * customers: Citus pushes a custom aggregate down to the shards partially
 * only then; parallel workers need no serial functions either.
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
PG_FUNCTION_INFO_V1(segment_kmeans_final);
PG_FUNCTION_INFO_V1(segment_kmeans_scores_final);

#define KMEANS_INITIAL_POINTS 1024

/*
 * The transition state is a float8[] (so that Citus pushes the aggregate
 * down to the shards partially, and parallel workers hand their rows over
 * without serial functions).  Layout:
 *   [0] tag, [1] k, [2] dim, [3] n (points stored),
 *   [4 .. 4 + optlen) the parsed options (kmeans_encode_options),
 *   then n points of dim values, row-major, then spare capacity.
 * The transition function appends in place (the state is ours, in the
 * aggregate context) and doubles the array when full, as breaks does.
 */
#define KMEANS_POINTS_TAG 71003.0
#define KP_K 1
#define KP_DIM 2
#define KP_N 3
#define KP_OPTS 4

/* encoded options: fixed slots, then log1p flags, then init centroids */
#define KO_SEED_HI 0
#define KO_SEED_LO 1
#define KO_N_INIT 2
#define KO_MAX_ITER 3
#define KO_TOL 4
#define KO_STANDARDIZE 5
#define KO_ALGORITHM 6
#define KO_LOG1P_ALL 7
#define KO_N_LOG1P 8
#define KO_SILHOUETTE 9
#define KO_INIT_K 10
#define KO_INIT_DIM 11
#define KO_WORKERS 12
#define KO_FIXED 13

/* A checked view of a points state. */
typedef struct KMeansPoints
{
	double	   *s;				/* the array's values */
	int			k;
	int			dim;
	int			optlen;			/* encoded options, in doubles */
	int64		n;
	int64		cap;			/* points that fit */
	double	   *points;
} KMeansPoints;

/* Parsed options of the last options value seen, kept in fn_extra. */
typedef struct KMeansOptionCache
{
	bool		valid;
	Size		jblen;			/* 0 when no options were given */
	char	   *jb;
	int			enclen;
	double	   *enc;
} KMeansOptionCache;

/* Options as doubles: every value is exactly representable. */
static int
kmeans_encode_options(const KMeansOptions *o, double *out)
{
	uint64		u = (uint64) o->seed;
	int64		hi = (int64) (u >> 32);
	int			i;
	int			len = KO_FIXED;

	if (out == NULL)
		return KO_FIXED + o->n_log1p + o->init_k * o->init_dim;
	if (hi >= (INT64CONST(1) << 31))
		hi -= INT64CONST(1) << 32;
	out[KO_SEED_HI] = (double) hi;
	out[KO_SEED_LO] = (double) (u & UINT64CONST(0xFFFFFFFF));
	out[KO_N_INIT] = o->n_init;
	out[KO_MAX_ITER] = o->max_iter;
	out[KO_TOL] = o->tol;
	out[KO_STANDARDIZE] = o->standardize ? 1 : 0;
	out[KO_ALGORITHM] = o->algorithm;
	out[KO_LOG1P_ALL] = o->log1p_all ? 1 : 0;
	out[KO_N_LOG1P] = o->n_log1p;
	out[KO_SILHOUETTE] = o->silhouette_sample;
	out[KO_INIT_K] = o->init ? o->init_k : 0;
	out[KO_INIT_DIM] = o->init ? o->init_dim : 0;
	out[KO_WORKERS] = o->workers;
	for (i = 0; i < o->n_log1p; i++)
		out[len++] = o->log1p[i] ? 1 : 0;
	if (o->init)
	{
		memcpy(out + len, o->init, sizeof(double) * o->init_k * o->init_dim);
		len += o->init_k * o->init_dim;
	}
	return len;
}

static void
kmeans_bad_points(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid kmeans aggregate state"),
			 errdetail("The state must be a float8 array written by the kmeans aggregate.")));
}

/* Whether v is an integer within [lo, hi]. */
static bool
kmeans_int_in(double v, double lo, double hi)
{
	return v >= lo && v <= hi && v == (double) (int64) v;
}

/*
 * Length of the encoded options at enc (avail doubles there), validating
 * every slot: a state may come from a user-written aggregate reusing our
 * functions, so it is never trusted.
 */
static int
kmeans_encoded_length(const double *enc, int64 avail)
{
	int64		len;

	if (avail < KO_FIXED ||
		!kmeans_int_in(enc[KO_SEED_HI], -(double) (INT64CONST(1) << 31),
					   (double) ((INT64CONST(1) << 31) - 1)) ||
		!kmeans_int_in(enc[KO_SEED_LO], 0, 4294967295.0) ||
		!kmeans_int_in(enc[KO_N_INIT], 1, 1000) ||
		!kmeans_int_in(enc[KO_MAX_ITER], 0, 100000) ||
		!(enc[KO_TOL] >= 0 && isfinite(enc[KO_TOL])) ||
		!kmeans_int_in(enc[KO_STANDARDIZE], 0, 1) ||
		!kmeans_int_in(enc[KO_ALGORITHM], KMEANS_ALGO_HAMERLY, KMEANS_ALGO_LLOYD) ||
		!kmeans_int_in(enc[KO_LOG1P_ALL], 0, 1) ||
		!kmeans_int_in(enc[KO_N_LOG1P], 0, KMEANS_MAX_DIM) ||
		!kmeans_int_in(enc[KO_SILHOUETTE], 2, 100000) ||
		!kmeans_int_in(enc[KO_INIT_K], 0, KMEANS_MAX_K) ||
		!kmeans_int_in(enc[KO_INIT_DIM], 0, KMEANS_MAX_DIM) ||
		((enc[KO_INIT_K] == 0) != (enc[KO_INIT_DIM] == 0)) ||
		!kmeans_int_in(enc[KO_WORKERS], -1, 64))
		kmeans_bad_points();
	len = KO_FIXED + (int64) enc[KO_N_LOG1P] + (int64) enc[KO_INIT_K] * (int64) enc[KO_INIT_DIM];
	if (len > avail)
		kmeans_bad_points();
	return (int) len;
}

/* The options encoded at enc, back into opts (arrays palloc'd). */
static void
kmeans_decode_options(const double *enc, KMeansOptions *o)
{
	int			len = KO_FIXED;
	int			i;
	uint64		u;

	kmeans_default_options(o);
	u = ((uint64) (int64) enc[KO_SEED_HI] << 32) | (uint64) enc[KO_SEED_LO];
	o->seed = (int64) u;
	o->n_init = (int) enc[KO_N_INIT];
	o->max_iter = (int) enc[KO_MAX_ITER];
	o->tol = enc[KO_TOL];
	o->standardize = enc[KO_STANDARDIZE] != 0;
	o->algorithm = (int) enc[KO_ALGORITHM];
	o->log1p_all = enc[KO_LOG1P_ALL] != 0;
	o->n_log1p = (int) enc[KO_N_LOG1P];
	o->silhouette_sample = (int) enc[KO_SILHOUETTE];
	if (o->n_log1p > 0)
	{
		o->log1p = palloc(sizeof(bool) * o->n_log1p);
		for (i = 0; i < o->n_log1p; i++)
			o->log1p[i] = enc[len++] != 0;
	}
	o->workers = (int) enc[KO_WORKERS];
	o->init_k = (int) enc[KO_INIT_K];
	o->init_dim = (int) enc[KO_INIT_DIM];
	if (o->init_k > 0)
	{
		o->init = palloc(sizeof(double) * o->init_k * o->init_dim);
		memcpy(o->init, enc + len, sizeof(double) * o->init_k * o->init_dim);
		/* explicit initial centroids make restarts pointless */
		o->n_init = 1;
	}
}

/*
 * Check a points state and describe it.  enc, when given, is the encoding of
 * options already validated (the row's): a state holding exactly those
 * needs no second look at them, which matters once per row.
 */
static void
kmeans_points_view(ArrayType *a, KMeansPoints *p, const double *enc, int enclen)
{
	double	   *s;
	int64		len;

	if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID ||
		ARR_DIMS(a)[0] < KP_OPTS + KO_FIXED)
		kmeans_bad_points();
	s = (double *) ARR_DATA_PTR(a);
	len = ARR_DIMS(a)[0];
	if (s[0] != KMEANS_POINTS_TAG || !kmeans_int_in(s[KP_K], 1, KMEANS_MAX_K) ||
		!kmeans_int_in(s[KP_DIM], 1, KMEANS_MAX_DIM) || !kmeans_int_in(s[KP_N], 0, (double) len))
		kmeans_bad_points();
	p->s = s;
	p->k = (int) s[KP_K];
	p->dim = (int) s[KP_DIM];
	p->n = (int64) s[KP_N];
	if (enc != NULL && len >= KP_OPTS + enclen &&
		memcmp(s + KP_OPTS, enc, sizeof(double) * enclen) == 0)
		p->optlen = enclen;
	else
		p->optlen = kmeans_encoded_length(s + KP_OPTS, len - KP_OPTS);
	p->cap = (len - KP_OPTS - p->optlen) / p->dim;
	if (p->n > p->cap)
		kmeans_bad_points();
	p->points = s + KP_OPTS + p->optlen;
}

/* The parsed and encoded options of this row, cached across rows. */
static KMeansOptionCache *
kmeans_row_options(FunctionCallInfo fcinfo, Jsonb *options)
{
	KMeansOptionCache *c = (KMeansOptionCache *) fcinfo->flinfo->fn_extra;
	Size		jblen = options ? VARSIZE(options) : 0;
	MemoryContext old;
	KMeansOptions opts;

	if (c == NULL)
		c = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(KMeansOptionCache));
	if (c->valid && c->jblen == jblen &&
		(jblen == 0 || memcmp(c->jb, options, jblen) == 0))
		return c;

	/* a different options value: parse (and validate) it */
	c->valid = false;
	kmeans_parse_options(options, &opts);
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (c->jb)
		pfree(c->jb);
	if (c->enc)
		pfree(c->enc);
	c->jb = jblen ? palloc(jblen) : NULL;
	if (jblen)
		memcpy(c->jb, options, jblen);
	c->jblen = jblen;
	c->enc = palloc(sizeof(double) * kmeans_encode_options(&opts, NULL));
	c->enclen = kmeans_encode_options(&opts, c->enc);
	MemoryContextSwitchTo(old);
	c->valid = true;
	return c;
}

/* Most points a state can hold: the array limit and maintenance_work_mem. */
static int64
kmeans_max_points(int dim, int optlen)
{
	int64		by_array = ((int64) ((MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(double)) -
							KP_OPTS - optlen) / dim;
	int64		by_mem = (int64) maintenance_work_mem * 1024 / ((int64) dim * sizeof(double));

	return Min(by_array, by_mem);
}

/* Error unless want points fit in the state. */
static void
kmeans_check_memory(int64 want, int dim, int optlen)
{
	Size		need;

	if (want <= kmeans_max_points(dim, optlen))
		return;
	need = mul_size(mul_size((Size) want, (Size) dim), sizeof(double));
	if ((Size) maintenance_work_mem * 1024 < need)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k-means input does not fit in maintenance_work_mem"),
				 errdetail("The points need at least %zu MB, maintenance_work_mem is %d MB.",
						   need / (1024 * 1024) + 1, maintenance_work_mem / 1024),
				 errhint("Increase maintenance_work_mem, or use segment.kmeans_fit() with the option '{\"method\": \"step\"}'.")));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("k-means input is too large for the in-memory fit"),
			 errdetail("The points need at least %zu MB, the in-memory fit holds at most 1 GB.",
					   need / (1024 * 1024) + 1),
			 errhint("Use segment.kmeans_fit() with the option '{\"method\": \"step\"}'.")));
}

/*
 * A new points state in CurrentMemoryContext with room for cap points,
 * holding header, options and the first n points of src (if any).
 */
static ArrayType *
kmeans_points_alloc(int k, int dim, const double *enc, int optlen, int64 cap,
					const double *src, int64 n)
{
	int64		len = KP_OPTS + optlen + cap * dim;
	Size		nbytes = ARR_OVERHEAD_NONULLS(1) + (Size) len * sizeof(double);
	ArrayType  *a = palloc(nbytes);
	double	   *s;

	SET_VARSIZE(a, nbytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = FLOAT8OID;
	ARR_DIMS(a)[0] = (int) len;
	ARR_LBOUND(a)[0] = 1;
	s = (double *) ARR_DATA_PTR(a);
	s[0] = KMEANS_POINTS_TAG;
	s[KP_K] = k;
	s[KP_DIM] = dim;
	s[KP_N] = n;
	memcpy(s + KP_OPTS, enc, sizeof(double) * optlen);
	if (n > 0)
		memcpy(s + KP_OPTS + optlen, src, mul_size(mul_size(n, dim), sizeof(double)));
	/* spare capacity is zeroed: the array may be written out as text */
	memset(s + KP_OPTS + optlen + n * dim, 0, sizeof(double) * (cap - n) * dim);
	return a;
}

/*
 * A state with room for extra more points: the given one when it has room,
 * else a copy twice as large.  The copy is made in CurrentMemoryContext: the
 * executor copies a changed transition value into the aggregate context and
 * frees the old one.
 */
static ArrayType *
kmeans_points_reserve(ArrayType *a, KMeansPoints *p, int64 extra)
{
	int64		want = p->n + extra;
	int64		newcap;
	int64		limit;
	ArrayType  *grown;

	if (want <= p->cap)
		return a;
	kmeans_check_memory(want, p->dim, p->optlen);
	limit = kmeans_max_points(p->dim, p->optlen);
	newcap = Min(Max(Max(p->cap * 2, want), KMEANS_INITIAL_POINTS), limit);
	grown = kmeans_points_alloc(p->k, p->dim, p->s + KP_OPTS, p->optlen, newcap,
								p->points, p->n);
	kmeans_points_view(grown, p, p->s + KP_OPTS, p->optlen);
	return grown;
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
kmeans_same_options(const double *a, int alen, const double *b, int blen)
{
	if (alen != blen || memcmp(a, b, sizeof(double) * alen) != 0)
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
	ArrayType  *state = NULL;
	KMeansPoints p;
	KMeansOptionCache *oc;
	int			k;
	const double *v;
	int			dim;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_kmeans_trans called in non-aggregate context");
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("number of clusters must not be null")));
	k = PG_GETARG_INT32(2);
	/* validates the options once, so that a typo fails before the scan */
	oc = kmeans_row_options(fcinfo, (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ?
							PG_GETARG_JSONB_P(3) : NULL);

	if (!PG_ARGISNULL(0))
	{
		state = PG_GETARG_ARRAYTYPE_P(0);
		kmeans_points_view(state, &p, oc->enc, oc->enclen);
		kmeans_same_k(p.k, k);
		kmeans_same_options(p.s + KP_OPTS, p.optlen, oc->enc, oc->enclen);
	}
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(state);
	}
	v = kmeans_check_features(PG_GETARG_ARRAYTYPE_P(1), state ? p.dim : 0, &dim);

	if (state == NULL)
	{
		kmeans_check_k(k);
		state = kmeans_points_alloc(k, dim, oc->enc, oc->enclen, 0, NULL, 0);
		kmeans_points_view(state, &p, NULL, 0);
	}
	state = kmeans_points_reserve(state, &p, 1);
	memcpy(p.points + p.n * dim, v, sizeof(double) * dim);
	p.s[KP_N] = p.n + 1;
	PG_RETURN_ARRAYTYPE_P(state);
}

/* Combine: append the right state's points to (a copy of) the left one. */
Datum
segment_kmeans_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *left;
	ArrayType  *right;
	KMeansPoints l,
				r;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_kmeans_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	right = PG_GETARG_ARRAYTYPE_P(1);
	kmeans_points_view(right, &r, NULL, 0);
	if (PG_ARGISNULL(0))
	{
		/* never adopt the right state: it belongs to someone else */
		left = kmeans_points_alloc(r.k, r.dim, r.s + KP_OPTS, r.optlen, Max(r.n, 1),
								   r.points, r.n);
		PG_RETURN_ARRAYTYPE_P(left);
	}
	left = PG_GETARG_ARRAYTYPE_P(0);
	kmeans_points_view(left, &l, r.s + KP_OPTS, r.optlen);
	kmeans_same_k(l.k, r.k);
	kmeans_same_dim(l.dim, r.dim);
	kmeans_same_options(l.s + KP_OPTS, l.optlen, r.s + KP_OPTS, r.optlen);
	if (r.n == 0)
		PG_RETURN_ARRAYTYPE_P(left);
	left = kmeans_points_reserve(left, &l, r.n);
	memcpy(l.points + l.n * l.dim, r.points, mul_size(mul_size(r.n, r.dim), sizeof(double)));
	l.s[KP_N] = l.n + r.n;
	PG_RETURN_ARRAYTYPE_P(left);
}

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

#if PG_VERSION_NUM >= 140000
#define ST_SORT kmeans_sort_items
#define ST_ELEMENT_TYPE KMeansSortItem
#define ST_COMPARE_ARG_TYPE KMeansSortArg
#define ST_COMPARE(a, b, arg) kmeans_item_cmp(a, b, arg)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"
#else
static int
kmeans_item_qsort_cmp(const void *a, const void *b, void *arg)
{
	return kmeans_item_cmp(a, b, arg);
}

static void
kmeans_sort_items(KMeansSortItem *items, size_t n, KMeansSortArg *arg)
{
	qsort_arg(items, n, sizeof(KMeansSortItem), kmeans_item_qsort_cmp, arg);
}
#endif

/*
 * The n rows of z in lexicographic order, in a new array (z is freed): a
 * stable radix sort of the pairs by their first feature (four passes of 16
 * bits), then runs of equal first features ordered by the other features.
 */
static double *
kmeans_sort_points(double *z, int64 n, int d)
{
	KMeansSortItem *items = MemoryContextAllocHuge(CurrentMemoryContext,
												   mul_size(n, sizeof(KMeansSortItem)));
	KMeansSortItem *tmp = MemoryContextAllocHuge(CurrentMemoryContext,
												 mul_size(n, sizeof(KMeansSortItem)));
	int64	   *count = palloc(sizeof(int64) * 65536);
	double	   *out;
	KMeansSortArg arg = {z, d};
	int64		i,
				run;
	int			pass;

	for (i = 0; i < n; i++)
	{
		items[i].key = kmeans_sort_key(z[i * d]);
		items[i].row = i;
	}
	for (pass = 0; pass < 4; pass++)
	{
		int			shift = 16 * pass;
		int64		sum = 0;
		int			b;
		KMeansSortItem *t;

		CHECK_FOR_INTERRUPTS();
		memset(count, 0, sizeof(int64) * 65536);
		for (i = 0; i < n; i++)
			count[(items[i].key >> shift) & 0xFFFF]++;
		for (b = 0; b < 65536; b++)
		{
			int64		c = count[b];

			count[b] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			tmp[count[(items[i].key >> shift) & 0xFFFF]++] = items[i];
		t = items;
		items = tmp;
		tmp = t;
	}
	/* equal first features: order by the rest of the row */
	for (i = 0; i < n; i = run)
	{
		for (run = i + 1; run < n && items[run].key == items[i].key; run++)
			;
		if (run - i > 1 && d > 1)
			kmeans_sort_items(items + i, run - i, &arg);
	}

	out = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(mul_size(n, d), sizeof(double)));
	for (i = 0; i < n; i++)
		memcpy(out + i * d, z + items[i].row * d, sizeof(double) * d);
	pfree(items);
	pfree(tmp);
	pfree(count);
	pfree(z);
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
		kmeans_transform(m, st->points + i * d, z + i * d);
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	/*
	 * Parallel workers hand over their rows in any order, and k-means++
	 * picks points by position: sort the rows so that a seed gives the same
	 * model however the rows arrived.
	 */
	z = kmeans_sort_points(z, n, d);

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

	kmeans_best_of_restarts(z, n, d, k, init, opts->n_init, opts->max_iter, m->tol_abs,
							opts->algorithm, opts->seed, opts->workers,
							KMEANS_CENTROIDS(m), &m->inertia, &m->iterations);

	/* the labels of the best run: nearest centroid, as its last assignment */
	labels = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(n, sizeof(int)));
	kmeans_assign_all(z, n, d, k, KMEANS_CENTROIDS(m), labels);
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

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_kmeans_final called in non-aggregate context");
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
	m = kmeans_prepare(st, &opts, st->k, &z);
	kmeans_fit_points(z, st->n, st->dim, st->k, &opts, m);
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

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_kmeans_scores_final called in non-aggregate context");
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

		labels = kmeans_fit_points(z, st->n, st->dim, k, &opts, m);
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
