/*
 * clv_bgnbd.c
 *	  BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy
 *	  way"): the maximum-likelihood fit as an aggregate over the customers'
 *	  (x, t_x, T), and the predictions of a fitted model.
 *
 * A customer with x repeat purchases, the last at t_x, observed for T
 * (all from the first purchase) has likelihood, in log space,
 *   LL = lgamma(r+x) - lgamma(r) + r ln alpha + lbeta(a, b+x) - lbeta(a, b)
 *		  + ln( (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) )
 * where the last log is a log-sum-exp of A3 = -(r+x) ln(alpha+T) and
 * A4 = ln(a/(b+x-1)) - (r+x) ln(alpha+t_x), so that neither power
 * underflows for long-lived or frequent customers.  The objective is the
 * mean negative log-likelihood plus penalizer * (r^2 + alpha^2 + a^2 + b^2),
 * as in Python's lifetimes (BetaGeoFitter), minimised over log-parameters
 * from (1, 1, 1, 1) with the analytic gradient (clv_optim.c).  As lifetimes
 * does, a penalised fit measures time in units of the longest T, so that the
 * penalty on alpha means the same whatever the caller's time unit (an
 * unpenalised fit does not depend on the unit).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "clv.h"
#include "segment.h"

#define BGNBD_INITIAL_ROWS 1024
#define BGNBD_RESULT_NATTS 8
#define BGNBD_INDEX_TABLE 100000	/* whole times below this are indexed by a table */
#define BGNBD_SAMPLE_FROM 50000	/* distinct rows from which a sample starts the fit */
#define BGNBD_SAMPLE_ROWS 20000	/* about the sample's size */
#define CLV_LOG_BOUND 25.0		/* parameters within exp(+-25) */
#define CLV_LOG_RUNAWAY 15.0	/* beyond exp(+-15) a parameter has run off */

PG_FUNCTION_INFO_V1(segment_bgnbd_fit_trans);
PG_FUNCTION_INFO_V1(segment_bgnbd_fit_combine);
PG_FUNCTION_INFO_V1(segment_bgnbd_fit_final);
PG_FUNCTION_INFO_V1(segment_bgnbd_p_alive);
PG_FUNCTION_INFO_V1(segment_bgnbd_expected_purchases);
PG_FUNCTION_INFO_V1(segment_bgnbd_expected_purchases_new);
PG_FUNCTION_INFO_V1(segment_bgnbd_log_likelihood);

/* bgnbd_fit transition: remember one customer; rows with a NULL are skipped. */
Datum
segment_bgnbd_fit_trans(PG_FUNCTION_ARGS)
{
	return clv_xtt_fit_trans(fcinfo, CLV_KIND_BGNBD, "BG/NBD");
}

/*
 * The transition of the fits over (x, t_x, T) rows (BG/NBD, MBG/NBD,
 * Pareto/NBD): the kind keeps one model's state from being fed to another.
 */
Datum
clv_xtt_fit_trans(FunctionCallInfo fcinfo, int kind, const char *model)
{
	ClvRows		rows;
	float8		settings[3] = {0, 0, 0};
	float8	   *row;
	double		x,
				t_x,
				t_cal;

	(void) segment_aggregate_context(fcinfo);
	if (PG_NARGS() > 4)
	{
		if (PG_ARGISNULL(4))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("penalizer must not be null")));
		settings[0] = PG_GETARG_FLOAT8(4);
		clv_check_finite(settings[0], "penalizer");
		if (settings[0] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("penalizer must not be negative"),
					 errdetail("Got %g.", settings[0])));
	}
	if (PG_ARGISNULL(0))
		clv_rows_init(&rows, kind, BGNBD_WIDTH, settings);
	else
	{
		clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), kind, BGNBD_WIDTH, &rows);
		clv_rows_check_settings(&rows, settings, 1, "penalizer");
	}
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
	{
		if (rows.state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(rows.state);
	}
	x = PG_GETARG_FLOAT8(1);
	t_x = PG_GETARG_FLOAT8(2);
	t_cal = PG_GETARG_FLOAT8(3);
	clv_check_customer(x, t_x, t_cal);
	clv_check_repeat_at_zero(x, t_x, model);

	row = clv_rows_append(&rows, 1, BGNBD_INITIAL_ROWS);
	row[0] = x;
	row[1] = t_x;
	row[2] = t_cal;
	PG_RETURN_ARRAYTYPE_P(rows.state);
}

/*
 * Combine function shared by the fit aggregates: append the right state's
 * rows to the left one (never adopting the right state, which belongs to
 * someone else).
 */
