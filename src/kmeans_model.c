/*
 * kmeans_model.c
 *	  The stored k-means model type (segment.kmeans_model): text input and
 *	  output, validation, the feature transform, and the functions that use a
 *	  model: kmeans_assign, kmeans_distance and kmeans_centroids.
 *
 * The text form is a JSON object, so a model can be read by people and by
 * jsonb (model::text::jsonb), dumped and restored:
 *   {"version": 1, "k": 2, "dim": 2, "n": 6, "inertia": 1.5, "iterations": 2,
 *    "n_init": 10, "max_iter": 300, "tol": 0.0001, "tol_abs": 1e-4,
 *    "seed": 0, "algorithm": "hamerly", "method": "memory",
 *    "standardize": false, "log1p": [false, false], "center": [0, 0],
 *    "scale": [1, 1], "sizes": [3, 3], "centroids": [[0, 0.5], [10, 10.5]]}
 * Numbers are written with the shortest exact representation, so a model
 * survives the round trip bit for bit.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kmeans.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(segment_kmeans_model_in);
PG_FUNCTION_INFO_V1(segment_kmeans_model_out);
PG_FUNCTION_INFO_V1(segment_kmeans_assign);
PG_FUNCTION_INFO_V1(segment_kmeans_distance);
PG_FUNCTION_INFO_V1(segment_kmeans_centroids);

/* Bytes taken by a model with k centroids of dim features. */
Size
kmeans_model_size(int k, int dim)
{
	Size		nvals = add_size(mul_size(3, dim), add_size(mul_size(k, dim), k));

	return add_size(offsetof(KMeansModel, data), mul_size(nvals, sizeof(float8)));
}

/* A zeroed model of the given shape in CurrentMemoryContext. */
KMeansModel *
kmeans_model_alloc(int k, int dim)
{
	Size		sz = kmeans_model_size(k, dim);
	KMeansModel *m = palloc0(sz);

	SET_VARSIZE(m, sz);
	m->version = KMEANS_MODEL_VERSION;
	m->k = k;
	m->dim = dim;
	return m;
}

/* Raise an error unless k is an allowed number of clusters. */
void
kmeans_check_k(int k)
{
	if (k < 1 || k > KMEANS_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of clusters k must be between 1 and %d", KMEANS_MAX_K),
				 errdetail("Got %d.", k)));
}

/* Error for features whose squared distances overflow double precision. */
void
kmeans_too_large(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("feature values are too large to cluster"),
			 errdetail("Squared distances between the points overflow double precision."),
			 errhint("Rescale the features, or take their logarithm (option \"log1p\").")));
}

static void
kmeans_model_corrupt(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid k-means model"),
			 errdetail("%s", detail)));
}

/*
 * Validate a model's header and values; every function taking a model calls
 * this, since a model may come from a hand-edited text form or binary upgrade.
 */
