/*
 * clv_pareto_nbd.c
 *	  Pareto/NBD (Schmittlein, Morrison and Colombo 1987): the maximum-
 *	  likelihood fit as an aggregate over the customers' (x, t_x, T), and the
 *	  predictions of a fitted model.
 *
 * Purchases follow a Poisson process with a gamma(r, alpha) rate, lifetimes
 * are exponential with a gamma(s, beta) rate.  A customer's likelihood
 * (Fader and Hardie 2005, "A note on deriving the Pareto/NBD model and
 * related expressions", eq. 22-23) is
 *   L = Gamma(r+x) alpha^r beta^s / Gamma(r)
 *		 * ( (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 )
 * with, for alpha >= beta (m = alpha, b' = s+1) or alpha < beta (m = beta,
 * b' = r+x), and F(u) = 2F1(r+s+x, b'; r+s+x+1; |alpha-beta|/(m+u)),
 *   A0 = F(t_x) / (m+t_x)^(r+s+x) - F(T) / (m+T)^(r+s+x).
 * Everything is kept in log space (A0 as a log-difference, the sum as a
 * log-sum-exp), so that neither power underflows for large x or T.  The
 * series (after Euler's transformation, positive falling terms) is slow
 * when z nears 1, that is when one of alpha, beta is tiny beside the other:
 * the fit then takes the point as infinitely unlikely, the predictions raise
 * an error.  The gradient, which would need derivatives of
 * 2F1 in its parameters, is taken by central differences.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"

#include "clv.h"
#include "segment.h"

#define PNBD_WIDTH 3
#define PNBD_RESULT_NATTS 8
#define PNBD_LOG_BOUND 25.0		/* parameters within exp(+-25) */
#define PNBD_LOG_RUNAWAY 15.0	/* beyond exp(+-15) a parameter has run off */
#define PNBD_FIT_MAX_TERMS 20000
#define PNBD_MAX_TERMS 10000000
#define PNBD_EPS 1e-16
#define PNBD_GRAD_STEP 1e-5		/* central differences, log scale */
#define PNBD_MAX_PMF_N 100000

PG_FUNCTION_INFO_V1(segment_pareto_nbd_fit_trans);
PG_FUNCTION_INFO_V1(segment_pareto_nbd_fit_final);
PG_FUNCTION_INFO_V1(segment_pareto_nbd_p_alive);
PG_FUNCTION_INFO_V1(segment_pareto_nbd_expected_purchases);
PG_FUNCTION_INFO_V1(segment_pareto_nbd_log_likelihood);
PG_FUNCTION_INFO_V1(segment_pareto_nbd_probability_of_purchases);

typedef struct ClvPareto
{
	double		r,
				alpha,
				s,
				beta;
} ClvPareto;

/*
 * ln 2F1(a, b; a+1; z) for a, b > 0 and 0 <= z < 1; NaN when the series
 * needs more than max_terms terms.  Summed after Euler's transformation
 *   2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z)
 * (Abramowitz and Stegun 15.3.3): the terms of the latter fall from the
 * first on, by a ratio (a+1-b+n)/(a+1+n) z < z, where the direct series' may
 * grow for thousands of terms first when b = r+x is large; a+1-b is s+1 or
 * r+x here, positive, so no term is negative.
 */
static double
pnbd_log_hyp2f1(double a, double b, double z, int64 max_terms, double *terms)
{
	double		bp = a + 1 - b;
	double		sum = 1.0,
				term = 1.0;
	int64		n;

	if (z == 0.0)
		return 0.0;
	if (!(bp > 0))
		elog(ERROR, "Pareto/NBD hypergeometric parameters out of range: %g, %g", a, b);
	for (n = 0; n < max_terms; n++)
	{
		double		ratio = (bp + n) / (a + 1 + n) * z;

		term *= ratio;
		sum += term;
		/* the ratios rise towards z, never past it: the tail is below term z / (1 - z) */
		if (term * z <= PNBD_EPS * sum * (1.0 - z))
		{
			*terms += n;
			return (1 - b) * log1p(-z) + log(sum);
		}
		if ((n & 0xFFFF) == 0xFFFF)
			CHECK_FOR_INTERRUPTS();
	}
	*terms += n;
	return NAN;
}