Datum
segment_bgnbd_fit_combine(PG_FUNCTION_ARGS)
{
	ClvRows		left,
				right;
	ArrayType  *rstate;
	float8	   *rdata;
	int			kind,
				width;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	rstate = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(rstate) != 1 || ARR_ELEMTYPE(rstate) != FLOAT8OID || ARR_HASNULL(rstate) ||
		ARR_DIMS(rstate)[0] < CLV_STATE_HEADER)
		clv_rows_read(rstate, 0, 1, &right);	/* reports the corrupt state */
	rdata = (float8 *) ARR_DATA_PTR(rstate);
	/* any other kind than these is reported by clv_rows_read as GG's mismatch */
	if (rdata[2] == CLV_KIND_BGNBD)
		kind = CLV_KIND_BGNBD;
	else if (rdata[2] == CLV_KIND_MBGNBD)
		kind = CLV_KIND_MBGNBD;
	else if (rdata[2] == CLV_KIND_PARETO)
		kind = CLV_KIND_PARETO;
	else
		kind = CLV_KIND_GG;
	width = CLV_KIND_IS_XTT(kind) ? BGNBD_WIDTH : 2;
	clv_rows_read(rstate, kind, width, &right);

	if (PG_ARGISNULL(0))
		clv_rows_init(&left, kind, width, right.settings);
	else
	{
		clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), kind, width, &left);
		clv_rows_check_settings(&left, right.settings, 1, "penalizer");
	}
	/* settings[1] counts the rows a fit skipped (Gamma-Gamma's one-time buyers) */
	if (left.state != NULL)
		left.settings[1] += right.settings[1];
	if (right.count > 0)
		memcpy(clv_rows_append(&left, right.count, BGNBD_INITIAL_ROWS), clv_rows_data(&right),
			   right.count * width * sizeof(float8));
	else if (left.state == NULL)
		clv_rows_append(&left, 0, BGNBD_INITIAL_ROWS);
	((float8 *) ARR_DATA_PTR(left.state))[4] = left.settings[1];
	PG_RETURN_ARRAYTYPE_P(left.state);
}


/*
 * The data of the likelihood: distinct (x, t_x, T) rows with their weights,
 * sorted by x, and the distinct t_x and T values, so that one evaluation
 * computes each lgamma once per distinct x and each log once per distinct
 * t_x or T; customers often share them.
 */
typedef struct BgnbdData
{
	int64		n;				/* distinct rows */
	double	   *x;
	double	   *w;
	int32	   *tx_idx;
	int32	   *t_idx;
	int32		ntx,
				nt;
	double	   *tx_vals,
			   *t_vals;
	double	   *log_tx,			/* scratch: ln(alpha + value) */
			   *log_t,
			   *inv_tx,			/* scratch: 1 / (alpha + value) */
			   *inv_t;
	double		total_w;
	double		penalizer;
	int			shift;			/* 1 for MBG/NBD: a dropout chance at the first purchase too */
} BgnbdData;

/*
 * Whole times below BGNBD_INDEX_TABLE (days, as they usually are) into vals
 * sorted and distinct, by a bitmap of those present: no sort of every row's
 * time.  Returns their number, or -1 (vals untouched) for other values.
 */
static int32
bgnbd_distinct_whole(double *vals, int64 n)
{
	uint64	   *present = palloc0((BGNBD_INDEX_TABLE + 63) / 64 * sizeof(uint64));
	int64		i;
	int32		out = 0;

	for (i = 0; i < n; i++)
	{
		double		v = vals[i];

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (!(v >= 0 && v < BGNBD_INDEX_TABLE && v == floor(v)))
		{
			pfree(present);
			return -1;
		}
		present[(int32) v / 64] |= UINT64CONST(1) << ((int32) v % 64);
	}
	for (i = 0; i < (BGNBD_INDEX_TABLE + 63) / 64; i++)
	{
		uint64		word = present[i];

		while (word != 0)
		{
			int			bit = pg_rightmost_one_pos64(word);

			vals[out++] = (double) (i * 64 + bit);
			word &= word - 1;
		}
	}
	pfree(present);
	return out;
}

/* Sort and count distinct values of a copied array; returns the distinct count. */
static int32
bgnbd_distinct(double *vals, int64 n)
{
	int64		i,
				out = 0;
	int32		whole = n > 0 ? bgnbd_distinct_whole(vals, n) : -1;

	if (whole >= 0)
		return whole;
	segment_sort_doubles(vals, n);
	for (i = 1; i < n; i++)
		if (vals[i] != vals[out])
			vals[++out] = vals[i];
	return (int32) (out + 1);
}

static int32
bgnbd_index(const double *vals, int32 n, double v)
{
	/* the first value not below v, which the rows' checks make v itself */
	int64		i = segment_lower_bound(vals, n, v);

	if (i == n || vals[i] != v)
		elog(ERROR, "BG/NBD value %g not found among the distinct values", v);
	return (int32) i;
}

/*
 * The index among the n distinct sorted values vals of each of count values
 * (every BGNBD_WIDTH-th from v); by a table of whole numbers when the values
 * are whole days of a few years, as they usually are, else by search.
 */
