/*
 * clv_mbgnbd.c
 *	  MBG/NBD (Batislam, Denizel and Filiztekin 2007, "Empirical validation
 *	  and comparison of models for customer base analysis"): BG/NBD where a
 *	  customer may also drop out right after the first purchase, so that a
 *	  customer with no repeat purchase is not certainly alive.
 *
 * A customer with x repeat purchases, the last at t_x, observed for T has
 * likelihood, in log space,
 *   LL = lgamma(r+x) - lgamma(r) + r ln alpha + lbeta(a, b+x+1) - lbeta(a, b)
 *		  + ln( (alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x) )
 * (the BG/NBD one with b+x for b+x-1 and the second term for every x); the
 * fit is the BG/NBD fit's loop with that shift (clv_bgnbd.c), the
 * predictions are those of Python's lifetimes (ModifiedBetaGeoFitter).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"

#include "clv.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(segment_mbgnbd_fit_trans);
PG_FUNCTION_INFO_V1(segment_mbgnbd_fit_final);
PG_FUNCTION_INFO_V1(segment_mbgnbd_p_alive);
PG_FUNCTION_INFO_V1(segment_mbgnbd_expected_purchases);
PG_FUNCTION_INFO_V1(segment_mbgnbd_log_likelihood);

/* mbgnbd_fit transition: remember one customer; rows with a NULL are skipped. */
Datum
segment_mbgnbd_fit_trans(PG_FUNCTION_ARGS)
{
	return clv_xtt_fit_trans(fcinfo, CLV_KIND_MBGNBD, "MBG/NBD");
}

/* mbgnbd_fit final: the maximum-likelihood fit, NULL without rows. */
Datum
segment_mbgnbd_fit_final(PG_FUNCTION_ARGS)
{
	return clv_bgnbd_fit_final_kind(fcinfo, CLV_KIND_MBGNBD);
}

/* The parameters of a segment.mbgnbd_model value, validated. */
void
clv_mbgnbd_from_datum(Datum model, ClvBgnbd *m)
{
	HeapTupleHeader t = DatumGetHeapTupleHeader(model);

	m->r = clv_model_param(t, 1, "r", "MBG/NBD");
	m->alpha = clv_model_param(t, 2, "alpha", "MBG/NBD");
	m->a = clv_model_param(t, 3, "a", "MBG/NBD");
	m->b = clv_model_param(t, 4, "b", "MBG/NBD");
}

/* ln of the odds of death: ln( a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x) ) */
static double
mbgnbd_log_odds_dead(const ClvBgnbd *m, double x, double t_x, double t_cal)
{
	return log(m->a) - log(m->b + x) +
		(m->r + x) * (log(m->alpha + t_cal) - log(m->alpha + t_x));
}

/* mbgnbd_p_alive(model, x, t_x, T): probability that the customer is still active. */
Datum
segment_mbgnbd_p_alive(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		t_cal = PG_GETARG_FLOAT8(3);
	double		result;

	clv_mbgnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_customer(x, t_x, t_cal);
	/* exp overflows to +inf for hopeless cases, giving 0 */
	result = 1.0 / (1.0 + exp(mbgnbd_log_odds_dead(&m, x, t_x, t_cal)));
	clv_check_result(result, "probability of being alive", false);
	PG_RETURN_FLOAT8(result);
}

/*
 * (a + b + x) / (a - 1) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)
 *	   2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))), the numerator of the conditional
 * expectation.
 */
static double
mbgnbd_numerator_at(double r, double alpha, double a, double b, double t, double x,
					double t_cal)
{
	double		z = t / (alpha + t_cal + t);
	int			sign;
	double		lf = clv_log_hyp2f1(r + x, b + x + 1, a + b + x, z, &sign);
	double		l = lf + (r + x) * (log(alpha + t_cal) - log(alpha + t_cal + t));
	double		second = sign > 0 ? -expm1(l) : 1 + exp(l);

	return (a + b + x) / (a - 1) * second;
}

/* The same, continuous across the removable singularity a = 1 (as BG/NBD's). */
static double
mbgnbd_numerator(const ClvBgnbd *m, double t, double x, double t_cal)
{
	const double h = 1e-5;

	if (fabs(m->a - 1) < h)
		return (mbgnbd_numerator_at(m->r, m->alpha, 1 - h, m->b, t, x, t_cal) +
				mbgnbd_numerator_at(m->r, m->alpha, 1 + h, m->b, t, x, t_cal)) / 2;
	return mbgnbd_numerator_at(m->r, m->alpha, m->a, m->b, t, x, t_cal);
}

/* Expected purchases in (T, T + t] of a customer with history (x, t_x, T). */
double
clv_mbgnbd_expected(const ClvBgnbd *m, double t, double x, double t_x, double t_cal)
{
	if (t == 0)
		return 0.0;
	return mbgnbd_numerator(m, t, x, t_cal) /
		(1.0 + exp(mbgnbd_log_odds_dead(m, x, t_x, t_cal)));
}

/* mbgnbd_expected_purchases(model, t, x, t_x, T): conditional expectation. */
Datum
segment_mbgnbd_expected_purchases(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		t = PG_GETARG_FLOAT8(1);
	double		x = PG_GETARG_FLOAT8(2);
	double		t_x = PG_GETARG_FLOAT8(3);
	double		t_cal = PG_GETARG_FLOAT8(4);
	double		result;

	clv_mbgnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_horizon(t);
	clv_check_customer(x, t_x, t_cal);
	result = clv_mbgnbd_expected(&m, t, x, t_x, t_cal);
	clv_check_result(result, "expected number of purchases", false);
	PG_RETURN_FLOAT8(result);
}

/*
 * mbgnbd_log_likelihood(model, x, t_x, T): one customer's log-likelihood,
 * written straight from the formula (the tests check it against the fit's).
 */
Datum
segment_mbgnbd_log_likelihood(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		x = PG_GETARG_FLOAT8(1);
	double		t_x = PG_GETARG_FLOAT8(2);
	double		t_cal = PG_GETARG_FLOAT8(3);
	double		a3,
				a4,
				ll;

	clv_mbgnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_customer(x, t_x, t_cal);
	a3 = -(m.r + x) * log(m.alpha + t_cal);
	a4 = log(m.a) - log(m.b + x) - (m.r + x) * log(m.alpha + t_x);
	ll = lgamma(m.r + x) - lgamma(m.r) + m.r * log(m.alpha)
		+ (lgamma(m.a) + lgamma(m.b + x + 1) - lgamma(m.a + m.b + x + 1))
		- (lgamma(m.a) + lgamma(m.b) - lgamma(m.a + m.b))
		+ Max(a3, a4) + log1p(exp(Min(a3, a4) - Max(a3, a4)));
	clv_check_result(ll, "MBG/NBD log-likelihood", true);
	PG_RETURN_FLOAT8(ll);
}
