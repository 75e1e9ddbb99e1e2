/*
 * kmeans_state.c
 *	  The state of the in-memory k-means aggregates (kmeans, kmeans_k_scores):
 *	  every point, in a float8[] that the transition function appends to.
 *
 * The aggregates run across customers, so the state is a concrete SQL type
 * rather than "internal": Citus pushes a custom aggregate down to the shards
 * partially only then, and parallel workers hand their rows over without
 * serial functions.  The options travel in the state, parsed, so that every
 * partial state carries them and combine checks that they agree.  The fit
 * itself is kmeans_fit.c.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "compat.h"
#include "kmeans.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(segment_kmeans_trans);
PG_FUNCTION_INFO_V1(segment_kmeans_combine);

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
	int64		len,
				i;

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
	/* the log1p flags are 0 or 1, the initial centroids finite */
	for (i = KO_FIXED; i < KO_FIXED + (int64) enc[KO_N_LOG1P]; i++)
		if (!kmeans_int_in(enc[i], 0, 1))
			kmeans_bad_points();
	for (; i < len; i++)
		if (!isfinite(enc[i]))
			kmeans_bad_points();
	return (int) len;
}

/* The options encoded at enc, back into opts (arrays palloc'd). */
void
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
void
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

/*
 * Bytes per point of a whole in-memory fit of d features with w parallel
 * workers, at its peak (kmeans_fit.c, kmeans_parallel.c): the collected
 * points, their transformed copy, and either the sort (a sorted copy and
 * two 16-byte keys per point) or the restarts (the points in shared memory
 * for the workers, labels and two bounds per point in each process, the
 * last assignment's labels and an exact distance when a cluster empties).
 */
static Size
kmeans_fit_bytes_per_point(int d, int w)
{
	Size		pt = (Size) d * sizeof(double);
	Size		sort = 3 * pt + 2 * 16;
	Size		restarts = 2 * pt + (w > 0 ? pt : 0) +
		(Size) (w + 1) * (sizeof(int) + 2 * sizeof(double)) + sizeof(int) + sizeof(double);

	return Max(sort, restarts);
}

/* Parallel workers the fit of n points will plan for, from the encoded options. */
static int
kmeans_state_workers(const double *enc, int64 n)
{
	return kmeans_plan_workers(n, (int) enc[KO_N_INIT], (int) enc[KO_WORKERS]);
}

/*
 * Most points a state can hold: the array limit, and the fit of them within
 * maintenance_work_mem (the fit's limit, as for CREATE INDEX).
 */
static int64
kmeans_max_points(int dim, const double *enc, int optlen, int64 n)
{
	int64		by_array = ((int64) ((MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(double)) -
							KP_OPTS - optlen) / dim;
	int64		by_mem = (int64) maintenance_work_mem * 1024 /
		(int64) kmeans_fit_bytes_per_point(dim, kmeans_state_workers(enc, n));

	return Min(by_array, by_mem);
}

/*
 * Error unless the fit of want points fits: raised by the row (or the
 * combined state) that first goes beyond, so a fit too large for its memory
 * stops early in the scan, never with an out-of-memory error at the end.
 */
static void
kmeans_check_memory(int64 want, int dim, const double *enc, int optlen)
{
	int			w = kmeans_state_workers(enc, want);
	Size		per = kmeans_fit_bytes_per_point(dim, w);
	Size		need;

	if (want <= kmeans_max_points(dim, enc, optlen, want))
		return;
	need = mul_size((Size) want, per);
	if ((Size) maintenance_work_mem * 1024 < need)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("k-means fit would exceed maintenance_work_mem"),
				 errdetail("Fitting the first " INT64_FORMAT " points of %d features with %d parallel workers needs %zu MB (%zu bytes per point), maintenance_work_mem is %d MB.",
						   want, dim, w, need / (1024 * 1024) + 1, per,
						   maintenance_work_mem / 1024),
				 errhint("Increase maintenance_work_mem, or use segment.create_kmeans_model() with the option '{\"method\": \"step\"}'.")));
	need = mul_size(mul_size((Size) want, (Size) dim), sizeof(double));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("k-means input is too large for the in-memory fit"),
			 errdetail("The points need at least %zu MB, the in-memory fit holds at most 1 GB.",
					   need / (1024 * 1024) + 1),
			 errhint("Use segment.create_kmeans_model() with the option '{\"method\": \"step\"}'.")));
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
 * else a copy four times as large, up to the limit.  The copy is made in
 * CurrentMemoryContext: the executor copies a changed transition value into
 * the aggregate context and frees the old one, so each growth is copied
 * twice into fresh pages (growing fourfold, not twofold, took a fifth off
 * collecting ten million points).
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
	kmeans_check_memory(want, p->dim, p->s + KP_OPTS, p->optlen);
	limit = kmeans_max_points(p->dim, p->s + KP_OPTS, p->optlen, want);
	newcap = Min(Max(Max(p->cap * 4, want), KMEANS_INITIAL_POINTS), limit);
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

/*
 * The row's feature array.  A short one (1-byte header: up to 12 features)
 * is copied to buf, aligned, instead of detoasted into a palloc'd copy:
 * that was a tenth of the time of collecting ten million points.
 */
static ArrayType *
kmeans_row_array(Datum d, double *buf, Size bufsz)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);

	if (VARATT_IS_SHORT(v) && !VARATT_IS_EXTERNAL(v) &&
		VARSIZE_SHORT(v) - VARHDRSZ_SHORT + VARHDRSZ <= bufsz)
	{
		Size		len = VARSIZE_SHORT(v) - VARHDRSZ_SHORT;
		ArrayType  *a = (ArrayType *) buf;

		SET_VARSIZE(a, len + VARHDRSZ);
		memcpy(VARDATA(a), VARDATA_SHORT(v), len);
		return a;
	}
	return DatumGetArrayTypeP(d);
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
	double		rowbuf[17];		/* a short varlena's 127 bytes, 4-byte header */

	(void) segment_aggregate_context(fcinfo);
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
	v = kmeans_check_features(kmeans_row_array(PG_GETARG_DATUM(1), rowbuf, sizeof(rowbuf)),
							  state ? p.dim : 0, &dim);

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

	(void) segment_aggregate_context(fcinfo);
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
	elog(DEBUG2, "k-means combine: " INT64_FORMAT " + " INT64_FORMAT " points", l.n, r.n);
	left = kmeans_points_reserve(left, &l, r.n);
	memcpy(l.points + l.n * l.dim, r.points, mul_size(mul_size(r.n, r.dim), sizeof(double)));
	l.s[KP_N] = l.n + r.n;
	PG_RETURN_ARRAYTYPE_P(left);
}
