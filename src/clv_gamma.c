/*
 * clv_gamma.c
 *	  Gamma-Gamma spend model (Fader, Hardie and Lee 2005, "RFM and CLV:
 *	  using iso-value curves"; Fader and Hardie's note "The Gamma-Gamma model
 *	  of monetary value"): the maximum-likelihood fit of (p, q, v) as an
 *	  aggregate over the repeat customers' (x, mean repeat value), and the
 *	  expected average order value of a customer.
 *
 * Per customer with x > 0 repeat purchases of mean value m:
 *   LL = lgamma(p x + q) - lgamma(p x) - lgamma(q) + q ln v
 *		  + (p x - 1) ln m + p x ln x - (p x + q) ln(x m + v)
 * The objective is the mean negative log-likelihood plus
 * penalizer * (p^2 + q^2 + v^2), as in lifetimes' GammaGammaFitter,
 * minimised over log-parameters from (1, 1, 1) with the analytic gradient.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"

#include "clv.h"
#include "segment.h"

#define GG_INITIAL_ROWS 1024
#define GG_RESULT_NATTS 7
#define GG_SAMPLE_FROM 50000	/* distinct rows from which a sample starts the fit */
#define GG_SAMPLE_ROWS 20000	/* about the sample's size */
#define GG_LOG_BOUND 25.0
#define GG_LOG_RUNAWAY 15.0		/* as in clv_bgnbd.c */

PG_FUNCTION_INFO_V1(segment_gg_fit_trans);
PG_FUNCTION_INFO_V1(segment_gg_fit_final);
PG_FUNCTION_INFO_V1(segment_gg_expected_value);
PG_FUNCTION_INFO_V1(segment_gg_log_likelihood);

/*
 * gamma_gamma_fit transition: remember one repeat customer.  Rows with a
 * NULL are skipped; so are one-time buyers (x = 0: no repeat purchase to
 * learn spend from), which are only counted, in settings[1].
 */
Datum
segment_gg_fit_trans(PG_FUNCTION_ARGS)
{
	ClvRows		rows;
	float8		settings[3] = {0, 0, 0};
	float8	   *row;
	double		x,
				m;

	(void) segment_aggregate_context(fcinfo);
	if (PG_NARGS() > 3)
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("penalizer must not be null")));
		settings[0] = PG_GETARG_FLOAT8(3);
		clv_check_finite(settings[0], "penalizer");
		if (settings[0] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("penalizer must not be negative"),
					 errdetail("Got %g.", settings[0])));
	}
	if (PG_ARGISNULL(0))
		clv_rows_init(&rows, CLV_KIND_GG, GG_WIDTH, settings);
	else
	{
		clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), CLV_KIND_GG, GG_WIDTH, &rows);
		clv_rows_check_settings(&rows, settings, 1, "penalizer");
	}
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (rows.state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(rows.state);
	}
	x = PG_GETARG_FLOAT8(1);
	m = PG_GETARG_FLOAT8(2);
	clv_check_finite(x, "number of repeat purchases x");
	clv_check_finite(m, "mean repeat purchase value");
	if (x < 0 || !clv_is_whole(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of repeat purchases x must be a non-negative whole number"),
				 errdetail("Got %g.", x)));
	if (x > 0 && !(m > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mean repeat purchase value must be positive for a repeat customer"),
				 errdetail("Got x = %g and mean value %g.", x, m),
				 errhint("The Gamma-Gamma model describes positive spend; leave out refunds and free orders.")));

	if (x == 0)
	{
		/* counted in the header: the array must exist to hold the count */
		if (rows.state == NULL)
			clv_rows_append(&rows, 0, GG_INITIAL_ROWS);
		((float8 *) ARR_DATA_PTR(rows.state))[4] += 1;
		PG_RETURN_ARRAYTYPE_P(rows.state);
	}
	row = clv_rows_append(&rows, 1, GG_INITIAL_ROWS);
	row[0] = x;
	row[1] = m;
	PG_RETURN_ARRAYTYPE_P(rows.state);
}

/* Distinct (x, m) rows with weights, sorted by x, and their logs. */
typedef struct GgData
{
	int64		n;
	double	   *x,
			   *w,
			   *log_m,
			   *m,
			   *log_x;
	double		total_w;
	double		penalizer;
} GgData;

/*
 * A sample of the data for a warm start (clv_warm_start()): every stride-th
 * distinct row, in order, with its weight; its objective is a mean over its
 * own weight, on the scale of the whole data's.
 */
