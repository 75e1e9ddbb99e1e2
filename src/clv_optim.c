/*
 * clv_optim.c
 *	  Nelder-Mead minimisation for the maximum-likelihood fits.
 *
 * The fits minimise a smooth negative log-likelihood over log-parameters
 * (so every parameter stays positive without constraints).  Nelder-Mead
 * needs no gradient, which for BG/NBD would need digamma (not in libm);
 * it stalls sometimes short of the minimum, so the simplex is rebuilt
 * around the best point and the search restarted until a restart no longer
 * improves the objective (the usual remedy, Press et al., Numerical
 * Recipes 10.5).
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "clv.h"

#define CLV_NM_MAX_ITER 2000	/* per restart */
#define CLV_NM_MAX_RESTARTS 10
#define CLV_NM_FTOL 1e-13		/* relative spread of the simplex values */
#define CLV_NM_XTOL 1e-10		/* spread of the simplex vertices (log scale) */

/* The objective with non-finite values (overflow, outside the domain) as +inf. */
static double
clv_eval(ClvObjective f, void *arg, const double *x)
{
	double		v = f(x, arg);

	return isnan(v) ? INFINITY : v;
}

/* Order the simplex vertices by value, best first (n+1 <= 5: insertion sort). */
static void
clv_sort_simplex(double s[][CLV_MAX_PARAMS], double *fv, int n)
{
	int			i,
				j,
				k;

	for (i = 1; i <= n; i++)
		for (j = i; j > 0 && fv[j] < fv[j - 1]; j--)
		{
			double		t = fv[j];

			fv[j] = fv[j - 1];
			fv[j - 1] = t;
			for (k = 0; k < n; k++)
			{
				t = s[j][k];
				s[j][k] = s[j - 1][k];
				s[j - 1][k] = t;
			}
		}
}

/*
 * One Nelder-Mead run from x with initial steps step (standard coefficients:
 * reflection 1, expansion 2, contraction 1/2, shrink 1/2).  Leaves the best
 * point in x, returns its value; *iters counts iterations, *done tells
 * whether the tolerances were met.
 */
static double
clv_nelder_mead(ClvObjective f, void *arg, double *x, int n, double step, int *iters, bool *done)
{
	double		s[CLV_MAX_PARAMS + 1][CLV_MAX_PARAMS];
	double		fv[CLV_MAX_PARAMS + 1];
	double		c[CLV_MAX_PARAMS],
				xr[CLV_MAX_PARAMS],
				xe[CLV_MAX_PARAMS],
				xc[CLV_MAX_PARAMS];
	int			i,
				k,
				it;

	for (i = 0; i <= n; i++)
	{
		memcpy(s[i], x, n * sizeof(double));
		if (i > 0)
			s[i][i - 1] += step;
		fv[i] = clv_eval(f, arg, s[i]);
	}
	*done = false;
	for (it = 0; it < CLV_NM_MAX_ITER; it++)
	{
		double		fr,
					spread = 0;

		CHECK_FOR_INTERRUPTS();
		clv_sort_simplex(s, fv, n);
		for (i = 1; i <= n; i++)
			for (k = 0; k < n; k++)
				spread = Max(spread, fabs(s[i][k] - s[0][k]));
		if (isfinite(fv[n]) &&
			fv[n] - fv[0] <= CLV_NM_FTOL * (1 + fabs(fv[0])) && spread <= CLV_NM_XTOL)
		{
			*done = true;
			break;
		}

		/* centroid of all but the worst, then the reflected point */
		for (k = 0; k < n; k++)
		{
			c[k] = 0;
			for (i = 0; i < n; i++)
				c[k] += s[i][k];
			c[k] /= n;
			xr[k] = 2 * c[k] - s[n][k];
		}
		fr = clv_eval(f, arg, xr);
		if (fr < fv[0])
		{
			double		fe;

			for (k = 0; k < n; k++)
				xe[k] = 3 * c[k] - 2 * s[n][k];
			fe = clv_eval(f, arg, xe);
			if (fe < fr)
			{
				memcpy(s[n], xe, n * sizeof(double));
				fv[n] = fe;
			}
			else
			{
				memcpy(s[n], xr, n * sizeof(double));
				fv[n] = fr;
			}
		}
		else if (fr < fv[n - 1])
		{
			memcpy(s[n], xr, n * sizeof(double));
			fv[n] = fr;
		}
		else
		{
			double		fc;
			bool		outside = fr < fv[n];

			/* contract towards the better of the reflected and worst points */
			for (k = 0; k < n; k++)
				xc[k] = outside ? c[k] + 0.5 * (xr[k] - c[k]) : c[k] + 0.5 * (s[n][k] - c[k]);
			fc = clv_eval(f, arg, xc);
			if (fc < (outside ? fr : fv[n]))
			{
				memcpy(s[n], xc, n * sizeof(double));
				fv[n] = fc;
			}
			else
			{
				/* shrink everything towards the best vertex */
				for (i = 1; i <= n; i++)
				{
					for (k = 0; k < n; k++)
						s[i][k] = s[0][k] + 0.5 * (s[i][k] - s[0][k]);
					fv[i] = clv_eval(f, arg, s[i]);
				}
			}
		}
	}
	clv_sort_simplex(s, fv, n);
	memcpy(x, s[0], n * sizeof(double));
	*iters += it;
	return fv[0];
}

/*
 * Minimise f from x (updated in place).  Converged means the last run met
 * its tolerances and did not improve on the one before it.
 */
ClvOptimResult
clv_minimise(ClvObjective f, void *arg, double *x, int n)
{
	ClvOptimResult res = {0};
	double		best;
	double		step = 0.5;
	int			restart;
	bool		done = false;

	Assert(n >= 1 && n <= CLV_MAX_PARAMS);
	best = clv_nelder_mead(f, arg, x, n, step, &res.iterations, &done);
	for (restart = 0; restart < CLV_NM_MAX_RESTARTS; restart++)
	{
		double		again;

		step = Max(step / 2, 1e-3);
		again = clv_nelder_mead(f, arg, x, n, step, &res.iterations, &done);
		if (done && best - again <= CLV_NM_FTOL * (1 + fabs(best)))
		{
			best = Min(best, again);
			res.converged = isfinite(best);
			break;
		}
		best = again;
	}
	res.f = best;
	return res;
}