/*
 * ln A0 (see the header comment): -inf when t_x = T; NaN when a series did
 * not converge within max_terms.
 */
static double
pnbd_log_a0(const ClvPareto *m, double x, double t_x, double t_cal, int64 max_terms,
			double *terms)
{
	double		big = Max(m->alpha, m->beta);
	double		diff = fabs(m->alpha - m->beta);
	double		bb = m->alpha >= m->beta ? m->s + 1 : m->r + x;
	double		rsx = m->r + m->s + x;
	double		l1,
				l2;

	if (t_x >= t_cal)
		return -INFINITY;
	l1 = pnbd_log_hyp2f1(rsx, bb, diff / (big + t_x), max_terms, terms) - rsx * log(big + t_x);
	l2 = pnbd_log_hyp2f1(rsx, bb, diff / (big + t_cal), max_terms, terms) -
		rsx * log(big + t_cal);
	if (isnan(l1) || isnan(l2))
		return NAN;
	/* A0 is positive (an integral of a positive function over (t_x, T]); rounding may say otherwise */
	if (!(l2 < l1))
		return -INFINITY;
	return l1 + log(-expm1(l2 - l1));
}

/* ln of the first term, (alpha+T)^-(r+x) (beta+T)^-s */
static double
pnbd_log_alive_term(const ClvPareto *m, double x, double t_cal)
{
	return -(m->r + x) * log(m->alpha + t_cal) - m->s * log(m->beta + t_cal);
}

/* ln of the second term, s/(r+s+x) A0 */
static double
pnbd_log_dead_term(const ClvPareto *m, double x, double log_a0)
{
	return log(m->s) - log(m->r + m->s + x) + log_a0;
}

static double
pnbd_log_add(double a, double b)
{
	if (a == -INFINITY)
		return b;
	if (b == -INFINITY)
		return a;
	return Max(a, b) + log1p(exp(Min(a, b) - Max(a, b)));
}

/* One customer's log-likelihood; NaN when a series did not converge. */
static double
pnbd_loglik_row(const ClvPareto *m, double x, double t_x, double t_cal, int64 max_terms,
				double *terms)
{
	double		log_a0 = pnbd_log_a0(m, x, t_x, t_cal, max_terms, terms);

	if (isnan(log_a0))
		return NAN;
	return lgamma(m->r + x) - lgamma(m->r) + m->r * log(m->alpha) + m->s * log(m->beta) +
		pnbd_log_add(pnbd_log_alive_term(m, x, t_cal), pnbd_log_dead_term(m, x, log_a0));
}

/* pareto_nbd_fit transition: remember one customer; rows with a NULL are skipped. */
Datum
segment_pareto_nbd_fit_trans(PG_FUNCTION_ARGS)
{
	return clv_xtt_fit_trans(fcinfo, CLV_KIND_PARETO, "Pareto/NBD");
}

/* The fit's data: distinct (x, t_x, T) rows with their counts. */
typedef struct PnbdData
{
	int64		n;
	double	   *rows;			/* n rows of (x, t_x, T) */
	double	   *w;
	double		total_w;
	double		terms;			/* series terms summed so far */
	double		budget;			/* beyond this many, every evaluation is +inf */
} PnbdData;

static void
pnbd_prepare(const ClvRows *rows, PnbdData *d)
{
	int64		n = clv_rows_distinct(rows, &d->rows, &d->w);

	d->n = n;
	d->total_w = (double) rows->count;
	d->terms = 0;
	/*
	 * Where the likelihood's supremum lies at s, beta -> infinity (a constant
	 * dropout rate), the series slow down as the optimiser follows it: a
	 * budget of terms ends such a fit, unconverged, in bounded time.  A fit
	 * that converges uses a small part of it (CDNOW: under 1%).
	 */
	d->budget = 1e8 + 1e5 * (double) n;
}