KMeansModel *
kmeans_model_check(KMeansModel *m)
{
	int			j;

	if (VARSIZE(m) < offsetof(KMeansModel, data))
		kmeans_model_corrupt("The model is too short.");
	if (m->version != KMEANS_MODEL_VERSION)
		kmeans_model_corrupt("Unknown model version.");
	if (m->k < 1 || m->k > KMEANS_MAX_K || m->dim < 1 || m->dim > KMEANS_MAX_DIM)
		kmeans_model_corrupt("k or dim is out of range.");
	if (VARSIZE(m) != kmeans_model_size(m->k, m->dim))
		kmeans_model_corrupt("The size does not match k and dim.");
	for (j = 0; j < m->dim; j++)
		if (!(KMEANS_SCALE(m)[j] > 0 && isfinite(KMEANS_SCALE(m)[j]) &&
			  isfinite(KMEANS_CENTER(m)[j])))
			kmeans_model_corrupt("Scales must be positive and finite, centers finite.");
	for (j = 0; j < m->k * m->dim; j++)
		if (!isfinite(KMEANS_CENTROIDS(m)[j]))
			kmeans_model_corrupt("Centroids must be finite.");
	/* the settings as a fit writes them (kmeans_options.c has the same ranges) */
	if (m->n < 0 || m->iterations < 0 || m->n_init < 1 || m->n_init > 1000 ||
		m->max_iter < 0 || m->max_iter > 100000)
		kmeans_model_corrupt("n, iterations, n_init or max_iter is out of range.");
	if ((m->flags & ~(KMEANS_FLAG_STANDARDIZE | KMEANS_FLAG_LLOYD | KMEANS_FLAG_STEP)) != 0)
		kmeans_model_corrupt("Unknown model flags.");
	if (!(m->tol >= 0 && isfinite(m->tol)) || !(m->tol_abs >= 0 && isfinite(m->tol_abs)) ||
		!(m->inertia >= 0 && isfinite(m->inertia)))
		kmeans_model_corrupt("tol, tol_abs and inertia must be finite and not negative.");
	for (j = 0; j < m->dim; j++)
		if (KMEANS_LOG1P(m)[j] != 0 && KMEANS_LOG1P(m)[j] != 1)
			kmeans_model_corrupt("The log1p flags must be 0 or 1.");
	for (j = 0; j < m->k; j++)
		if (!(KMEANS_SIZES(m)[j] >= 0 && KMEANS_SIZES(m)[j] <= 9007199254740992.0 &&
			  KMEANS_SIZES(m)[j] == floor(KMEANS_SIZES(m)[j])))
			kmeans_model_corrupt("Cluster sizes must be whole numbers, not negative.");
	return m;
}

/*
 * Check a feature vector: a one-dimensional float8 array without nulls, of
 * expect_dim elements (any non-zero length when expect_dim is 0), all finite.
 * Returns a pointer to its values.
 */
const double *
kmeans_check_features(ArrayType *a, int expect_dim, int *dim)
{
	int			n;
	const double *v;
	int			j;

	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("feature vector must be float8[]")));
	if (ARR_NDIM(a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature vector must not be empty")));
	if (ARR_NDIM(a) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature vector must be one-dimensional"),
				 errdetail("Got %d dimensions.", ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("feature vector must not contain nulls"),
				 errhint("Replace missing values, e.g. with coalesce(), or filter those rows out.")));
	n = ARR_DIMS(a)[0];
	if (n > KMEANS_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("feature vector has too many elements"),
				 errdetail("Got %d, the maximum is %d.", n, KMEANS_MAX_DIM)));
	if (expect_dim > 0 && n != expect_dim)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("feature vectors must all have the same length"),
				 errdetail("Expected %d features, got %d.", expect_dim, n)));
	v = (const double *) ARR_DATA_PTR(a);
	for (j = 0; j < n; j++)
		if (!isfinite(v[j]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature values must be finite"),
					 errdetail("Feature %d is %s.", j + 1,
							   isnan(v[j]) ? "NaN" : (v[j] > 0 ? "Infinity" : "-Infinity"))));
	*dim = n;
	return v;
}

/* Apply the model's transform (log1p, then z-score) to one raw vector. */
void
kmeans_transform(const KMeansModel *m, const double *raw, double *out)
{
	const double *lg = KMEANS_LOG1P(m);
	const double *ce = KMEANS_CENTER(m);
	const double *sc = KMEANS_SCALE(m);
	int			j;

	for (j = 0; j < m->dim; j++)
	{
		double		v = raw[j];

		if (lg[j] != 0)
		{
			if (!(v > -1))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature %d must be greater than -1 to take log1p", j + 1),
						 errdetail("Got %g.", v)));
			v = log1p(v);
		}
		out[j] = (v - ce[j]) / sc[j];
		/* a tiny scale can take a finite feature to infinity */
		if (!isfinite(out[j]))
			kmeans_too_large();
	}
}

/* Centroid j mapped back to the raw feature space (inverse transform). */
void
kmeans_raw_centroid(const KMeansModel *m, int j, double *out)
{
	int			c;

	for (c = 0; c < m->dim; c++)
	{
		double		v = KMEANS_CENTROIDS(m)[(Size) j * m->dim + c] * KMEANS_SCALE(m)[c] +
			KMEANS_CENTER(m)[c];

		out[c] = KMEANS_LOG1P(m)[c] != 0 ? expm1(v) : v;
	}
}

