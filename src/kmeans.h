/*
 * kmeans.h
 *	  Declarations shared by the k-means files of the segment extension:
 *	  the stored model type, fit options, the feature transform and the
 *	  clustering core.
 */
#ifndef SEGMENT_KMEANS_H
#define SEGMENT_KMEANS_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#define KMEANS_MAX_K 1000
#define KMEANS_MAX_DIM 1000
#define KMEANS_MODEL_VERSION 1
#define KMEANS_MAX_TRIALS 16		/* k-means++ candidates: 2 + ln(KMEANS_MAX_K) */
#define KMEANS_BLOCK 8			/* centres per distance block */
#define KMEANS_SORT_PIECES 2048	/* first pass of the sort of the points */
/* k-means++ draws from a sample of max(MIN, PER_K * k) points when larger */
#define KMEANS_SEED_SAMPLE_MIN 100000
#define KMEANS_SEED_SAMPLE_PER_K 2000
/*
 * Then the restarts run on the sample, KMEANS_SAMPLE_RESTARTS for each of
 * n_init (they are cheap there), and the best KMEANS_REFINE are refined on all
 */
#define KMEANS_SAMPLE_RESTARTS 3
#define KMEANS_REFINE 3

/* model flags */
#define KMEANS_FLAG_STANDARDIZE 0x01
#define KMEANS_FLAG_LLOYD 0x02
#define KMEANS_FLAG_STEP 0x04

/*
 * The stored model (SQL type segment.kmeans_model), a varlena with this
 * fixed header followed by float8 arrays, in order:
 *   log1p[dim] (1 = log1p applied to that feature, else 0),
 *   center[dim], scale[dim] (z = (x - center) / scale after log1p),
 *   centroids[k * dim] (in the transformed space), sizes[k].
 * Its text form is a JSON object (see kmeans_model.c).
 */
typedef struct KMeansModel
{
	int32		vl_len_;
	int32		version;
	int32		k;
	int32		dim;
	int32		iterations;
	int32		n_init;
	int32		max_iter;
	int32		flags;
	int64		seed;
	int64		n;				/* number of points fitted */
	float8		tol;			/* relative tolerance, as given */
	float8		tol_abs;		/* tol * mean variance of the transformed data */
	float8		inertia;
	float8		data[FLEXIBLE_ARRAY_MEMBER];
} KMeansModel;

#define KMEANS_LOG1P(m)		((m)->data)
#define KMEANS_CENTER(m)	((m)->data + (m)->dim)
#define KMEANS_SCALE(m)		((m)->data + 2 * (m)->dim)
#define KMEANS_CENTROIDS(m) ((m)->data + 3 * (m)->dim)
#define KMEANS_SIZES(m)		((m)->data + 3 * (m)->dim + (m)->k * (m)->dim)

#define DatumGetKMeansModelP(X) ((KMeansModel *) PG_DETOAST_DATUM(X))
#define PG_GETARG_KMEANS_MODEL_P(n) DatumGetKMeansModelP(PG_GETARG_DATUM(n))

/* algorithms */
#define KMEANS_ALGO_HAMERLY 0
#define KMEANS_ALGO_LLOYD 1

/* Options of a fit, parsed from a jsonb object (kmeans_options.c). */
typedef struct KMeansOptions
{
	int64		seed;
	int			n_init;
	int			max_iter;
	double		tol;
	bool		standardize;
	int			algorithm;
	bool		log1p_all;		/* "log1p": true */
	int			n_log1p;		/* "log1p": [bool, ...]; 0 when absent */
	bool	   *log1p;
	int			init_k;			/* "init": [[...], ...] raw centroids; 0 if absent */
	int			init_dim;
	double	   *init;
	int			silhouette_sample;
	int			workers;		/* parallel workers for restarts; -1 = default */
	int64		init_sample;	/* step driver only, read in SQL */
} KMeansOptions;

/* A small seeded generator (xoshiro256**), the same on every platform. */
typedef struct KMeansRandom
{
	uint64		s[4];
} KMeansRandom;