/* Total log-likelihood; NaN when a series did not converge. */
static double
pnbd_loglik(PnbdData *d, const ClvPareto *m, int64 max_terms)
{
	double		ll = 0;
	int64		i;

	for (i = 0; i < d->n; i++)
	{
		const double *row = d->rows + i * PNBD_WIDTH;
		double		v;

		if ((i & 0x3FF) == 0)
			CHECK_FOR_INTERRUPTS();
		v = pnbd_loglik_row(m, row[0], row[1], row[2], max_terms, &d->terms);
		if (isnan(v))
			return NAN;
		ll += d->w[i] * v;
	}
	return ll;
}

/* The objective over log-parameters: mean negative log-likelihood. */
static double
pnbd_objective(const double *lp, void *arg)
{
	PnbdData   *d = arg;
	ClvPareto	m;
	double		p[4];

	if (d->terms > d->budget)
		return INFINITY;
	if (!clv_params_from_logs(lp, 4, PNBD_LOG_BOUND, p))
		return INFINITY;
	m.r = p[0];
	m.alpha = p[1];
	m.s = p[2];
	m.beta = p[3];
	return -pnbd_loglik(d, &m, PNBD_FIT_MAX_TERMS) / d->total_w;
}

/* The objective and its gradient by central differences. */
static double
pnbd_objective_grad(const double *lp, double *grad, void *arg)
{
	double		f = pnbd_objective(lp, arg);
	double		p[4];
	int			k;

	if (!isfinite(f))
		return f;
	memcpy(p, lp, sizeof(p));
	for (k = 0; k < 4; k++)
	{
		double		fp,
					fm;

		p[k] = lp[k] + PNBD_GRAD_STEP;
		fp = pnbd_objective(p, arg);
		p[k] = lp[k] - PNBD_GRAD_STEP;
		fm = pnbd_objective(p, arg);
		p[k] = lp[k];
		grad[k] = (fp - fm) / (2 * PNBD_GRAD_STEP);
	}
	return f;
}

/*
 * Whether lp is a stationary point after all, when the minimiser could not
 * say so: the rounding noise of the likelihood (the differences of nearly
 * equal hypergeometric terms in A0) is amplified by the finite-difference
 * gradient, and may keep BFGS from its tolerance and Nelder-Mead from its
 * own at the optimum.  With a step 10 times longer (less noise, a bias far
 * below the tolerance) the gradient of the mean log-likelihood must be
 * below 1e-6 in every log-parameter, BFGS's own fallback tolerance.
 */
static bool
pnbd_stationary(PnbdData *d, const double *lp)
{
	double		p[4];
	int			k;

	memcpy(p, lp, sizeof(p));
	for (k = 0; k < 4; k++)
	{
		double		fp,
					fm;

		p[k] = lp[k] + 10 * PNBD_GRAD_STEP;
		fp = pnbd_objective(p, d);
		p[k] = lp[k] - 10 * PNBD_GRAD_STEP;
		fm = pnbd_objective(p, d);
		p[k] = lp[k];
		if (!(fabs(fp - fm) / (20 * PNBD_GRAD_STEP) <= 1e-6))
			return false;
	}
	return true;
}

/*
 * pareto_nbd_fit final: maximise the likelihood; returns (r, alpha, s, beta,
 * log_likelihood, iterations, converged, customers), NULL without rows.
 */