static void
gg_sample(const GgData *d, GgData *sample, int64 stride)
{
	int64		i;

	*sample = *d;
	sample->n = (d->n + stride - 1) / stride;
	sample->x = clv_sample_doubles(d->x, d->n, stride);
	sample->w = clv_sample_doubles(d->w, d->n, stride);
	sample->log_m = clv_sample_doubles(d->log_m, d->n, stride);
	sample->m = clv_sample_doubles(d->m, d->n, stride);
	sample->log_x = clv_sample_doubles(d->log_x, d->n, stride);
	sample->total_w = 0;
	for (i = 0; i < sample->n; i++)
		sample->total_w += sample->w[i];
}

static void
gg_prepare(const ClvRows *rows, GgData *d)
{
	double	   *sorted;
	int64		i,
				n = clv_rows_distinct(rows, &sorted, &d->w);

	d->x = palloc(mul_size(Max(n, 1), sizeof(double)));
	d->m = palloc(mul_size(Max(n, 1), sizeof(double)));
	d->log_m = palloc(mul_size(Max(n, 1), sizeof(double)));
	d->log_x = palloc(mul_size(Max(n, 1), sizeof(double)));
	for (i = 0; i < n; i++)
	{
		d->x[i] = sorted[i * GG_WIDTH];
		d->m[i] = sorted[i * GG_WIDTH + 1];
		d->log_x[i] = log(d->x[i]);
		d->log_m[i] = log(d->m[i]);
	}
	d->n = n;
	d->total_w = (double) rows->count;
	d->penalizer = rows->settings[0];
	pfree(sorted);
}

static double
gg_loglik(const GgData *d, double p, double q, double v)
{
	double		ll = 0;
	double		common = -lgamma(q) + q * log(v);
	int64		i = 0;

	while (i < d->n)
	{
		double		x = d->x[i];
		double		px = p * x;
		double		head = common + lgamma(px + q) - lgamma(px) + px * d->log_x[i];

		CHECK_FOR_INTERRUPTS();
		/* a do-while: the row at i is always consumed, whatever x compares like */
		do
		{
			ll += d->w[i] * (head + (px - 1) * d->log_m[i] - (px + q) * log(x * d->m[i] + v));
			i++;
		} while (i < d->n && d->x[i] == x);
	}
	return ll;
}

/* The log-likelihood and its gradient in (p, q, v). */
static double
gg_loglik_grad(const GgData *d, double p, double q, double v, double *grad)
{
	double		ll = 0;
	double		log_v = log(v);
	double		common = -lgamma(q) + q * log_v;
	double		psi_q = clv_digamma(q);
	int64		i = 0;

	grad[0] = grad[1] = grad[2] = 0;
	while (i < d->n)
	{
		double		x = d->x[i];
		double		px = p * x;
		double		head = common + lgamma(px + q) - lgamma(px) + px * d->log_x[i];
		double		psi_pxq = clv_digamma(px + q);
		double		psi_px = clv_digamma(px);
		double		group_w = 0,
					sum_logm = 0,
					sum_logxmv = 0,
					sum_inv = 0;

		CHECK_FOR_INTERRUPTS();
		do
		{
			double		wi = d->w[i];
			double		xmv = x * d->m[i] + v;
			double		l = log(xmv);

			ll += wi * ((px - 1) * d->log_m[i] - (px + q) * l);
			group_w += wi;
			sum_logm += wi * d->log_m[i];
			sum_logxmv += wi * l;
			sum_inv += wi / xmv;
			i++;
		} while (i < d->n && d->x[i] == x);
		ll += group_w * head;
		grad[0] += x * (group_w * (psi_pxq - psi_px + log(x)) + sum_logm - sum_logxmv);
		grad[1] += group_w * (psi_pxq - psi_q + log_v) - sum_logxmv;
		grad[2] += group_w * q / v - (px + q) * sum_inv;
	}
	return ll;
}

/*
 * The Hessian of the objective over log-parameters at lp, in closed form
 * (one cheap pass where central differences of the gradient take six).  In
 * (p, q, v), a repeat customer's second derivatives are
 *   pp x^2 (psi'(px+q) - psi'(px)), pq x psi'(px+q), pv -x / (xm+v),
 *   qq psi'(px+q) - psi'(q), qv 1/v - 1/(xm+v), vv -q/v^2 + (px+q)/(xm+v)^2;
 * over p = e^lp, with G the objective's gradient in p:
 * H_lp = diag(p) H_p diag(p) + diag(p G).  False when a value is not finite.
 */