static void
bgnbd_indexes(const double *vals, int32 n, const double *v, int64 count, int32 *out)
{
	double		top = n > 0 ? vals[n - 1] : 0;
	int64		i;

	if (n > 0 && vals[0] >= 0 && top < BGNBD_INDEX_TABLE)
	{
		int32	   *table = palloc((Size) (top + 1) * sizeof(int32));
		int32		k;
		bool		whole = true;

		for (k = 0; k < n && whole; k++)
			whole = vals[k] == floor(vals[k]);
		if (whole)
		{
			/* -1 for a number that is not a value; every v is one (bgnbd_index() says why) */
			memset(table, -1, (Size) (top + 1) * sizeof(int32));
			for (k = 0; k < n; k++)
				table[(int32) vals[k]] = k;
			for (i = 0; i < count; i++)
			{
				double		x = v[i * BGNBD_WIDTH];

				if ((i & 0xFFFF) == 0)
					CHECK_FOR_INTERRUPTS();
				if (x >= 0 && x <= top && x == floor(x) && table[(int32) x] >= 0)
					out[i] = table[(int32) x];
				else
					out[i] = bgnbd_index(vals, n, x);
			}
			pfree(table);
			return;
		}
		pfree(table);
	}
	for (i = 0; i < count; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		out[i] = bgnbd_index(vals, n, v[i * BGNBD_WIDTH]);
	}
}

/* Build the likelihood data from the state's rows (copied: the state stays as it is). */
static void
bgnbd_prepare(const ClvRows *rows, BgnbdData *d)
{
	double	   *sorted;
	int64		i,
				n = clv_rows_distinct(rows, &sorted, &d->w);

	d->x = palloc(mul_size(Max(n, 1), sizeof(double)));
	for (i = 0; i < n; i++)
		d->x[i] = sorted[i * BGNBD_WIDTH];
	d->n = n;
	d->total_w = (double) rows->count;
	d->penalizer = rows->settings[0];
	d->shift = rows->kind == CLV_KIND_MBGNBD ? 1 : 0;

	d->tx_vals = palloc(n * sizeof(double));
	d->t_vals = palloc(n * sizeof(double));
	for (i = 0; i < n; i++)
	{
		d->tx_vals[i] = sorted[i * BGNBD_WIDTH + 1];
		d->t_vals[i] = sorted[i * BGNBD_WIDTH + 2];
	}
	d->ntx = bgnbd_distinct(d->tx_vals, n);
	d->nt = bgnbd_distinct(d->t_vals, n);
	d->tx_idx = palloc(n * sizeof(int32));
	d->t_idx = palloc(n * sizeof(int32));
	bgnbd_indexes(d->tx_vals, d->ntx, sorted + 1, n, d->tx_idx);
	bgnbd_indexes(d->t_vals, d->nt, sorted + 2, n, d->t_idx);
	d->log_tx = palloc(d->ntx * sizeof(double));
	d->log_t = palloc(d->nt * sizeof(double));
	d->inv_tx = palloc(d->ntx * sizeof(double));
	d->inv_t = palloc(d->nt * sizeof(double));
	pfree(sorted);
}

/*
 * Point the data's times at copies divided by the longest T, keeping the
 * originals in *orig_tx and *orig_t; returns the longest T (1 if it is 0).
 */
static double
bgnbd_scale_times(BgnbdData *d, double **orig_tx, double **orig_t)
{
	double		scale = 0;
	double	   *tx = palloc(d->ntx * sizeof(double));
	double	   *t = palloc(d->nt * sizeof(double));
	int32		k;

	for (k = 0; k < d->nt; k++)
		scale = Max(scale, d->t_vals[k]);
	if (!(scale > 0))
		scale = 1.0;
	for (k = 0; k < d->ntx; k++)
		tx[k] = d->tx_vals[k] / scale;
	for (k = 0; k < d->nt; k++)
		t[k] = d->t_vals[k] / scale;
	*orig_tx = d->tx_vals;
	*orig_t = d->t_vals;
	d->tx_vals = tx;
	d->t_vals = t;
	return scale;
}

/*
 * A sample of the data for a warm start (clv_warm_start()): every stride-th
 * distinct row, in order (so still grouped by x), with its weight; the
 * times, their values and the scratch arrays are shared.  Its objective is a
 * mean over its own weight, on the scale of the whole data's.
 */
static void
bgnbd_sample(const BgnbdData *d, BgnbdData *sample, int64 stride)
{
	int64		i;

	*sample = *d;
	sample->n = (d->n + stride - 1) / stride;
	sample->x = clv_sample_doubles(d->x, d->n, stride);
	sample->w = clv_sample_doubles(d->w, d->n, stride);
	sample->tx_idx = clv_sample_int32s(d->tx_idx, d->n, stride);
	sample->t_idx = clv_sample_int32s(d->t_idx, d->n, stride);
	sample->total_w = 0;
	for (i = 0; i < sample->n; i++)
		sample->total_w += sample->w[i];
}