Datum
segment_pareto_nbd_fit_final(PG_FUNCTION_ARGS)
{
	ClvRows		rows;
	PnbdData	d;
	TupleDesc	tupdesc;
	Datum		values[PNBD_RESULT_NATTS];
	bool		nulls[PNBD_RESULT_NATTS] = {0};
	double		lp[4] = {0, 0, 0, 0};
	ClvOptimResult res;
	ClvPareto	m;
	MemoryContext fitcontext,
				old;
	int64		i;
	bool		repeat = false;
	bool		at_bound = false;
	bool		flat;
	double		ll;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), CLV_KIND_PARETO, PNBD_WIDTH, &rows);
	if (rows.count == 0)
		PG_RETURN_NULL();
	clv_rows_check(&rows);
	tupdesc = segment_result_tupdesc(fcinfo, PNBD_RESULT_NATTS, "segment.pareto_nbd_model");

	for (i = 0; i < rows.count && !repeat; i++)
		repeat = clv_rows_data(&rows)[i * PNBD_WIDTH] > 0;
	if (!repeat)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit Pareto/NBD: no customer made a repeat purchase"),
				 errdetail("All %lld customers have x = 0; the parameters are not identified.",
						   (long long) rows.count)));

	fitcontext = AllocSetContextCreate(CurrentMemoryContext, "pareto/nbd fit",
									   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(fitcontext);
	pnbd_prepare(&rows, &d);
	/*
	 * BFGS first; where it stops short of its tolerance at a stationary
	 * point (the noise above), that is the maximum, and Nelder-Mead, whose
	 * evaluations cost a pass each, is not needed.
	 */
	res = clv_minimise_bfgs(pnbd_objective_grad, &d, lp, 4);
	if (!res.converged && isfinite(res.f))
		res.converged = pnbd_stationary(&d, lp);
	if (!res.converged)
	{
		ClvOptimResult more;

		if (!isfinite(res.f))
			memset(lp, 0, sizeof(lp));
		more = clv_minimise(pnbd_objective_grad, pnbd_objective, &d, lp, 4);
		more.iterations += res.iterations;
		res = more;
		if (!res.converged && isfinite(res.f))
		{
			/* the budget is for the search: the check gets its own */
			d.terms = 0;
			res.converged = pnbd_stationary(&d, lp);
		}
	}
	d.terms = 0;
	for (i = 0; i < 4; i++)
		at_bound = at_bound || fabs(lp[i]) > PNBD_LOG_RUNAWAY;
	flat = !at_bound && res.converged && !clv_curvature_ok(pnbd_objective_grad, &d, lp, 4);
	m.r = exp(lp[0]);
	m.alpha = exp(lp[1]);
	m.s = exp(lp[2]);
	m.beta = exp(lp[3]);
	ll = pnbd_loglik(&d, &m, PNBD_FIT_MAX_TERMS);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(fitcontext);

	values[0] = Float8GetDatum(m.r);
	values[1] = Float8GetDatum(m.alpha);
	values[2] = Float8GetDatum(m.s);
	values[3] = Float8GetDatum(m.beta);
	/* NaN only if the optimiser never found a finite point: then no log-likelihood */
	values[4] = Float8GetDatum(ll);
	nulls[4] = isnan(ll);
	values[5] = Int32GetDatum(res.iterations);
	/* as bgnbd_fit: a parameter run off or a flat direction is no maximum */
	values[6] = BoolGetDatum(res.converged && !at_bound && !flat && !isnan(ll));
	values[7] = Int64GetDatum(rows.count);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* The parameters of a segment.pareto_nbd_model value, validated. */
static void
pnbd_from_datum(Datum model, ClvPareto *m)
{
	HeapTupleHeader t = DatumGetHeapTupleHeader(model);

	m->r = clv_model_param(t, 1, "r", "Pareto/NBD");
	m->alpha = clv_model_param(t, 2, "alpha", "Pareto/NBD");
	m->s = clv_model_param(t, 3, "s", "Pareto/NBD");
	m->beta = clv_model_param(t, 4, "beta", "Pareto/NBD");
}

/* ln A0 for a prediction: an error rather than NaN when a series does not converge. */
static double
pnbd_log_a0_checked(const ClvPareto *m, double x, double t_x, double t_cal)
{
	double		terms = 0;
	double		v = pnbd_log_a0(m, x, t_x, t_cal, PNBD_MAX_TERMS, &terms);

	if (isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("Pareto/NBD hypergeometric series did not converge"),
				 errdetail("The series needs about 35 / (1 - z) terms with z = |alpha - beta| / (max(alpha, beta) + t_x); the limit is %d.",
						   PNBD_MAX_TERMS),
				 errhint("Use a model whose alpha and beta are of a similar magnitude, as a fit's are.")));
	return v;
}

