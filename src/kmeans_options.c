/*
 * kmeans_options.c
 *	  Parsing of the jsonb options of a k-means fit, and small helpers to read
 *	  numbers and arrays out of jsonb (shared with the model's input function).
 *
 * Options (all optional):
 *   seed (integer, default 0), n_init (restarts, default 10), max_iter
 *   (default 300), tol (default 1e-4, relative to the mean feature variance
 *   as in scikit-learn), algorithm ("hamerly" or "lloyd"), standardize
 *   (z-score, default false), log1p (true, or one boolean per feature),
 *   init (an array of k initial centroids in the raw feature space; implies
 *   a single run), silhouette_sample (default 1000, for choosing k),
 *   workers (parallel workers for the restarts; default
 *   max_parallel_workers_per_gather from 50000 points on), method and
 *   init_sample (read by the SQL driver).
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "kmeans.h"

/* Defaults of every option. */
void
kmeans_default_options(KMeansOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->seed = 0;
	opts->n_init = 10;
	opts->max_iter = 300;
	opts->tol = 1e-4;
	opts->standardize = false;
	opts->algorithm = KMEANS_ALGO_HAMERLY;
	opts->silhouette_sample = 1000;
	opts->workers = -1;
	opts->init_sample = 100000;
}

static void
kmeans_option_error(const char *name, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("k-means option \"%s\" must be %s", name, expected)));
}

/* A jsonb number as a double, or an error naming what it is. */
double
kmeans_numeric_to_double(JsonbValue *v, const char *what)
{
	if (v->type != jbvNumeric)
		kmeans_option_error(what, "a number");
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8,
											  NumericGetDatum(v->val.numeric)));
}

/* A jsonb integer within [lo, hi]. */
static int64
kmeans_json_int(JsonbValue *v, const char *what, int64 lo, int64 hi)
{
	double		x = kmeans_numeric_to_double(v, what);

	if (!(x == floor(x) && x >= (double) lo && x <= (double) hi))
	{
		char		buf[100];

		snprintf(buf, sizeof(buf), "an integer between " INT64_FORMAT " and " INT64_FORMAT, lo, hi);
		kmeans_option_error(what, buf);
	}
	return (int64) x;
}

/* A jsonb array of numbers (given as jbvBinary) as a palloc'd double array. */
double *
kmeans_json_floats(JsonbValue *v, const char *what, int *len)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken r;
	double	   *out;
	int			n = 0,
				cap;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		kmeans_option_error(what, "an array of numbers");
	cap = Max(JsonContainerSize(v->val.binary.data), 1);
	out = palloc(sizeof(double) * cap);
	it = JsonbIteratorInit(v->val.binary.data);
	while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (r != WJB_ELEM)
			continue;
		if (e.type != jbvNumeric)
			kmeans_option_error(what, "an array of numbers");
		out[n++] = kmeans_numeric_to_double(&e, what);
	}
	*len = n;
	return out;
}

/* A jsonb array of booleans. */
static bool *
kmeans_json_bools(JsonbValue *v, const char *what, int *len)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken r;
	bool	   *out;
	int			n = 0;

	out = palloc(sizeof(bool) * Max(JsonContainerSize(v->val.binary.data), 1));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (r != WJB_ELEM)
			continue;
		if (e.type != jbvBool)
			kmeans_option_error(what, "true, false or an array of booleans");
		out[n++] = e.val.boolean;
	}
	*len = n;
	return out;
}

/* A jsonb array of arrays of numbers, all of the same length, row-major. */
static double *
kmeans_json_matrix(JsonbValue *v, const char *what, int *rows, int *cols)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken r;
	double	   *out = NULL;
	int			nr = 0,
				nc = -1,
				cap;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) == 0)
		kmeans_option_error(what, "a non-empty array of arrays of numbers");
	cap = JsonContainerSize(v->val.binary.data);
	it = JsonbIteratorInit(v->val.binary.data);
	while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		double	   *row;
		int			len;

		if (r != WJB_ELEM)
			continue;
		if (e.type != jbvBinary)
			kmeans_option_error(what, "a non-empty array of arrays of numbers");
		row = kmeans_json_floats(&e, what, &len);
		if (nc < 0)
		{
			if (len < 1 || len > KMEANS_MAX_DIM)
				kmeans_option_error(what, "an array of non-empty arrays of numbers");
			nc = len;
			out = palloc(sizeof(double) * cap * nc);
		}
		else if (len != nc)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means option \"%s\" has rows of different lengths", what),
					 errdetail("Row 1 has %d values, row %d has %d.", nc, nr + 1, len)));
		memcpy(out + (Size) nr * nc, row, sizeof(double) * nc);
		pfree(row);
		nr++;
	}
	*rows = nr;
	*cols = nc;
	return out;
}