/* Total (weighted) log-likelihood of the data at the given parameters. */
static double
bgnbd_loglik(BgnbdData *d, double r, double alpha, double a, double b)
{
	double		ll = 0;
	double		common = -lgamma(r) + r * log(alpha) + lgamma(a + b) - lgamma(b);
	int64		i = 0;
	int32		k;

	for (k = 0; k < d->ntx; k++)
		d->log_tx[k] = log(alpha + d->tx_vals[k]);
	for (k = 0; k < d->nt; k++)
		d->log_t[k] = log(alpha + d->t_vals[k]);

	while (i < d->n)
	{
		double		x = d->x[i];
		double		rx = r + x;
		double		xs = x + d->shift;
		bool		may_die = xs > 0;
		double		head = common + lgamma(rx) + lgamma(b + xs) - lgamma(a + b + xs);
		double		log_ratio = may_die ? log(a) - log(b + xs - 1) : 0;
		double		group = 0,
					group_w = 0;

		CHECK_FOR_INTERRUPTS();
		/* a do-while: the row at i is always consumed, whatever x compares like */
		do
		{
			double		a3 = -rx * d->log_t[d->t_idx[i]];
			double		lse;

			if (may_die)
			{
				double		a4 = log_ratio - rx * d->log_tx[d->tx_idx[i]];

				lse = a3 > a4 ? a3 + log1p(exp(a4 - a3)) : a4 + log1p(exp(a3 - a4));
			}
			else
				lse = a3;
			group += d->w[i] * lse;
			group_w += d->w[i];
			i++;
		} while (i < d->n && d->x[i] == x);
		ll += group + group_w * head;
	}
	return ll;
}

/*
 * The log-likelihood and its gradient in (r, alpha, a, b).  With w the
 * weight of A4 in the log-sum-exp (the posterior probability that the
 * customer left after the last purchase), the last term's derivatives are
 *   d/dr = -(1-w) ln(alpha+T) - w ln(alpha+t_x)
 *   d/dalpha = -(r+x) ((1-w)/(alpha+T) + w/(alpha+t_x))
 *   d/da = w/a,  d/db = -w/(b+x-1)
 * and the rest is digammas, once per distinct x.
 */
static double
bgnbd_loglik_grad(BgnbdData *d, double r, double alpha, double a, double b, double *grad)
{
	double		ll = 0;
	double		common = -lgamma(r) + r * log(alpha) + lgamma(a + b) - lgamma(b);
	double		psi_r = clv_digamma(r),
				psi_ab = clv_digamma(a + b),
				psi_b = clv_digamma(b);
	int64		i = 0;
	int32		k;

	grad[0] = grad[1] = grad[2] = grad[3] = 0;
	for (k = 0; k < d->ntx; k++)
	{
		d->log_tx[k] = log(alpha + d->tx_vals[k]);
		d->inv_tx[k] = 1 / (alpha + d->tx_vals[k]);
	}
	for (k = 0; k < d->nt; k++)
	{
		d->log_t[k] = log(alpha + d->t_vals[k]);
		d->inv_t[k] = 1 / (alpha + d->t_vals[k]);
	}

	while (i < d->n)
	{
		double		x = d->x[i];
		double		rx = r + x;
		double		xs = x + d->shift;
		bool		may_die = xs > 0;
		double		head = common + lgamma(rx) + lgamma(b + xs) - lgamma(a + b + xs);
		double		log_ratio = may_die ? log(a) - log(b + xs - 1) : 0;
		double		psi_abx = clv_digamma(a + b + xs);
		double		group = 0,
					group_w = 0,
					sum_dr = 0,
					sum_dalpha = 0,
					sum_w = 0;

		CHECK_FOR_INTERRUPTS();
		do
		{
			double		wi = d->w[i];
			int32		ti = d->t_idx[i];
			double		a3 = -rx * d->log_t[ti];
			double		lse,
						w = 0;

			if (may_die)
			{
				int32		txi = d->tx_idx[i];
				double		a4 = log_ratio - rx * d->log_tx[txi];
				double		e;

				if (a3 > a4)
				{
					e = exp(a4 - a3);
					lse = a3 + log1p(e);
					w = e / (1 + e);
				}
				else
				{
					e = exp(a3 - a4);
					lse = a4 + log1p(e);
					w = 1 / (1 + e);
				}
				sum_dr -= wi * w * d->log_tx[txi];
				sum_dalpha -= wi * w * d->inv_tx[txi];
			}
			else
				lse = a3;
			sum_dr -= wi * (1 - w) * d->log_t[ti];
			sum_dalpha -= wi * (1 - w) * d->inv_t[ti];
			sum_w += wi * w;
			group += wi * lse;
			group_w += wi;
			i++;
		} while (i < d->n && d->x[i] == x);
		ll += group + group_w * head;
		grad[0] += group_w * (clv_digamma(rx) - psi_r + log(alpha)) + sum_dr;
		grad[1] += group_w * r / alpha + rx * sum_dalpha;
		grad[2] += group_w * (psi_ab - psi_abx);
		grad[3] += group_w * (psi_ab - psi_b + clv_digamma(b + xs) - psi_abx);
		if (may_die)
		{
			grad[2] += sum_w / a;
			grad[3] -= sum_w / (b + xs - 1);
		}
	}
	return ll;
}