static bool
gg_objective_hessian(GgData *d, const double *lp, double h[][CLV_MAX_PARAMS])
{
	double		pr[3],
				g[3],
				hp[3][CLV_MAX_PARAMS] = {{0}};
	double		p,
				q,
				v,
				t1_q;
	int64		i = 0;

	if (!clv_params_from_logs(lp, 3, GG_LOG_BOUND, pr))
		return false;
	p = pr[0];
	q = pr[1];
	v = pr[2];
	(void) gg_loglik_grad(d, p, q, v, g);
	t1_q = clv_trigamma(q);
	while (i < d->n)
	{
		double		x = d->x[i];
		double		px = p * x;
		double		t1_pxq = clv_trigamma(px + q);
		double		group_w = 0,
					sum_inv = 0,
					sum_inv2 = 0;

		CHECK_FOR_INTERRUPTS();
		do
		{
			double		inv = 1 / (x * d->m[i] + v);

			group_w += d->w[i];
			sum_inv += d->w[i] * inv;
			sum_inv2 += d->w[i] * inv * inv;
			i++;
		} while (i < d->n && d->x[i] == x);
		hp[0][0] += x * x * group_w * (t1_pxq - clv_trigamma(px));
		hp[0][1] += x * group_w * t1_pxq;
		hp[0][2] -= x * sum_inv;
		hp[1][1] += group_w * (t1_pxq - t1_q);
		hp[1][2] += group_w / v - sum_inv;
		hp[2][2] += -group_w * q / (v * v) + (px + q) * sum_inv2;
	}
	return clv_hessian_over_log_params(3, pr, hp, g, d->total_w, d->penalizer, h);
}

/* The objective and its gradient over log-parameters. */
static double
gg_objective_grad(const double *lp, double *grad, void *arg)
{
	GgData	   *d = arg;
	double		p[3],
				g[3];
	double		ll;
	int			k;

	if (!clv_params_from_logs(lp, 3, GG_LOG_BOUND, p))
		return INFINITY;
	ll = gg_loglik_grad(d, p[0], p[1], p[2], g);
	for (k = 0; k < 3; k++)
		grad[k] = p[k] * (-g[k] / d->total_w + 2 * d->penalizer * p[k]);
	return -ll / d->total_w + d->penalizer * (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
}

static double
gg_objective(const double *lp, void *arg)
{
	GgData	   *d = arg;
	double		p[3];

	if (!clv_params_from_logs(lp, 3, GG_LOG_BOUND, p))
		return INFINITY;
	return -gg_loglik(d, p[0], p[1], p[2]) / d->total_w +
		d->penalizer * (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
}

/*
 * gamma_gamma_fit final: (p, q, v, log_likelihood, iterations, converged,
 * customers); NULL without rows.
 */
Datum
segment_gg_fit_final(PG_FUNCTION_ARGS)
{
	ClvRows		rows;
	TupleDesc	tupdesc;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), CLV_KIND_GG, GG_WIDTH, &rows);
	clv_rows_check(&rows);
	if (rows.count == 0)
	{
		if (rows.settings[1] > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot fit Gamma-Gamma: no customer made a repeat purchase"),
					 errdetail("All %.0f customers have x = 0; the model is fitted on repeat purchases only.",
							   rows.settings[1])));
		PG_RETURN_NULL();
	}

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "segment_gg_fit_final must return a composite type");
	PG_RETURN_DATUM(clv_gg_fit_rows(&rows, BlessTupleDesc(tupdesc)));
}

/*
 * The fitted model (a row of tupdesc, segment.gamma_gamma_model) of checked
 * rows, at least one; the aggregate's final function and refresh_figures()
 * (src/refresh_clv.c).
 */
