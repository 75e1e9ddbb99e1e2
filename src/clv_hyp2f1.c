/*
 * clv_hyp2f1.c
 *	  The Gaussian hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1.
 *
 * BG/NBD's expected number of purchases needs 2F1(r+x, b+x; a+b+x-1; z)
 * with z = t / (alpha + T + t).  There a, b > 0 and c > 0 except for new
 * customers with a + b < 1, so the terms of the power series are positive
 * from some index on and summing it has no cancellation.  The terms may grow
 * a long way before they shrink (the ratio starts near (a b / c) z), so the
 * sum is kept scaled and its log returned.  The series converges for every
 * z < 1 but slowly near 1 (about 35 / (1 - z) terms): past a term limit
 * this raises an error rather than return an unconverged value.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "clv.h"

#define CLV_HYP_MAX_TERMS 10000000
#define CLV_HYP_EPS 1e-16
#define CLV_HYP_RESCALE 1e250

/* Error unless a, b and c are finite (x near DBL_MAX makes r + x overflow). */
static void
clv_hyp2f1_check_params(double a, double b, double c)
{
	if (!isfinite(a) || !isfinite(b) || !isfinite(c))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hypergeometric function 2F1(%g, %g; %g; z) has a non-finite parameter",
						a, b, c)));
}

/*
 * log |2F1(a, b; c; z)| with its sign in *sign; a, b, c finite, c not a
 * non-positive integer, 0 <= z < 1.
 */
double
clv_log_hyp2f1(double a, double b, double c, double z, int *sign)
{
	double		sum = 1.0;
	double		term = 1.0;
	double		logscale = 0.0;
	int64		n;

	if (!(z >= 0.0 && z < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hypergeometric argument %g is outside [0, 1)", z),
				 errdetail("BG/NBD needs 2F1(r+x, b+x; a+b+x-1; z) with z = t / (alpha + T + t); z rounds to 1 when alpha + T is negligible beside t."),
				 errhint("Use a model whose alpha is not negligible beside the horizon.")));
	clv_hyp2f1_check_params(a, b, c);
	if (c <= 0 && c == floor(c))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hypergeometric function undefined for c = %g", c),
				 errdetail("BG/NBD needs 2F1(r+x, b+x; a+b+x-1; z); a+b+x-1 is a non-positive integer.")));
	*sign = 1;
	if (z == 0.0)
		return 0.0;

	for (n = 0; n < CLV_HYP_MAX_TERMS; n++)
	{
		double		ratio = (a + n) * (b + n) / ((c + n) * (n + 1)) * z;

		term *= ratio;
		sum += term;
		if (term == 0.0)
			break;

		/*
		 * Once the ratio is below 1 and falling towards z, the tail is at
		 * most term * ratio / (1 - ratio) in absolute value.
		 */
		if (fabs(ratio) < 1.0 && n > -c && n > -a && n > -b &&
			fabs(term) * fabs(ratio) <= CLV_HYP_EPS * fabs(sum) * (1.0 - fabs(ratio)))
			break;
		if (fabs(sum) > CLV_HYP_RESCALE)
		{
			sum /= CLV_HYP_RESCALE;
			term /= CLV_HYP_RESCALE;
			logscale += log(CLV_HYP_RESCALE);
		}
		if ((n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	if (n < CLV_HYP_MAX_TERMS)
	{
		*sign = sum < 0 ? -1 : 1;
		return log(fabs(sum)) + logscale;
	}
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("hypergeometric series 2F1(%g, %g; %g; z) did not converge for z = %.17g", a, b, c, z),
			 errdetail("The series needs about 35 / (1 - z) terms; the limit is %d.",
					   CLV_HYP_MAX_TERMS),
			 errhint("Use a shorter horizon: z = t / (alpha + T + t) approaches 1 when t is much longer than alpha + T.")));
	return 0.0;					/* keep the compiler quiet */
}

/*
 * log |2F1(a, b; c; z_k)| for several z at once, for CLV's monthly steps.
 * The series coefficients (a)_n (b)_n / ((c)_n n!) do not depend on z, so
 * one pass computes them once and adds coefficient * z_k^n to every sum that
 * has not converged yet: a division per term instead of one per term and z.
 * The coefficients are kept scaled (a common log scale for all sums); a
 * power z_k^n that underflows before its series converged (only when a or b
 * is in the hundreds) hands that z back to the single series.
 */
void
clv_log_hyp2f1_multi(double a, double b, double c, const double *z, int nz,
					 double *out, int *sign)
{
	double		coef = 1.0;
	double		logscale = 0.0;
	double		sums[CLV_HYP_MAX_Z],
				pw[CLV_HYP_MAX_Z];
	bool		done[CLV_HYP_MAX_Z];
	int			left = 0,
				k;
	int64		n;

	if (nz < 0 || nz > CLV_HYP_MAX_Z)
		elog(ERROR, "invalid number of hypergeometric arguments %d", nz);
	clv_hyp2f1_check_params(a, b, c);
	for (k = 0; k < nz; k++)
	{
		/* the single series checks its arguments and handles z = 0 */
		if (!(z[k] > 0.0 && z[k] < 1.0) || (c <= 0 && c == floor(c)))
		{
			out[k] = clv_log_hyp2f1(a, b, c, z[k], &sign[k]);
			done[k] = true;
			continue;
		}
		sums[k] = 1.0;
		pw[k] = 1.0;
		done[k] = false;
		left++;
	}
	for (n = 0; left > 0 && n < CLV_HYP_MAX_TERMS; n++)
	{
		double		cr = (a + n) * (b + n) / ((c + n) * (n + 1));
		bool		past_signs = n > -c && n > -a && n > -b;

		coef *= cr;
		for (k = 0; k < nz; k++)
		{
			double		term,
						ratio;

			if (done[k])
				continue;
			pw[k] *= z[k];
			term = coef * pw[k];
			sums[k] += term;
			ratio = fabs(cr * z[k]);
			if (pw[k] == 0.0 && coef != 0.0)
			{
				/* underflow of z^n: let the single series do this one */
				out[k] = clv_log_hyp2f1(a, b, c, z[k], &sign[k]);
				done[k] = true;
				left--;
			}
			else if (term == 0.0 ||
					 (ratio < 1.0 && past_signs &&
					  fabs(term) * ratio <= CLV_HYP_EPS * fabs(sums[k]) * (1.0 - ratio)))
			{
				sign[k] = sums[k] < 0 ? -1 : 1;
				out[k] = log(fabs(sums[k])) + logscale;
				done[k] = true;
				left--;
			}
		}
		if (fabs(coef) > CLV_HYP_RESCALE)
		{
			coef /= CLV_HYP_RESCALE;
			for (k = 0; k < nz; k++)
				sums[k] /= CLV_HYP_RESCALE;
			logscale += log(CLV_HYP_RESCALE);
		}
		if ((n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	/* any left over did not converge: the single series reports it */
	for (k = 0; k < nz; k++)
		if (!done[k])
			out[k] = clv_log_hyp2f1(a, b, c, z[k], &sign[k]);
}
