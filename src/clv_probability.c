/*
 * clv_probability.c
 *	  P(X(t) = n): the probability that a customer just acquired makes
 *	  exactly n repeat purchases in the next t time units, for BG/NBD and
 *	  MBG/NBD.
 *
 * With NB(j) = Gamma(r+j) / (Gamma(r) j!) (alpha/(alpha+t))^r (t/(alpha+t))^j
 * the NBD probability of j purchases of a customer who never drops out:
 *   BG/NBD (Fader, Hardie and Lee 2005, eq. 8)
 *	   P(n) = B(a, b+n)/B(a, b) NB(n)
 *			+ [n > 0] B(a+1, b+n-1)/B(a, b) (1 - sum_{j<n} NB(j))
 *   MBG/NBD (the same derivation with a dropout chance at the first
 *   purchase too: X(t) = min(N(t), K), P(K = k) = (1-p)^k p)
 *	   P(n) = B(a, b+n)/B(a, b) NB(n)
 *			+ B(a+1, b+n)/B(a, b) (1 - sum_{j<=n} NB(j))
 * Every term is computed in log space; the NBD tail is 1 minus the sum of
 * the head, clamped at 0 against rounding.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"

#include "clv.h"

#define CLV_MAX_N 10000000.0

PG_FUNCTION_INFO_V1(segment_bgnbd_probability_of_purchases);
PG_FUNCTION_INFO_V1(segment_mbgnbd_probability_of_purchases);

static double
clv_lbeta(double a, double b)
{
	return lgamma(a) + lgamma(b) - lgamma(a + b);
}

void
clv_check_count(double n)
{
	clv_check_finite(n, "number of purchases n");
	if (n < 0 || !clv_is_whole(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of purchases n must be a non-negative whole number"),
				 errdetail("Got %g.", n)));
	if (n > CLV_MAX_N)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("number of purchases n must be at most %.0f", CLV_MAX_N),
				 errdetail("Got %g.", n)));
}

/* ln NB(j) */
static double
clv_log_nb(const ClvBgnbd *m, double t, double j)
{
	return lgamma(m->r + j) - lgamma(m->r) - lgamma(j + 1) +
		m->r * (log(m->alpha) - log(m->alpha + t)) + j * (log(t) - log(m->alpha + t));
}

/* 1 - sum_{j < upto} NB(j), at least 0 */
static double
clv_nb_tail(const ClvBgnbd *m, double t, double upto)
{
	double		sum = 0;
	double		j;

	for (j = 0; j < upto; j++)
	{
		if (((int64) j & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		sum += exp(clv_log_nb(m, t, j));
	}
	return Max(0.0, 1.0 - sum);
}

static double
clv_probability(const ClvBgnbd *m, double t, double n, bool modified)
{
	double		lb = clv_lbeta(m->a, m->b);
	double		result;

	if (t == 0)
		return n == 0 ? 1.0 : 0.0;
	result = exp(clv_lbeta(m->a, m->b + n) - lb + clv_log_nb(m, t, n));
	if (modified)
		result += exp(clv_lbeta(m->a + 1, m->b + n) - lb) * clv_nb_tail(m, t, n + 1);
	else if (n > 0)
		result += exp(clv_lbeta(m->a + 1, m->b + n - 1) - lb) * clv_nb_tail(m, t, n);
	return result;
}

/* bgnbd_probability_of_purchases(model, t, n) */
Datum
segment_bgnbd_probability_of_purchases(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		t = PG_GETARG_FLOAT8(1);
	double		n = PG_GETARG_FLOAT8(2);
	double		result;

	clv_bgnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_horizon(t);
	clv_check_count(n);
	result = clv_probability(&m, t, n, false);
	clv_check_result(result, "probability of n purchases", false);
	PG_RETURN_FLOAT8(result);
}

/* mbgnbd_probability_of_purchases(model, t, n) */
Datum
segment_mbgnbd_probability_of_purchases(PG_FUNCTION_ARGS)
{
	ClvBgnbd	m;
	double		t = PG_GETARG_FLOAT8(1);
	double		n = PG_GETARG_FLOAT8(2);
	double		result;

	clv_mbgnbd_from_datum(PG_GETARG_DATUM(0), &m);
	clv_check_horizon(t);
	clv_check_count(n);
	result = clv_probability(&m, t, n, true);
	clv_check_result(result, "probability of n purchases", false);
	PG_RETURN_FLOAT8(result);
}
