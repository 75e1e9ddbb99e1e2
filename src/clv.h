/*
 * clv.h
 *	  Declarations shared by the lifetime-value files (clv_*.c): the float8[]
 *	  row-list state of the fit and summary aggregates, the minimiser (BFGS,
 *	  Nelder-Mead as the fallback), the Gaussian hypergeometric series and the model composites.
 */
#ifndef SEGMENT_CLV_H
#define SEGMENT_CLV_H

#include "postgres.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/array.h"

/*
 * Aggregate state: a one-dimensional float8 array
 *   [0] rows stored, [1] row width, [2] kind, [3..5] kind-specific settings,
 *   then rows of width values each, then spare capacity.
 * A concrete SQL type, so Citus can push the fits down partially; the
 * transition function appends in place, doubling when full.
 */
#define CLV_STATE_HEADER 6

/* kinds of state, so that one aggregate's state is never fed to another */
#define CLV_KIND_BGNBD 1		/* rows (x, t_x, T); setting 0: penalizer */
#define CLV_KIND_GG 2			/* rows (x, mean value); setting 0: penalizer */
#define CLV_KIND_SUMMARY 3		/* rows (day, amount); settings: as_of day, unit, period */
#define CLV_KIND_MBGNBD 4		/* rows (x, t_x, T) as BG/NBD; setting 0: penalizer */
#define CLV_KIND_PARETO 5		/* rows (x, t_x, T); settings all 0 */
/* kinds whose rows are a customer's (x, t_x, T) */
#define CLV_KIND_IS_XTT(k) ((k) == CLV_KIND_BGNBD || (k) == CLV_KIND_MBGNBD || (k) == CLV_KIND_PARETO)

/* values per row of the fits' states: (x, t_x, T) and Gamma-Gamma's (x, mean value) */
#define BGNBD_WIDTH 3
#define GG_WIDTH 2

typedef struct ClvRows
{
	ArrayType  *state;			/* NULL until the first row */
	int64		count;
	int64		capacity;
	int			width;
	int			kind;
	float8		settings[3];
} ClvRows;

extern void clv_rows_read(ArrayType *state, int kind, int width, ClvRows *rows);
extern void clv_rows_init(ClvRows *rows, int kind, int width, const float8 *settings);
extern float8 *clv_rows_append(ClvRows *rows, int64 nrows, int64 initial_capacity);
extern float8 *clv_rows_data(const ClvRows *rows);
extern int64 clv_rows_distinct(const ClvRows *rows, double **distinct, double **weights);
extern void clv_rows_check(const ClvRows *rows);
extern void clv_check_result(double value, const char *what, bool may_be_infinite);
extern void clv_rows_check_settings(const ClvRows *rows, const float8 *settings,
									int nsettings, const char *what);

/* minimisation of f over R^n (n <= CLV_MAX_PARAMS): BFGS, Nelder-Mead as the fallback */
#define CLV_MAX_PARAMS 4

typedef double (*ClvObjective) (const double *x, void *arg);
/* the same, also filling grad[] with the gradient */
typedef double (*ClvObjectiveGrad) (const double *x, double *grad, void *arg);

typedef struct ClvOptimResult
{
	double		f;				/* objective at the minimum */
	int			iterations;		/* BFGS iterations, plus Nelder-Mead ones if it fell back */
	bool		converged;
} ClvOptimResult;

extern ClvOptimResult clv_minimise(ClvObjectiveGrad fg, ClvObjective f, void *arg,
								   double *x, int n);
extern ClvOptimResult clv_minimise_bfgs(ClvObjectiveGrad fg, void *arg, double *x, int n);

/* A fit of a sample of the rows, to start the fit of all of them from (src/clv_optim.c). */
typedef struct ClvWarmStart
{
	bool		warm;			/* the sample's fit converged */
	int			iterations;		/* its BFGS iterations */
	double		h[CLV_MAX_PARAMS][CLV_MAX_PARAMS];	/* its inverse Hessian */
} ClvWarmStart;