/* Result of one clustering run. */
typedef struct KMeansResult
{
	double	   *centers;		/* k * d */
	int		   *labels;			/* n */
	double		inertia;
	int			iterations;
} KMeansResult;

/*
 * The in-memory aggregates' state: a float8[] with a header, the parsed
 * options from index KP_OPTS on, then the points (kmeans_state.c).
 */
#define KP_OPTS 4

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

/* kmeans_state.c */
extern void kmeans_points_view(ArrayType *a, KMeansPoints *p, const double *enc, int enclen);
extern void kmeans_decode_options(const double *enc, KMeansOptions *o);

/* kmeans_options.c */
extern void kmeans_parse_options(Jsonb *jb, KMeansOptions *opts);
extern void kmeans_default_options(KMeansOptions *opts);
extern double kmeans_numeric_to_double(JsonbValue *v, const char *what);
extern double *kmeans_json_floats(JsonbValue *v, const char *what, int *len);

/*
 * Squared Euclidean distance; static inline because calls to exported
 * functions of a shared library are not inlined (-fPIC), and this is the
 * innermost loop of everything.  Unrolled by four, the terms still added in
 * feature order (the same rounding as the plain loop).
 */
static inline double
kmeans_sqdist(const double *a, const double *b, int d)
{
	double		s = 0;
	int			j = 0;

	for (; j + 4 <= d; j += 4)
	{
		double		t0 = a[j] - b[j];
		double		t1 = a[j + 1] - b[j + 1];
		double		t2 = a[j + 2] - b[j + 2];
		double		t3 = a[j + 3] - b[j + 3];

		s += t0 * t0;
		s += t1 * t1;
		s += t2 * t2;
		s += t3 * t3;
	}
	for (; j < d; j++)
	{
		double		t = a[j] - b[j];

		s += t * t;
	}
	return s;
}

/* kmeans_core.c */
extern double kmeans_clock(void);
extern void kmeans_random_seed(KMeansRandom *rng, uint64 seed);
extern double kmeans_random_double(KMeansRandom *rng);
extern int	kmeans_nearest(const double *x, const double *centers, int k, int d,
						   double *sqdist);
extern void kmeans_plusplus(const double *x, int64 n, int d, int k,
							KMeansRandom *rng, double *centers);
extern void kmeans_run(const double *x, int64 n, int d, int k, const double *init,
					   int max_iter, double tol_abs, int algorithm,
					   KMeansResult *res);
extern void kmeans_relocate_empty(const double *x, int64 n, int d, int k,
								  const int *labels, const double *dist,
								  const double *old_centers,
								  double *sums, double *counts);
extern double kmeans_assign_all(const double *x, int64 n, int d, int k,
								 const double *centers, int *labels);
extern double kmeans_silhouette_sample(const double *x, int64 n, int d, int k,
									   const int *labels, int sample,
									   KMeansRandom *rng);
extern double kmeans_simplified_silhouette(const double *x, int64 n, int d,
										   int k, const double *centers,
										   const int *labels);

/* kmeans_parallel.c */
extern int	kmeans_plan_workers(int64 n, int n_init, int requested);
extern void kmeans_best_of_restarts(const double *x, int64 n, int d, int k,
									const double *init, int n_init, int max_iter,
									double tol_abs, int algorithm, int64 seed,
									int workers, double *centers, double *inertia,
									int *iterations);

/* kmeans_model.c */
extern Size kmeans_model_size(int k, int dim);
extern KMeansModel *kmeans_model_alloc(int k, int dim);
extern KMeansModel *kmeans_model_check(KMeansModel *m);
extern void kmeans_transform(const KMeansModel *m, const double *raw, double *out);
extern const double *kmeans_check_features(ArrayType *a, int expect_dim, int *dim);
extern void kmeans_raw_centroid(const KMeansModel *m, int j, double *out);
extern void kmeans_check_k(int k);
extern void kmeans_too_large(void);

#endif							/* SEGMENT_KMEANS_H */