static void
kmeans_append_double(StringInfo buf, double v)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(v, tmp);
	appendStringInfoString(buf, tmp);
}

static void
kmeans_append_array(StringInfo buf, const char *key, const double *v, int n, bool as_bool)
{
	int			j;

	appendStringInfo(buf, ", \"%s\": [", key);
	for (j = 0; j < n; j++)
	{
		if (j > 0)
			appendStringInfoString(buf, ", ");
		if (as_bool)
			appendStringInfoString(buf, v[j] != 0 ? "true" : "false");
		else
			kmeans_append_double(buf, v[j]);
	}
	appendStringInfoChar(buf, ']');
}

/* Output function: the JSON text form. */
Datum
segment_kmeans_model_out(PG_FUNCTION_ARGS)
{
	KMeansModel *m = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(0));
	StringInfoData buf;
	int			j;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"version\": %d, \"k\": %d, \"dim\": %d, \"n\": " INT64_FORMAT,
					 m->version, m->k, m->dim, m->n);
	appendStringInfoString(&buf, ", \"inertia\": ");
	kmeans_append_double(&buf, m->inertia);
	appendStringInfo(&buf, ", \"iterations\": %d, \"n_init\": %d, \"max_iter\": %d, \"tol\": ",
					 m->iterations, m->n_init, m->max_iter);
	kmeans_append_double(&buf, m->tol);
	appendStringInfoString(&buf, ", \"tol_abs\": ");
	kmeans_append_double(&buf, m->tol_abs);
	appendStringInfo(&buf, ", \"seed\": " INT64_FORMAT ", \"algorithm\": \"%s\", \"method\": \"%s\", \"standardize\": %s",
					 m->seed,
					 (m->flags & KMEANS_FLAG_LLOYD) ? "lloyd" : "hamerly",
					 (m->flags & KMEANS_FLAG_STEP) ? "step" : "memory",
					 (m->flags & KMEANS_FLAG_STANDARDIZE) ? "true" : "false");
	kmeans_append_array(&buf, "log1p", KMEANS_LOG1P(m), m->dim, true);
	kmeans_append_array(&buf, "center", KMEANS_CENTER(m), m->dim, false);
	kmeans_append_array(&buf, "scale", KMEANS_SCALE(m), m->dim, false);
	kmeans_append_array(&buf, "sizes", KMEANS_SIZES(m), m->k, false);
	appendStringInfoString(&buf, ", \"centroids\": [");
	for (j = 0; j < m->k; j++)
	{
		int			c;

		if (j > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoChar(&buf, '[');
		for (c = 0; c < m->dim; c++)
		{
			if (c > 0)
				appendStringInfoString(&buf, ", ");
			kmeans_append_double(&buf, KMEANS_CENTROIDS(m)[(Size) j * m->dim + c]);
		}
		appendStringInfoChar(&buf, ']');
	}
	appendStringInfoString(&buf, "]}");
	PG_RETURN_CSTRING(buf.data);
}

static void
kmeans_model_syntax(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type kmeans_model"),
			 errdetail("%s", detail)));
}

/* The value of a required key of the model's JSON object. */
static JsonbValue *
kmeans_model_key(Jsonb *jb, const char *key, JsonbValue *res)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), res);

	if (v == NULL)
		kmeans_model_syntax(psprintf("Key \"%s\" is missing.", key));
	return v;
}

static int64
kmeans_model_int(Jsonb *jb, const char *key)
{
	JsonbValue	v;
	double		x;

	kmeans_model_key(jb, key, &v);
	if (v.type != jbvNumeric)
		kmeans_model_syntax(psprintf("\"%s\" must be a number.", key));
	x = kmeans_numeric_to_double(&v, key);
	if (x != floor(x) || fabs(x) > 9007199254740992.0)
		kmeans_model_syntax(psprintf("\"%s\" must be an integer.", key));
	return (int64) x;
}

/* An integer key that must fit an int32 field (range checked by kmeans_model_check). */
static int32
kmeans_model_int32(Jsonb *jb, const char *key)
{
	int64		v = kmeans_model_int(jb, key);

	if (v < PG_INT32_MIN || v > PG_INT32_MAX)
		kmeans_model_syntax(psprintf("\"%s\" is out of range.", key));
	return (int32) v;
}