extern void clv_warm_start(ClvObjectiveGrad fg, void *sample_arg, double *x, int n,
						   ClvWarmStart *warm);
extern ClvOptimResult clv_minimise_warm(ClvObjectiveGrad fg, ClvObjective f, void *arg, double *x,
										const double *cold_x, int n, ClvWarmStart *warm);
extern bool clv_curvature_ok(ClvObjectiveGrad fg, void *arg, const double *x, int n);
extern bool clv_hessian_ok(double h[][CLV_MAX_PARAMS], int n);
extern double clv_trigamma(double x);
extern bool clv_params_from_logs(const double *lp, int n, double bound, double *p);
extern bool clv_hessian_over_log_params(int n, const double *p, double hp[][CLV_MAX_PARAMS],
										const double *g, double total_w, double penalizer,
										double h[][CLV_MAX_PARAMS]);
extern double clv_digamma(double x);

/* log |2F1(a, b; c; z)| for 0 <= z < 1, by its series; sign in *sign */
extern double clv_log_hyp2f1(double a, double b, double c, double z, int *sign);
#define CLV_HYP_MAX_Z 64
extern void clv_log_hyp2f1_multi(double a, double b, double c, const double *z, int nz,
								 double *out, int *sign);

/* validated parameters of a fitted (or user-given) model */
typedef struct ClvBgnbd
{
	double		r,
				alpha,
				a,
				b;
} ClvBgnbd;

typedef struct ClvGammaGamma
{
	double		p,
				q,
				v;
} ClvGammaGamma;

extern void clv_bgnbd_from_datum(Datum model, ClvBgnbd *m);
extern double clv_model_param(HeapTupleHeader t, int attno, const char *name, const char *model);
extern void clv_check_horizon(double t);
extern Datum clv_xtt_fit_trans(FunctionCallInfo fcinfo, int kind, const char *model);
extern void clv_check_repeat_at_zero(double x, double t_x, const char *model);
extern Datum clv_bgnbd_fit_final_kind(FunctionCallInfo fcinfo, int kind);
extern Datum clv_bgnbd_fit_rows(const ClvRows *rows, TupleDesc tupdesc);
extern Datum clv_gg_fit_rows(const ClvRows *rows, TupleDesc tupdesc);
extern void clv_mbgnbd_from_datum(Datum model, ClvBgnbd *m);
extern double clv_mbgnbd_expected(const ClvBgnbd *m, double t, double x, double t_x,
								  double t_cal);
extern void clv_models_cached(FunctionCallInfo fcinfo, int bg_arg, ClvBgnbd *bg,
							  int gg_arg, ClvGammaGamma *gg);
extern void clv_check_customer(double x, double t_x, double t_cal);
extern double clv_bgnbd_expected(const ClvBgnbd *m, double t, double x, double t_x,
								 double t_cal);
extern void clv_gg_from_datum(Datum model, ClvGammaGamma *m);
extern double clv_gg_expected(const ClvGammaGamma *m, double x, double mean);
extern void clv_bgnbd_expected_multi(const ClvBgnbd *m, const double *t, int nt, double x,
									 double t_x, double t_cal, double *out);
extern void clv_bgnbd_numerators(const ClvBgnbd *m, const double *t, int nt, double x,
								 double t_cal, double *out);
extern double clv_bgnbd_denominator(const ClvBgnbd *m, double x, double t_x, double t_cal);
extern const double *clv_memo_get(FunctionCallInfo fcinfo, double x, double t_cal,
								 double horizon, int n);
extern void clv_memo_put(FunctionCallInfo fcinfo, double x, double t_cal, double horizon, int n,
						 const double *values);
extern const double *clv_memo_get_slot(FunctionCallInfo fcinfo, int slot, double x, double t_cal,
										double horizon, int n);
extern void clv_memo_put_slot(FunctionCallInfo fcinfo, int slot, double x, double t_cal,
							  double horizon, int n, const double *values);