/* ln of the odds that the customer is gone: ln( s/(r+s+x) A0 / first term ) */
static double
pnbd_log_odds_dead(const ClvPareto *m, double x, double t_x, double t_cal)
{
	double		log_a0 = pnbd_log_a0_checked(m, x, t_x, t_cal);

	return pnbd_log_dead_term(m, x, log_a0) - pnbd_log_alive_term(m, x, t_cal);
}

/* pareto_nbd_p_alive(model, x, t_x, T): probability that the customer is still active. */
Datum
segment_pareto_nbd_p_alive(PG_FUNCTION_ARGS)
{
	ClvPareto	m;
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		t_cal = PG_GETARG_FLOAT8(3);
	double		result;

	pnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_customer(x, t_x, t_cal);
	result = 1.0 / (1.0 + exp(pnbd_log_odds_dead(&m, x, t_x, t_cal)));
	clv_check_result(result, "probability of being alive", false);
	PG_RETURN_FLOAT8(result);
}

/*
 * Expected purchases in (T, T + t]: P(alive) times the expectation of an
 * alive customer, (r+x)(beta+T) / ((alpha+T)(s-1)) (1 - ((beta+T)/(beta+T+t))^(s-1))
 * (Schmittlein et al. 1987), whose last factor tends to ln((beta+T+t)/(beta+T))
 * as s -> 1.
 */
static double
pnbd_expected(const ClvPareto *m, double t, double x, double t_x, double t_cal)
{
	double		lq = log(m->beta + t_cal + t) - log(m->beta + t_cal);
	double		factor;

	if (t == 0)
		return 0.0;
	if (fabs(m->s - 1) < 1e-10)
		factor = lq;
	else
		factor = -expm1(-(m->s - 1) * lq) / (m->s - 1);
	return (m->r + x) * (m->beta + t_cal) / (m->alpha + t_cal) * factor /
		(1.0 + exp(pnbd_log_odds_dead(m, x, t_x, t_cal)));
}

/* pareto_nbd_expected_purchases(model, t, x, t_x, T): conditional expectation. */
Datum
segment_pareto_nbd_expected_purchases(PG_FUNCTION_ARGS)
{
	ClvPareto	m;
	double		t = PG_GETARG_FLOAT8(1);
	double		x = PG_GETARG_FLOAT8(2);
	double		t_x = PG_GETARG_FLOAT8(3);
	double		t_cal = PG_GETARG_FLOAT8(4);
	double		result;

	pnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_horizon(t);
	clv_check_customer(x, t_x, t_cal);
	result = pnbd_expected(&m, t, x, t_x, t_cal);
	clv_check_result(result, "expected number of purchases", false);
	PG_RETURN_FLOAT8(result);
}

/* pareto_nbd_log_likelihood(model, x, t_x, T): one customer's log-likelihood. */
Datum
segment_pareto_nbd_log_likelihood(PG_FUNCTION_ARGS)
{
	ClvPareto	m;
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		t_cal = PG_GETARG_FLOAT8(3);
	double		ll;
	double		terms = 0;

	pnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_customer(x, t_x, t_cal);
	(void) pnbd_log_a0_checked(&m, x, t_x, t_cal);
	ll = pnbd_loglik_row(&m, x, t_x, t_cal, PNBD_MAX_TERMS, &terms);
	clv_check_result(ll, "Pareto/NBD log-likelihood", true);
	PG_RETURN_FLOAT8(ll);
}