/*
 * The Hessian of the objective over log-parameters at lp, in closed form:
 * one pass over the rows where central differences of the gradient take
 * eight.  With w the weight of A4 in a row's log-sum-exp (as in
 * bgnbd_loglik_grad()), the row's Hessian in (r, alpha, a, b) is
 *   (1-w) H(A3) + w H(A4) + w (1-w) (dA4 - dA3)(dA4 - dA3)'
 * with dA3 = (-ln(alpha+T), -(r+x)/(alpha+T), 0, 0) and
 * dA4 = (-ln(alpha+t_x), -(r+x)/(alpha+t_x), 1/a, -1/(b+x-1)); the rest is
 * trigammas, once per distinct x.  Over log-parameters p = e^lp, with G the
 * objective's gradient in p: H_lp = diag(p) H_p diag(p) + diag(p G).
 * False when a value is not finite.
 */
static bool
bgnbd_objective_hessian(BgnbdData *d, const double *lp, double h[][CLV_MAX_PARAMS])
{
	double		p[4],
				g[4],
				hp[4][CLV_MAX_PARAMS] = {{0}};
	double		r,
				alpha,
				a,
				b,
				t1_r,
				t1_ab,
				t1_b;
	int64		i = 0;
	int			j,
				k;

	if (!clv_params_from_logs(lp, 4, CLV_LOG_BOUND, p))
		return false;
	r = p[0];
	alpha = p[1];
	a = p[2];
	b = p[3];
	/* the gradient in p, and the tables of logs and inverses at alpha */
	(void) bgnbd_loglik_grad(d, r, alpha, a, b, g);
	t1_r = clv_trigamma(r);
	t1_ab = clv_trigamma(a + b);
	t1_b = clv_trigamma(b);

	while (i < d->n)
	{
		double		x = d->x[i];
		double		rx = r + x;
		double		xs = x + d->shift;
		bool		may_die = xs > 0;
		double		log_ratio = may_die ? log(a) - log(b + xs - 1) : 0;
		double		t1_abx = clv_trigamma(a + b + xs);
		double		inv_b = may_die ? 1 / (b + xs - 1) : 0;
		double		group_w = 0;

		CHECK_FOR_INTERRUPTS();
		do
		{
			double		wi = d->w[i];
			int32		ti = d->t_idx[i];
			double		inv_t = d->inv_t[ti];
			double		a3 = -rx * d->log_t[ti];
			double		w = 0;

			if (may_die)
			{
				int32		txi = d->tx_idx[i];
				double		inv_tx = d->inv_tx[txi];
				double		a4 = log_ratio - rx * d->log_tx[txi];
				double		dd[4];
				double		ww;

				w = a3 > a4 ? exp(a4 - a3) / (1 + exp(a4 - a3)) : 1 / (1 + exp(a3 - a4));
				dd[0] = d->log_t[ti] - d->log_tx[txi];
				dd[1] = rx * (inv_t - inv_tx);
				dd[2] = 1 / a;
				dd[3] = -inv_b;
				ww = wi * w * (1 - w);
				for (j = 0; j < 4; j++)
					for (k = j; k < 4; k++)
						hp[j][k] += ww * dd[j] * dd[k];
				hp[0][1] -= wi * w * inv_tx;
				hp[1][1] += wi * w * rx * inv_tx * inv_tx;
				hp[2][2] -= wi * w / (a * a);
				hp[3][3] += wi * w * inv_b * inv_b;
			}
			hp[0][1] -= wi * (1 - w) * inv_t;
			hp[1][1] += wi * (1 - w) * rx * inv_t * inv_t;
			group_w += wi;
			i++;
		} while (i < d->n && d->x[i] == x);
		/* the head's terms, the same for every row of the group */
		hp[0][0] += group_w * (clv_trigamma(rx) - t1_r);
		hp[0][1] += group_w / alpha;
		hp[1][1] -= group_w * r / (alpha * alpha);
		hp[2][2] += group_w * (t1_ab - t1_abx);
		hp[2][3] += group_w * (t1_ab - t1_abx);
		hp[3][3] += group_w * (t1_ab - t1_b + clv_trigamma(b + xs) - t1_abx);
	}
	return clv_hessian_over_log_params(4, p, hp, g, d->total_w, d->penalizer, h);
}

/* The objective and its gradient over log-parameters. */
static double
bgnbd_objective_grad(const double *lp, double *grad, void *arg)
{
	BgnbdData  *d = arg;
	double		p[4],
				g[4];
	double		ll;
	int			k;

	if (!clv_params_from_logs(lp, 4, CLV_LOG_BOUND, p))
		return INFINITY;
	ll = bgnbd_loglik_grad(d, p[0], p[1], p[2], p[3], g);
	for (k = 0; k < 4; k++)
		grad[k] = p[k] * (-g[k] / d->total_w + 2 * d->penalizer * p[k]);
	return -ll / d->total_w +
		d->penalizer * (p[0] * p[0] + p[1] * p[1] + p[2] * p[2] + p[3] * p[3]);
}

/* The objective over log-parameters: mean negative log-likelihood plus the L2 penalty. */
static double
bgnbd_objective(const double *lp, void *arg)
{
	BgnbdData  *d = arg;
	double		p[4];

	if (!clv_params_from_logs(lp, 4, CLV_LOG_BOUND, p))
		return INFINITY;
	return -bgnbd_loglik(d, p[0], p[1], p[2], p[3]) / d->total_w +
		d->penalizer * (p[0] * p[0] + p[1] * p[1] + p[2] * p[2] + p[3] * p[3]);
}