static double
kmeans_model_float(Jsonb *jb, const char *key)
{
	JsonbValue	v;

	kmeans_model_key(jb, key, &v);
	if (v.type != jbvNumeric)
		kmeans_model_syntax(psprintf("\"%s\" must be a number.", key));
	return kmeans_numeric_to_double(&v, key);
}

static bool
kmeans_model_bool(Jsonb *jb, const char *key)
{
	JsonbValue	v;

	kmeans_model_key(jb, key, &v);
	if (v.type != jbvBool)
		kmeans_model_syntax(psprintf("\"%s\" must be true or false.", key));
	return v.val.boolean;
}

/* Whether a string-valued key equals one of two values (true for the first). */
static bool
kmeans_model_choice(Jsonb *jb, const char *key, const char *a, const char *b)
{
	JsonbValue	v;

	kmeans_model_key(jb, key, &v);
	if (v.type == jbvString && v.val.string.len == strlen(a) &&
		strncmp(v.val.string.val, a, v.val.string.len) == 0)
		return true;
	if (v.type == jbvString && v.val.string.len == strlen(b) &&
		strncmp(v.val.string.val, b, v.val.string.len) == 0)
		return false;
	kmeans_model_syntax(psprintf("\"%s\" must be \"%s\" or \"%s\".", key, a, b));
	return false;
}

/* Copy a numeric (or boolean, as 0/1) array of exactly n values to out. */
static void
kmeans_model_array(Jsonb *jb, const char *key, double *out, int n, bool as_bool)
{
	JsonbValue	v;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken r;
	int			i = 0;

	kmeans_model_key(jb, key, &v);
	if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data) ||
		JsonContainerSize(v.val.binary.data) != n)
		kmeans_model_syntax(psprintf("\"%s\" must be an array of %d values.", key, n));
	it = JsonbIteratorInit(v.val.binary.data);
	while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (r != WJB_ELEM)
			continue;
		if (as_bool && e.type == jbvBool)
			out[i++] = e.val.boolean ? 1 : 0;
		else if (!as_bool && e.type == jbvNumeric)
			out[i++] = kmeans_numeric_to_double(&e, key);
		else
			kmeans_model_syntax(psprintf("\"%s\" must hold %s.", key,
										 as_bool ? "booleans" : "numbers"));
	}
}

/* Input function: parse the JSON text form and validate it. */
Datum
segment_kmeans_model_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	Jsonb	   *jb;
	KMeansModel *m;
	int64		k,
				dim;
	JsonbValue	v;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken r;
	int			j = 0;

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(str)));
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		kmeans_model_syntax("A model is a JSON object.");
	if (kmeans_model_int(jb, "version") != KMEANS_MODEL_VERSION)
		kmeans_model_syntax("Unknown model version.");
	k = kmeans_model_int(jb, "k");
	dim = kmeans_model_int(jb, "dim");
	if (k < 1 || k > KMEANS_MAX_K || dim < 1 || dim > KMEANS_MAX_DIM)
		kmeans_model_syntax("\"k\" or \"dim\" is out of range.");

	m = kmeans_model_alloc((int) k, (int) dim);
	m->n = kmeans_model_int(jb, "n");
	m->inertia = kmeans_model_float(jb, "inertia");
	m->iterations = kmeans_model_int32(jb, "iterations");
	m->n_init = kmeans_model_int32(jb, "n_init");
	m->max_iter = kmeans_model_int32(jb, "max_iter");
	m->tol = kmeans_model_float(jb, "tol");
	m->tol_abs = kmeans_model_float(jb, "tol_abs");
	m->seed = kmeans_model_int(jb, "seed");
	if (!kmeans_model_choice(jb, "algorithm", "hamerly", "lloyd"))
		m->flags |= KMEANS_FLAG_LLOYD;
	if (!kmeans_model_choice(jb, "method", "memory", "step"))
		m->flags |= KMEANS_FLAG_STEP;
	if (kmeans_model_bool(jb, "standardize"))
		m->flags |= KMEANS_FLAG_STANDARDIZE;
	kmeans_model_array(jb, "log1p", KMEANS_LOG1P(m), m->dim, true);
	kmeans_model_array(jb, "center", KMEANS_CENTER(m), m->dim, false);
	kmeans_model_array(jb, "scale", KMEANS_SCALE(m), m->dim, false);
	kmeans_model_array(jb, "sizes", KMEANS_SIZES(m), m->k, false);

	kmeans_model_key(jb, "centroids", &v);
	if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data) ||
		JsonContainerSize(v.val.binary.data) != k)
		kmeans_model_syntax("\"centroids\" must be an array of k arrays.");
	it = JsonbIteratorInit(v.val.binary.data);
	while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		double	   *row;
		int			len;

		if (r != WJB_ELEM)
			continue;
		if (e.type != jbvBinary)
			kmeans_model_syntax("\"centroids\" must be an array of k arrays.");
		row = kmeans_json_floats(&e, "centroids", &len);
		if (len != dim)
			kmeans_model_syntax("Each centroid must have dim values.");
		memcpy(KMEANS_CENTROIDS(m) + (Size) j * dim, row, sizeof(double) * dim);
		j++;
	}
	kmeans_model_check(m);
	PG_RETURN_POINTER(m);
}