extern void **clv_cache_extra(FunctionCallInfo fcinfo);
extern const double *clv_discounts(FunctionCallInfo fcinfo, double rate, int32 months);
extern double clv_bgnbd_log_odds_dead(const ClvBgnbd *m, double x, double t_x, double t_cal);
extern double clv_bgnbd_numerator(const ClvBgnbd *m, double t, double x, double t_cal);
extern void clv_check_finite(double value, const char *what);

/* A refresh's three predictions of one customer (src/clv_value.c). */
typedef struct ClvPredictions
{
	double		p_alive;
	double		expected;
	double		clv;
	bool		p_alive_null;	/* out of range, or no value */
	bool		expected_null;
	bool		clv_null;
	bool		bad;			/* a value out of range */
} ClvPredictions;

/* the checked terms of a call site's predictions */
typedef struct ClvPredictionTerms
{
	ClvBgnbd	bg;
	ClvGammaGamma gg;
	bool		has_clv;		/* a Gamma-Gamma model: CLV too */
	double		t;
	int32		months;
	double		rate;
	double		f;				/* time units in a month */
} ClvPredictionTerms;

extern void clv_prediction_terms(FunctionCallInfo fcinfo, double t, int32 months, double rate,
								 text *time_unit, ClvPredictionTerms *terms);
extern void clv_bgnbd_predict(FunctionCallInfo fcinfo, const ClvPredictionTerms *terms, double x,
							  double t_x, double t_cal, bool mean_null, double mean,
							  ClvPredictions *out);
extern void clv_bgnbd_predictions(FunctionCallInfo fcinfo, double t, int32 months, double rate,
								  text *time_unit, double x, double t_x, double t_cal,
								  bool mean_null, double mean, ClvPredictions *out);
extern void clv_check_terms(int32 months, double rate);
extern void clv_predictions_datums(const ClvPredictions *p, Datum *values, bool *nulls);
extern double *clv_sample_doubles(const double *values, int64 n, int64 stride);
extern int32 *clv_sample_int32s(const int32 *values, int64 n, int64 stride);

/* One customer's clv_summary (src/clv_summary.c). */
typedef struct ClvSummary
{
	int32		x;
	double		t_x;
	double		t_cal;
	double		mean_value;
} ClvSummary;

/*
 * The exact sum of doubles >= 0, rounded once (src/clv_exact_sum.c): the
 * same double whatever the order of the terms.  A 128-bit count of 2^-1074
 * units from pos on, or limbs (allocated in the caller's context) once wider.
 */
struct ClvBigSum;
typedef struct ClvExactSum
{
#ifdef HAVE_INT128
	uint128		m;
#endif
	struct ClvBigSum *big;
	int32		pos;
	int32		spare;			/* the holder's: only clv_exact_init() sets it (0) */
} ClvExactSum;

extern void clv_exact_init(ClvExactSum *s);
extern void clv_exact_reset(ClvExactSum *s);
extern void clv_exact_free(ClvExactSum *s);
extern void clv_exact_add(ClvExactSum *s, double value, MemoryContext cxt);
extern void clv_exact_merge(ClvExactSum *s, const ClvExactSum *from, MemoryContext cxt);
extern double clv_exact_value(const ClvExactSum *s);

extern double clv_summary_days_in(const text *t, const char *what);
struct SegmentAmount;
extern double clv_summary_amount(Datum d);
extern double clv_summary_decoded_amount(const struct SegmentAmount *a, Datum d);
extern void clv_summary_compute(float8 *rows, int64 count, double as_of_day, double unit,
								double period, ClvSummary *out);
extern double clv_summary_period(double day, double period);
extern double clv_summary_period_start(double index, double period);
extern void clv_summary_of(double first, double last, int64 periods, const ClvExactSum *repeat,
						   double as_of_day, double unit, double period, ClvSummary *out);
extern bool clv_is_whole(double value);
extern void clv_check_count(double n);

#endif							/* SEGMENT_CLV_H */