/*
 * bgnbd_fit final: maximise the likelihood; returns (r, alpha, a, b,
 * log_likelihood, iterations, converged, customers), NULL without rows.
 */
Datum
segment_bgnbd_fit_final(PG_FUNCTION_ARGS)
{
	return clv_bgnbd_fit_final_kind(fcinfo, CLV_KIND_BGNBD);
}

/* The fit of BG/NBD or, with kind CLV_KIND_MBGNBD, of MBG/NBD. */
Datum
clv_bgnbd_fit_final_kind(FunctionCallInfo fcinfo, int kind)
{
	ClvRows		rows;
	TupleDesc	tupdesc;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), kind, BGNBD_WIDTH, &rows);
	if (rows.count == 0)
		PG_RETURN_NULL();
	clv_rows_check(&rows);
	tupdesc = segment_result_tupdesc(fcinfo, BGNBD_RESULT_NATTS,
									 kind == CLV_KIND_MBGNBD ? "segment.mbgnbd_model" :
									 "segment.bgnbd_model");
	PG_RETURN_DATUM(clv_bgnbd_fit_rows(&rows, tupdesc));
}

/*
 * The fitted model (a row of tupdesc, segment.bgnbd_model or
 * segment.mbgnbd_model as rows' kind) of checked rows, at least one; the
 * aggregate's final function and refresh_figures() (src/refresh_clv.c).
 */