/*
 * P(X(t) = n), the probability that a customer just acquired makes exactly n
 * purchases in the next t time units (Fader and Hardie, "Deriving an
 * expression for P(X(t) = x) under the Pareto/NBD model"):
 *   P(n) = NB(n) (beta/(beta+t))^s
 *		  + alpha^r beta^s B(r+n, s+1)/B(r, s) (B1 - sum_{i=0..n} C(i) B2(i))
 * with NB(n) the NBD probability of n purchases of a customer who stays,
 * C(i) = Gamma(r+s+i)/(Gamma(r+s) i!) t^i, and with m = max(alpha, beta),
 * b' = s+1 (alpha >= beta) or r+n (alpha < beta), c = r+s+n+1:
 *   B1 = 2F1(r+s, b'; c; |alpha-beta|/m) / m^(r+s)
 *   B2(i) = 2F1(r+s+i, b'; c; |alpha-beta|/(m+t)) / (m+t)^(r+s+i).
 * The bracket is B1 times (1 - the sum of C(i) B2(i) / B1), each ratio taken
 * in log space; it is a difference of near numbers for large n, clamped at 0
 * against rounding.
 */
static double
pnbd_log_hyp2f1_checked(double a, double b, double c, double z)
{
	int			sign;
	double		v = clv_log_hyp2f1(a, b, c, z, &sign);

	if (sign <= 0 || isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("Pareto/NBD hypergeometric series did not converge")));
	return v;
}

static double
pnbd_probability(const ClvPareto *m, double t, double n)
{
	double		big = Max(m->alpha, m->beta);
	double		diff = fabs(m->alpha - m->beta);
	double		bb = m->alpha >= m->beta ? m->s + 1 : m->r + n;
	double		rs = m->r + m->s;
	double		c = rs + n + 1;
	double		stays;
	double		log_lead;
	double		log_b1;
	double		share = 0;
	double		i;

	if (t == 0)
		return n == 0 ? 1.0 : 0.0;
	stays = exp(lgamma(m->r + n) - lgamma(m->r) - lgamma(n + 1) +
				m->r * (log(m->alpha) - log(m->alpha + t)) +
				n * (log(t) - log(m->alpha + t)) +
				m->s * (log(m->beta) - log(m->beta + t)));
	log_lead = m->r * log(m->alpha) + m->s * log(m->beta) +
		lgamma(m->r + n) + lgamma(m->s + 1) - lgamma(m->r + n + m->s + 1) -
		(lgamma(m->r) + lgamma(m->s) - lgamma(rs));
	log_b1 = pnbd_log_hyp2f1_checked(rs, bb, c, diff / big) - rs * log(big);
	for (i = 0; i <= n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		share += exp(lgamma(rs + i) - lgamma(rs) - lgamma(i + 1) + (i > 0 ? i * log(t) : 0) +
					 pnbd_log_hyp2f1_checked(rs + i, bb, c, diff / (big + t)) -
					 (rs + i) * log(big + t) - log_b1);
	}
	return stays + exp(log_lead + log_b1) * Max(0.0, 1.0 - share);
}

/* pareto_nbd_probability_of_purchases(model, t, n) */
Datum
segment_pareto_nbd_probability_of_purchases(PG_FUNCTION_ARGS)
{
	ClvPareto	m;
	double		t = PG_GETARG_FLOAT8(1);
	double		n = PG_GETARG_FLOAT8(2);
	double		result;

	pnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_horizon(t);
	clv_check_count(n);
	if (n > PNBD_MAX_PMF_N)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("number of purchases n must be at most %d for Pareto/NBD", PNBD_MAX_PMF_N),
				 errdetail("Got %g; the expression sums n + 1 hypergeometric series.", n)));
	result = pnbd_probability(&m, t, n);
	clv_check_result(result, "probability of n purchases", false);
	PG_RETURN_FLOAT8(result);
}