/* Parse a jsonb options object into opts (which holds the defaults first). */
void
kmeans_parse_options(Jsonb *jb, KMeansOptions *opts)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;

	kmeans_default_options(opts);
	if (jb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means options must be a jsonb object"),
				 errhint("For example '{\"seed\": 42, \"n_init\": 10, \"standardize\": true}'.")));

	it = JsonbIteratorInit(&jb->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;

		if (r != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		r = JsonbIteratorNext(&it, &v, true);
		if (r != WJB_VALUE)
			elog(ERROR, "unexpected jsonb token %d after key \"%s\"", (int) r, key);

		if (strcmp(key, "seed") == 0)
			opts->seed = kmeans_json_int(&v, key, PG_INT64_MIN / 2, PG_INT64_MAX / 2);
		else if (strcmp(key, "n_init") == 0)
			opts->n_init = (int) kmeans_json_int(&v, key, 1, 1000);
		else if (strcmp(key, "max_iter") == 0)
			opts->max_iter = (int) kmeans_json_int(&v, key, 0, 100000);
		else if (strcmp(key, "tol") == 0)
		{
			opts->tol = kmeans_numeric_to_double(&v, key);
			if (!(opts->tol >= 0 && isfinite(opts->tol)))
				kmeans_option_error(key, "a finite number >= 0");
		}
		else if (strcmp(key, "silhouette_sample") == 0)
			opts->silhouette_sample = (int) kmeans_json_int(&v, key, 2, 100000);
		else if (strcmp(key, "workers") == 0)
			opts->workers = (int) kmeans_json_int(&v, key, 0, 64);
		else if (strcmp(key, "init_sample") == 0)
			opts->init_sample = kmeans_json_int(&v, key, 1, PG_INT32_MAX);
		else if (strcmp(key, "standardize") == 0)
		{
			if (v.type != jbvBool)
				kmeans_option_error(key, "true or false");
			opts->standardize = v.val.boolean;
		}
		else if (strcmp(key, "algorithm") == 0)
		{
			if (v.type == jbvString && v.val.string.len == 7 &&
				strncmp(v.val.string.val, "hamerly", 7) == 0)
				opts->algorithm = KMEANS_ALGO_HAMERLY;
			else if (v.type == jbvString && v.val.string.len == 5 &&
					 strncmp(v.val.string.val, "lloyd", 5) == 0)
				opts->algorithm = KMEANS_ALGO_LLOYD;
			else
				kmeans_option_error(key, "\"hamerly\" or \"lloyd\"");
		}
		else if (strcmp(key, "method") == 0)
		{
			if (!(v.type == jbvString &&
				  ((v.val.string.len == 6 && strncmp(v.val.string.val, "memory", 6) == 0) ||
				   (v.val.string.len == 4 && strncmp(v.val.string.val, "step", 4) == 0))))
				kmeans_option_error(key, "\"memory\" or \"step\"");
		}
		else if (strcmp(key, "log1p") == 0)
		{
			if (v.type == jbvBool)
			{
				opts->log1p_all = v.val.boolean;
				opts->n_log1p = 0;
			}
			else if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
			{
				opts->log1p = kmeans_json_bools(&v, key, &opts->n_log1p);
				if (opts->n_log1p == 0)
					kmeans_option_error(key, "true, false or an array of booleans");
			}
			else
				kmeans_option_error(key, "true, false or an array of booleans");
		}
		else if (strcmp(key, "init") == 0)
		{
			opts->init = kmeans_json_matrix(&v, key, &opts->init_k, &opts->init_dim);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized k-means option \"%s\"", key),
					 errhint("Valid options are seed, n_init, max_iter, tol, algorithm, standardize, log1p, init, silhouette_sample, workers, method and init_sample.")));
		pfree(key);
	}
	/* explicit initial centroids make restarts pointless */
	if (opts->init)
		opts->n_init = 1;
}