Datum
clv_bgnbd_fit_rows(const ClvRows *rows, TupleDesc tupdesc)
{
	int			kind = rows->kind;
	const char *model = kind == CLV_KIND_MBGNBD ? "MBG/NBD" : "BG/NBD";
	BgnbdData	d;
	Datum		values[BGNBD_RESULT_NATTS];
	bool		nulls[BGNBD_RESULT_NATTS] = {0};
	double		lp[4] = {0, 0, 0, 0};
	const double cold[4] = {0, 0, 0, 0};
	ClvWarmStart warm = {0};
	ClvOptimResult res;
	MemoryContext fitcontext,
				old;
	int64		i;
	bool		repeat = false;
	bool		at_bound = false;
	bool		flat;
	double		time_scale = 1.0;
	double	   *orig_tx = NULL,
			   *orig_t = NULL;

	if (tupdesc->natts != BGNBD_RESULT_NATTS)
		elog(ERROR, "%s model has %d attributes, expected %d", model, tupdesc->natts,
			 BGNBD_RESULT_NATTS);
	for (i = 0; i < rows->count && !repeat; i++)
		repeat = clv_rows_data(rows)[i * BGNBD_WIDTH] > 0;
	if (!repeat)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit %s: no customer made a repeat purchase", model),
				 errdetail("All %lld customers have x = 0; the dropout parameters a and b are not identified.",
						   (long long) rows->count)));

	fitcontext = AllocSetContextCreate(CurrentMemoryContext, "bgnbd fit",
									   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(fitcontext);
	bgnbd_prepare(rows, &d);
	if (d.penalizer > 0)
		time_scale = bgnbd_scale_times(&d, &orig_tx, &orig_t);
	/*
	 * Over many distinct rows, BFGS starts from a fit of a sample of them,
	 * with its curvature: a few passes over every row instead of some
	 * twenty-five.  The same minimum to the optimiser's tolerance; a fit the
	 * sample cannot start is made from cold, as over few rows.
	 */
	if (d.n >= BGNBD_SAMPLE_FROM)
	{
		BgnbdData	sample;

		bgnbd_sample(&d, &sample, d.n / BGNBD_SAMPLE_ROWS);
		clv_warm_start(bgnbd_objective_grad, &sample, lp, 4, &warm);
	}
	res = clv_minimise_warm(bgnbd_objective_grad, bgnbd_objective, &d, lp, cold, 4, &warm);
	ereport(DEBUG1,
			(errmsg_internal("%s fit: %lld distinct rows, %d iterations after %s",
							 model, (long long) d.n, res.iterations,
							 warm.warm ? psprintf("%d over a sample", warm.iterations) : "a cold start")));
	for (i = 0; i < 4; i++)
		at_bound = at_bound || fabs(lp[i]) > CLV_LOG_RUNAWAY;
	if (!at_bound && res.converged && d.n >= BGNBD_SAMPLE_FROM)
	{
		/* over many rows, the Hessian in closed form: one pass, not eight */
		double		hess[CLV_MAX_PARAMS][CLV_MAX_PARAMS];

		flat = !(bgnbd_objective_hessian(&d, lp, hess) && clv_hessian_ok(hess, 4));
	}
	else
		flat = !at_bound && res.converged && !clv_curvature_ok(bgnbd_objective_grad, &d, lp, 4);
	if (orig_t != NULL)
	{
		/* back to the caller's time unit: alpha scales with time */
		d.tx_vals = orig_tx;
		d.t_vals = orig_t;
		lp[1] += log(time_scale);
	}
	values[4] = Float8GetDatum(bgnbd_loglik(&d, exp(lp[0]), exp(lp[1]), exp(lp[2]), exp(lp[3])));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(fitcontext);

	for (i = 0; i < 4; i++)
		values[i] = Float8GetDatum(exp(lp[i]));
	values[5] = Int32GetDatum(res.iterations);
	/*
	 * A parameter run off towards 0 or infinity means the likelihood has its
	 * supremum at the edge (too few customers or repeat purchases), and a
	 * flat direction at the optimum a ridge of equal likelihoods: no
	 * maximum, whatever the optimiser says.
	 */
	values[6] = BoolGetDatum(res.converged && !at_bound && !flat);
	values[7] = Int64GetDatum(rows->count);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* ln of the odds of death: ln( [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) ) */
static double
bgnbd_log_odds_dead(const ClvBgnbd *m, double x, double t_x, double t_cal)
{
	return log(m->a) - log(m->b + x - 1) +
		(m->r + x) * (log(m->alpha + t_cal) - log(m->alpha + t_x));
}

/* The same, for segment_internal.bgnbd_predictions() (src/clv_value.c). */
double
clv_bgnbd_log_odds_dead(const ClvBgnbd *m, double x, double t_x, double t_cal)
{
	return bgnbd_log_odds_dead(m, x, t_x, t_cal);
}

/* bgnbd_p_alive(model, x, t_x, T): probability that the customer is still active. */
Datum
segment_bgnbd_p_alive(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		t_cal = PG_GETARG_FLOAT8(3);
	double		result;

	clv_models_cached(fcinfo, 0, &m, -1, NULL);
	clv_check_customer(x, t_x, t_cal);
	if (x == 0)
		PG_RETURN_FLOAT8(1.0);
	/* exp overflows to +inf for hopeless cases, giving 0 */
	result = 1.0 / (1.0 + exp(bgnbd_log_odds_dead(&m, x, t_x, t_cal)));
	clv_check_result(result, "probability of being alive", false);
	PG_RETURN_FLOAT8(result);
}

/*
 * (a + b + x - 1) / (a - 1) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)
 *	   2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))), the numerator of the conditional
 * expectation; with x = T = 0 it is the expectation for a new customer.
 */
static double
bgnbd_numerator_at(double r, double alpha, double a, double b, double t, double x, double t_cal)
{
	double		z = t / (alpha + t_cal + t);
	int			sign;
	double		lf = clv_log_hyp2f1(r + x, b + x, a + b + x - 1, z, &sign);
	double		l = lf + (r + x) * (log(alpha + t_cal) - log(alpha + t_cal + t));
	double		second = sign > 0 ? -expm1(l) : 1 + exp(l);

	return (a + b + x - 1) / (a - 1) * second;
}

/*
 * The same, continuous in a: a = 1 is a removable singularity (0/0), where
 * the mean of the values at 1 +- h is exact to O(h^2).
 */
static double
bgnbd_numerator(const ClvBgnbd *m, double t, double x, double t_cal)
{
	const double h = 1e-5;

	if (fabs(m->a - 1) < h)
		return (bgnbd_numerator_at(m->r, m->alpha, 1 - h, m->b, t, x, t_cal) +
				bgnbd_numerator_at(m->r, m->alpha, 1 + h, m->b, t, x, t_cal)) / 2;
	return bgnbd_numerator_at(m->r, m->alpha, m->a, m->b, t, x, t_cal);
}

/* The same, for segment_internal.bgnbd_predictions() (src/clv_value.c). */
double
clv_bgnbd_numerator(const ClvBgnbd *m, double t, double x, double t_cal)
{
	return bgnbd_numerator(m, t, x, t_cal);
}

/* bgnbd_numerator_at for several horizons t[0..nt), nt <= CLV_HYP_MAX_Z. */
static void
bgnbd_numerators_at(double r, double alpha, double a, double b, const double *t, int nt,
					double x, double t_cal, double *out)
{
	double		z[CLV_HYP_MAX_Z],
				lf[CLV_HYP_MAX_Z];
	int			sign[CLV_HYP_MAX_Z];
	int			k;

	if (nt <= 0 || nt > CLV_HYP_MAX_Z)
		elog(ERROR, "invalid number of horizons %d", nt);
	for (k = 0; k < nt; k++)
		z[k] = t[k] / (alpha + t_cal + t[k]);
	clv_log_hyp2f1_multi(r + x, b + x, a + b + x - 1, z, nt, lf, sign);
	for (k = 0; k < nt; k++)
	{
		double		l = lf[k] + (r + x) * (log(alpha + t_cal) - log(alpha + t_cal + t[k]));
		double		second = sign[k] > 0 ? -expm1(l) : 1 + exp(l);

		out[k] = (a + b + x - 1) / (a - 1) * second;
	}
}

/*
 * The numerators of the expected purchases in (T, T + t_k] for several
 * horizons (CLV's months), in one series pass; they depend on the customer
 * through x and T only, not t_x.
 */
void
clv_bgnbd_numerators(const ClvBgnbd *m, const double *t, int nt, double x, double t_cal,
					 double *out)
{
	const double h = 1e-5;		/* as in bgnbd_numerator */
	int			k;

	if (fabs(m->a - 1) < h)
	{
		double		hi[CLV_HYP_MAX_Z];

		bgnbd_numerators_at(m->r, m->alpha, 1 - h, m->b, t, nt, x, t_cal, out);
		bgnbd_numerators_at(m->r, m->alpha, 1 + h, m->b, t, nt, x, t_cal, hi);
		for (k = 0; k < nt; k++)
			out[k] = (out[k] + hi[k]) / 2;
	}
	else
		bgnbd_numerators_at(m->r, m->alpha, m->a, m->b, t, nt, x, t_cal, out);
}

/* What the numerators are divided by: 1 + the odds that the customer is gone. */
double
clv_bgnbd_denominator(const ClvBgnbd *m, double x, double t_x, double t_cal)
{
	return x > 0 ? 1.0 + exp(bgnbd_log_odds_dead(m, x, t_x, t_cal)) : 1.0;
}

/*
 * Expected purchases in (T, T + t_k] for several horizons at once (CLV's
 * months); same values as clv_bgnbd_expected, one series pass.
 */
void
clv_bgnbd_expected_multi(const ClvBgnbd *m, const double *t, int nt, double x, double t_x,
						 double t_cal, double *out)
{
	double		den = clv_bgnbd_denominator(m, x, t_x, t_cal);
	int			k;

	clv_bgnbd_numerators(m, t, nt, x, t_cal, out);
	for (k = 0; k < nt; k++)
		out[k] /= den;
}

/* Expected purchases in (T, T + t] of a customer with history (x, t_x, T). */
double
clv_bgnbd_expected(const ClvBgnbd *m, double t, double x, double t_x, double t_cal)
{
	double		num;

	if (t == 0)
		return 0.0;
	num = bgnbd_numerator(m, t, x, t_cal);
	if (x == 0)
		return num;
	return num / (1.0 + exp(bgnbd_log_odds_dead(m, x, t_x, t_cal)));
}

/* bgnbd_expected_purchases(model, t, x, t_x, T): conditional expectation. */
Datum
segment_bgnbd_expected_purchases(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		t = PG_GETARG_FLOAT8(1);
	double		x = PG_GETARG_FLOAT8(2);
	double		t_x = PG_GETARG_FLOAT8(3);
	double		t_cal = PG_GETARG_FLOAT8(4);

	double		num;
	const double *memo;

	clv_models_cached(fcinfo, 0, &m, -1, NULL);
	clv_check_horizon(t);
	clv_check_customer(x, t_x, t_cal);
	if (t == 0)
		PG_RETURN_FLOAT8(0.0);
	/* the numerator of customers with the same (x, T) is computed once */
	memo = clv_memo_get(fcinfo, x, t_cal, t, 1);
	if (memo != NULL)
		num = memo[0];
	else
	{
		num = bgnbd_numerator(&m, t, x, t_cal);
		clv_memo_put(fcinfo, x, t_cal, t, 1, &num);
	}
	if (x > 0)
		num /= 1.0 + exp(bgnbd_log_odds_dead(&m, x, t_x, t_cal));
	clv_check_result(num, "expected number of purchases", false);
	PG_RETURN_FLOAT8(num);
}

/* bgnbd_expected_purchases_new(model, t): E[X(t)] for a customer just acquired. */
Datum
segment_bgnbd_expected_purchases_new(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		t = PG_GETARG_FLOAT8(1);
	double		num;

	clv_models_cached(fcinfo, 0, &m, -1, NULL);
	clv_check_horizon(t);
	if (t == 0)
		PG_RETURN_FLOAT8(0.0);
	num = bgnbd_numerator(&m, t, 0, 0);
	clv_check_result(num, "expected number of purchases", false);
	PG_RETURN_FLOAT8(num);
}

/*
 * bgnbd_log_likelihood(model, x, t_x, T): one customer's log-likelihood,
 * written straight from the formula (the fit has its own, faster loop; the
 * tests check that the two agree).
 */
Datum
segment_bgnbd_log_likelihood(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		t_cal = PG_GETARG_FLOAT8(3);
	double		a3,
				lse,
				ll;

	clv_models_cached(fcinfo, 0, &m, -1, NULL);
	clv_check_customer(x, t_x, t_cal);
	a3 = -(m.r + x) * log(m.alpha + t_cal);
	lse = a3;
	if (x > 0)
	{
		double		a4 = log(m.a) - log(m.b + x - 1) - (m.r + x) * log(m.alpha + t_x);

		lse = Max(a3, a4) + log1p(exp(Min(a3, a4) - Max(a3, a4)));
	}
	ll = lgamma(m.r + x) - lgamma(m.r) + m.r * log(m.alpha)
		+ (lgamma(m.a) + lgamma(m.b + x) - lgamma(m.a + m.b + x))
		- (lgamma(m.a) + lgamma(m.b) - lgamma(m.a + m.b))
		+ lse;
	clv_check_result(ll, "BG/NBD log-likelihood", true);
	PG_RETURN_FLOAT8(ll);
}