/* Nearest centroid of a raw feature vector: 0-based index and distance. */
static int
kmeans_assign_one(KMeansModel *m, ArrayType *a, double *dist)
{
	int			dim;
	const double *raw = kmeans_check_features(a, m->dim, &dim);
	double		buf[64];
	double	   *z = m->dim <= 64 ? buf : palloc(sizeof(double) * m->dim);
	double		sq;
	int			j;

	kmeans_transform(m, raw, z);
	j = kmeans_nearest(z, KMEANS_CENTROIDS(m), m->k, m->dim, &sq);
	if (z != buf)
		pfree(z);
	/* every squared distance overflowed: no centroid is nearest */
	if (!isfinite(sq))
		kmeans_too_large();
	*dist = sqrt(sq);
	return j;
}

/* kmeans_assign(model, features): cluster number 1..k of the nearest centroid. */
Datum
segment_kmeans_assign(PG_FUNCTION_ARGS)
{
	KMeansModel *m = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(0));
	double		dist;

	PG_RETURN_INT32(kmeans_assign_one(m, PG_GETARG_ARRAYTYPE_P(1), &dist) + 1);
}

/* kmeans_distance(model, features): distance to the nearest centroid. */
Datum
segment_kmeans_distance(PG_FUNCTION_ARGS)
{
	KMeansModel *m = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(0));
	double		dist;

	kmeans_assign_one(m, PG_GETARG_ARRAYTYPE_P(1), &dist);
	PG_RETURN_FLOAT8(dist);
}

/*
 * kmeans_centroids(model): one row per cluster with its size, its centroid
 * in the raw feature space and in the model's (transformed) space.
 */
Datum
segment_kmeans_centroids(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	KMeansModel *m = kmeans_model_check(PG_GETARG_KMEANS_MODEL_P(0));
	Datum	   *raw = palloc(sizeof(Datum) * m->dim);
	Datum	   *scaled = palloc(sizeof(Datum) * m->dim);
	double	   *tmp = palloc(sizeof(double) * m->dim);
	int			j;

	segment_materialized_srf(fcinfo);
	for (j = 0; j < m->k; j++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int			c;

		kmeans_raw_centroid(m, j, tmp);
		for (c = 0; c < m->dim; c++)
		{
			raw[c] = Float8GetDatum(tmp[c]);
			scaled[c] = Float8GetDatum(KMEANS_CENTROIDS(m)[(Size) j * m->dim + c]);
		}
		values[0] = Int32GetDatum(j + 1);
		values[1] = Int64GetDatum((int64) KMEANS_SIZES(m)[j]);
		values[2] = PointerGetDatum(construct_array(raw, m->dim, FLOAT8OID, sizeof(float8),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[3] = PointerGetDatum(construct_array(scaled, m->dim, FLOAT8OID, sizeof(float8),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