Datum
clv_gg_fit_rows(const ClvRows *rows, TupleDesc tupdesc)
{
	GgData		d;
	Datum		values[GG_RESULT_NATTS];
	bool		nulls[GG_RESULT_NATTS] = {0};
	double		lp[3] = {0, 0, 0};
	const double cold[3] = {0, 0, 0};
	ClvWarmStart warm = {0};
	ClvOptimResult res;
	MemoryContext fitcontext,
				old;
	bool		no_maximum = false;
	int			i;

	if (tupdesc->natts != GG_RESULT_NATTS)
		elog(ERROR, "segment.gamma_gamma_model has %d attributes, expected %d",
			 tupdesc->natts, GG_RESULT_NATTS);

	fitcontext = AllocSetContextCreate(CurrentMemoryContext, "gamma-gamma fit",
									   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(fitcontext);
	gg_prepare(rows, &d);
	/* over many rows, from a fit of a sample (as bgnbd_fit(), src/clv_bgnbd.c) */
	if (d.n >= GG_SAMPLE_FROM)
	{
		GgData		sample;

		gg_sample(&d, &sample, d.n / GG_SAMPLE_ROWS);
		clv_warm_start(gg_objective_grad, &sample, lp, 3, &warm);
	}
	res = clv_minimise_warm(gg_objective_grad, gg_objective, &d, lp, cold, 3, &warm);
	ereport(DEBUG1,
			(errmsg_internal("Gamma-Gamma fit: %lld distinct rows, %d iterations after %s",
							 (long long) d.n, res.iterations,
							 warm.warm ? psprintf("%d over a sample", warm.iterations) : "a cold start")));
	for (i = 0; i < 3; i++)
		no_maximum = no_maximum || fabs(lp[i]) > GG_LOG_RUNAWAY;
	/* a flat direction at the optimum: a ridge (p -> infinity, v -> 0), no maximum */
	if (!no_maximum && res.converged && d.n >= GG_SAMPLE_FROM)
	{
		/* over many rows, the Hessian in closed form */
		double		hess[CLV_MAX_PARAMS][CLV_MAX_PARAMS];

		no_maximum = !(gg_objective_hessian(&d, lp, hess) && clv_hessian_ok(hess, 3));
	}
	else
		no_maximum = no_maximum || (res.converged && !clv_curvature_ok(gg_objective_grad, &d, lp, 3));
	values[3] = Float8GetDatum(gg_loglik(&d, exp(lp[0]), exp(lp[1]), exp(lp[2])));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(fitcontext);

	for (i = 0; i < 3; i++)
		values[i] = Float8GetDatum(exp(lp[i]));
	values[4] = Int32GetDatum(res.iterations);
	values[5] = BoolGetDatum(res.converged && !no_maximum);
	values[6] = Int64GetDatum(rows->count);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* Expected mean purchase value of a customer with x repeat purchases of mean value mean. */
double
clv_gg_expected(const ClvGammaGamma *m, double x, double mean)
{
	clv_check_finite(x, "number of repeat purchases x");
	clv_check_finite(mean, "mean repeat purchase value");
	if (x < 0 || !clv_is_whole(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of repeat purchases x must be a non-negative whole number"),
				 errdetail("Got %g.", x)));
	if (x > 0 && !(mean > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mean repeat purchase value must be positive for a repeat customer"),
				 errdetail("Got x = %g and mean value %g.", x, mean)));
	/* a weighted mean of the population mean p v / (q - 1) and the customer's own */
	return m->p * (m->v + x * (x > 0 ? mean : 0)) / (m->p * x + m->q - 1);
}

/* gamma_gamma_expected_value(model, x, mean_value) */
Datum
segment_gg_expected_value(PG_FUNCTION_ARGS)
{
	ClvGammaGamma m;

	double		value;

	clv_models_cached(fcinfo, -1, NULL, 0, &m);
	value = clv_gg_expected(&m, PG_GETARG_FLOAT8(1), PG_GETARG_FLOAT8(2));
	clv_check_result(value, "expected mean purchase value", false);
	PG_RETURN_FLOAT8(value);
}

/*
 * gamma_gamma_log_likelihood(model, x, mean_value): one repeat customer's
 * log-likelihood, straight from the formula (checked against the fit's).
 */
Datum
segment_gg_log_likelihood(PG_FUNCTION_ARGS)
{
	HeapTupleHeader t = PG_GETARG_HEAPTUPLEHEADER(0);
	double		x = PG_GETARG_FLOAT8(1);
	double		m = PG_GETARG_FLOAT8(2);
	double		p,
				q,
				v,
				ll;
	bool		isnull[3];

	p = DatumGetFloat8(GetAttributeByNum(t, 1, &isnull[0]));
	q = DatumGetFloat8(GetAttributeByNum(t, 2, &isnull[1]));
	v = DatumGetFloat8(GetAttributeByNum(t, 3, &isnull[2]));
	if (isnull[0] || isnull[1] || isnull[2] || !(p > 0) || !(q > 0) || !(v > 0) ||
		isinf(p) || isinf(q) || isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Gamma-Gamma parameters p, q and v must be positive finite numbers")));
	clv_check_finite(x, "number of repeat purchases x");
	clv_check_finite(m, "mean repeat purchase value");
	if (!(x >= 1) || !clv_is_whole(x) || !(m > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the Gamma-Gamma likelihood needs x >= 1 repeat purchases of positive mean value"),
				 errdetail("Got x = %g and mean value %g.", x, m)));
	ll = lgamma(p * x + q) - lgamma(p * x) - lgamma(q) + q * log(v)
		+ (p * x - 1) * log(m) + p * x * log(x) - (p * x + q) * log(x * m + v);
	clv_check_result(ll, "Gamma-Gamma log-likelihood", true);
	PG_RETURN_FLOAT8(ll);
}
