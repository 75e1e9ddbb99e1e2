/*
 * clv_optim.c
 *	  Minimisation for the maximum-likelihood fits: BFGS with analytic
 *	  gradients, Nelder-Mead as the fallback, and the digamma function the
 *	  gradients need (libm has lgamma but no digamma).
 *
 * The fits minimise a smooth negative log-likelihood over log-parameters
 * (so every parameter stays positive without constraints).  One evaluation
 * is a pass over all distinct customer rows, so the number of evaluations is
 * what a fit costs: BFGS needs a few dozen where Nelder-Mead needs several
 * hundred.  When BFGS cannot make progress (a line search that finds no
 * descent far from a stationary point, a non-finite value), Nelder-Mead
 * takes over from the best point found; it stalls sometimes short of the
 * minimum, so its simplex is rebuilt around the best point and the search
 * restarted until a restart no longer improves the objective (the usual
 * remedy, Press et al., Numerical Recipes 10.5).
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "clv.h"

#define CLV_NM_MAX_ITER 2000	/* per restart */
#define CLV_NM_MAX_RESTARTS 10
#define CLV_NM_FTOL 1e-13		/* relative spread of the simplex values */
#define CLV_NM_XTOL 1e-10		/* spread of the simplex vertices (log scale) */
#define CLV_BFGS_MAX_ITER 500
#define CLV_BFGS_GTOL 1e-9		/* gradient of the mean log-likelihood, log scale */

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
static ClvOptimResult
clv_nelder_mead_restarts(ClvObjective f, void *arg, double *x, int n)
{
	ClvOptimResult res = {0};
	double		best;
	double		step = 0.5;
	int			restart;
	bool		done = false;

	if (n < 1 || n > CLV_MAX_PARAMS)
		elog(ERROR, "cannot minimise over %d parameters", n);
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

/* The digamma function psi(x) = d/dx ln Gamma(x), for x > 0. */
double
clv_digamma(double x)
{
	double		result = 0;
	double		inv2;

	/* outside the domain: NaN, which the minimiser takes as +inf; never a loop that x += 1 cannot end */
	if (!(x > 0))
		return NAN;
	if (isinf(x))
		return x;
	/* psi(x) = psi(x + 1) - 1/x moves x up to where the series is accurate */
	while (x < 6)
	{
		result -= 1 / x;
		x += 1;
	}
	inv2 = 1 / (x * x);
	/* asymptotic series with the Bernoulli numbers B2..B10: error < 1e-15 */
	return result + log(x) - 0.5 / x
		- inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132))));
}

/* f with non-finite values as +inf, and the gradient. */
static double
clv_eval_grad(ClvObjectiveGrad f, void *arg, const double *x, double *g, int n)
{
	double		v = f(x, g, arg);
	int			k;

	if (isnan(v))
		return INFINITY;
	for (k = 0; k < n; k++)
		if (!isfinite(g[k]))
			return INFINITY;
	return v;
}

/*
 * BFGS on the inverse Hessian with a backtracking (Armijo) line search; the
 * update is skipped when the curvature condition fails, so the matrix stays
 * positive definite.  Leaves the best point in x.  h is the inverse Hessian:
 * with warm, the estimate to start from (a fit of a sample, ClvWarmStart),
 * else the identity, scaled after the first step; it is left updated.
 */
static ClvOptimResult
clv_bfgs_with(ClvObjectiveGrad f, void *arg, double *x, int n, double h[][CLV_MAX_PARAMS], bool warm)
{
	ClvOptimResult res = {0};
	double		g[CLV_MAX_PARAMS],
				gn[CLV_MAX_PARAMS],
				d[CLV_MAX_PARAMS],
				xn[CLV_MAX_PARAMS],
				s[CLV_MAX_PARAMS],
				y[CLV_MAX_PARAMS],
				hy[CLV_MAX_PARAMS];
	double		fx,
				fn = 0;
	int			i,
				j,
				it;
	bool		scaled = warm;

	if (!warm)
		for (i = 0; i < n; i++)
			for (j = 0; j < n; j++)
				h[i][j] = i == j ? 1 : 0;
	fx = clv_eval_grad(f, arg, x, g, n);
	if (!isfinite(fx))
	{
		res.f = fx;
		return res;
	}
	for (it = 0; it < CLV_BFGS_MAX_ITER; it++)
	{
		double		gmax = 0,
					slope = 0,
					step = 1,
					ys = 0,
					yy = 0,
					yhy = 0;
		int			tries;

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < n; i++)
			gmax = Max(gmax, fabs(g[i]));
		if (gmax <= CLV_BFGS_GTOL)
		{
			res.converged = true;
			break;
		}
		for (i = 0; i < n; i++)
		{
			d[i] = 0;
			for (j = 0; j < n; j++)
				d[i] -= h[i][j] * g[j];
			slope += d[i] * g[i];
		}
		if (!(slope < 0))
		{
			/* not a descent direction: restart from steepest descent */
			for (i = 0; i < n; i++)
			{
				for (j = 0; j < n; j++)
					h[i][j] = i == j ? 1 : 0;
				d[i] = -g[i];
			}
			slope = 0;
			for (i = 0; i < n; i++)
				slope -= g[i] * g[i];
		}
		/* no step longer than 2 in log scale: a factor e^2 per iteration */
		for (i = 0; i < n; i++)
			step = Min(step, 2 / Max(fabs(d[i]), 1e-300));
		for (tries = 0; tries < 60; tries++)
		{
			double		gnmax = 0;

			for (i = 0; i < n; i++)
				xn[i] = x[i] + step * d[i];
			fn = clv_eval_grad(f, arg, xn, gn, n);
			if (fn <= fx + 1e-4 * step * slope)
				break;

			/*
			 * Near the minimum the decrease falls below the rounding error
			 * of f: then a step that does not raise f beyond it and shrinks
			 * the gradient is progress too.
			 */
			for (i = 0; i < n; i++)
				gnmax = Max(gnmax, fabs(gn[i]));
			if (fn <= fx + 1e-13 * fabs(fx) && gnmax < gmax)
				break;
			step /= 2;
		}
		if (tries == 60)
		{
			/* no progress: converged only if the gradient is nearly zero */
			res.converged = gmax <= CLV_BFGS_GTOL * 1e3;
			break;
		}
		for (i = 0; i < n; i++)
		{
			s[i] = xn[i] - x[i];
			y[i] = gn[i] - g[i];
			ys += y[i] * s[i];
			yy += y[i] * y[i];
		}
		memcpy(x, xn, n * sizeof(double));
		memcpy(g, gn, n * sizeof(double));
		fx = fn;
		if (!(ys > 1e-14 * yy))
			continue;			/* no curvature information: keep H */
		if (!scaled)
		{
			/* the usual first scaling of the identity (Nocedal and Wright 6.20) */
			for (i = 0; i < n; i++)
				h[i][i] = ys / yy;
			scaled = true;
		}
		for (i = 0; i < n; i++)
		{
			hy[i] = 0;
			for (j = 0; j < n; j++)
				hy[i] += h[i][j] * y[j];
			yhy += y[i] * hy[i];
		}
		/* H += (1 + y'Hy / y's) ss'/y's - (Hy s' + s y'H) / y's */
		for (i = 0; i < n; i++)
			for (j = 0; j < n; j++)
				h[i][j] += (1 + yhy / ys) * s[i] * s[j] / ys - (hy[i] * s[j] + s[i] * hy[j]) / ys;
	}
	res.iterations = it;
	res.f = fx;
	return res;
}

static ClvOptimResult
clv_bfgs(ClvObjectiveGrad f, void *arg, double *x, int n)
{
	double		h[CLV_MAX_PARAMS][CLV_MAX_PARAMS];

	return clv_bfgs_with(f, arg, x, n, h, false);
}

/*
 * A start for the minimisation of fg over many rows: BFGS over a sample of
 * them (sample_arg, an objective of the same scale), from x.  Converged,
 * x is its minimum and the warm start holds its inverse Hessian; else x is
 * left as it was and the start is cold (clv_minimise_warm() then does what
 * clv_minimise() does).
 */
void
clv_warm_start(ClvObjectiveGrad fg, void *sample_arg, double *x, int n, ClvWarmStart *warm)
{
	double		y[CLV_MAX_PARAMS];
	ClvOptimResult res;

	if (n < 1 || n > CLV_MAX_PARAMS)
		elog(ERROR, "cannot minimise over %d parameters", n);
	memcpy(y, x, n * sizeof(double));
	res = clv_bfgs_with(fg, sample_arg, y, n, warm->h, false);
	warm->warm = res.converged;
	warm->iterations = res.iterations;
	if (warm->warm)
		memcpy(x, y, n * sizeof(double));
}

/*
 * Every stride-th of n values, in order: the sample a warm start is fitted
 * on ((n + stride - 1) / stride values, palloc'd).
 */
double *
clv_sample_doubles(const double *values, int64 n, int64 stride)
{
	double	   *out = palloc(((n + stride - 1) / stride) * sizeof(double));
	int64		i,
				k = 0;

	for (i = 0; i < n; i += stride)
		out[k++] = values[i];
	return out;
}

/* The same for int32 values (indexes into the distinct times). */
int32 *
clv_sample_int32s(const int32 *values, int64 n, int64 stride)
{
	int32	   *out = palloc(((n + stride - 1) / stride) * sizeof(int32));
	int64		i,
				k = 0;

	for (i = 0; i < n; i += stride)
		out[k++] = values[i];
	return out;
}

/*
 * clv_minimise() from a warm start: BFGS from x with the start's inverse
 * Hessian; when that does not converge, clv_minimise() from cold_x, the
 * point a cold start begins at (so a fit that only a cold start makes ends
 * where it always did).  Cold, clv_minimise() from cold_x.  The iterations
 * are those over all the rows.
 */
ClvOptimResult
clv_minimise_warm(ClvObjectiveGrad fg, ClvObjective f, void *arg, double *x, const double *cold_x,
				  int n, ClvWarmStart *warm)
{
	ClvOptimResult res;

	if (n < 1 || n > CLV_MAX_PARAMS)
		elog(ERROR, "cannot minimise over %d parameters", n);
	if (warm->warm)
	{
		res = clv_bfgs_with(fg, arg, x, n, warm->h, true);
		if (res.converged)
			return res;
	}
	memcpy(x, cold_x, n * sizeof(double));
	return clv_minimise(fg, f, arg, x, n);
}

/* BFGS alone, for a caller that checks its end point itself (Pareto/NBD). */
ClvOptimResult
clv_minimise_bfgs(ClvObjectiveGrad fg, void *arg, double *x, int n)
{
	if (n < 1 || n > CLV_MAX_PARAMS)
		elog(ERROR, "cannot minimise over %d parameters", n);
	return clv_bfgs(fg, arg, x, n);
}

/*
 * Minimise f from x (updated in place): BFGS with f's gradient, then
 * Nelder-Mead from the best point when BFGS did not converge.
 */
ClvOptimResult
clv_minimise(ClvObjectiveGrad fg, ClvObjective f, void *arg, double *x, int n)
{
	ClvOptimResult res;
	ClvOptimResult nm;
	double		start[CLV_MAX_PARAMS];

	if (n < 1 || n > CLV_MAX_PARAMS)
		elog(ERROR, "cannot minimise over %d parameters", n);
	memcpy(start, x, n * sizeof(double));
	res = clv_bfgs(fg, arg, x, n);
	if (res.converged)
		return res;
	if (!isfinite(res.f))
		memcpy(x, start, n * sizeof(double));
	nm = clv_nelder_mead_restarts(f, arg, x, n);
	nm.iterations += res.iterations;
	return nm;
}

/*
 * Whether the objective curves up in every direction at its minimum x (over
 * log-parameters): the Hessian, by central differences of the gradient, is
 * positive definite and no direction is nearly flat next to the others.  A
 * flat direction is a ridge of near-equal likelihoods (say a -> infinity with
 * b -> 0 when almost every customer bought once): the optimiser stops
 * somewhere on it, and the parameters it reports mean nothing.
 */
#define CLV_HESS_STEP 1e-4
#define CLV_FLAT_RATIO 1e-9

bool
clv_curvature_ok(ClvObjectiveGrad fg, void *arg, const double *x, int n)
{
	double		h[CLV_MAX_PARAMS][CLV_MAX_PARAMS];
	double		xp[CLV_MAX_PARAMS],
				gp[CLV_MAX_PARAMS],
				gm[CLV_MAX_PARAMS];
	int			i,
				j;

	for (i = 0; i < n; i++)
	{
		memcpy(xp, x, n * sizeof(double));
		xp[i] = x[i] + CLV_HESS_STEP;
		if (!isfinite(fg(xp, gp, arg)))
			return false;
		xp[i] = x[i] - CLV_HESS_STEP;
		if (!isfinite(fg(xp, gm, arg)))
			return false;
		for (j = 0; j < n; j++)
			h[i][j] = (gp[j] - gm[j]) / (2 * CLV_HESS_STEP);
	}
	return clv_hessian_ok(h, n);
}

/*
 * Whether a Hessian h (over log-parameters; overwritten) is positive
 * definite with no direction nearly flat next to the others: the test of
 * clv_curvature_ok(), for a Hessian computed otherwise (BG/NBD's analytic
 * one over many rows).
 */
bool
clv_hessian_ok(double h[][CLV_MAX_PARAMS], int n)
{
	double		maxdiag = 0;
	int			i,
				j,
				k;

	for (i = 0; i < n; i++)
	{
		for (j = 0; j < n; j++)
			if (!isfinite(h[i][j]))
				return false;
		for (j = 0; j < i; j++)
			h[i][j] = h[j][i] = (h[i][j] + h[j][i]) / 2;
		maxdiag = Max(maxdiag, h[i][i]);
	}
	if (!(maxdiag > 0))
		return false;
	/* Cholesky: every pivot positive and not negligible beside the largest curvature */
	for (k = 0; k < n; k++)
	{
		double		pivot = h[k][k];

		for (j = 0; j < k; j++)
			pivot -= h[k][j] * h[k][j];
		if (!(pivot > CLV_FLAT_RATIO * maxdiag))
			return false;
		h[k][k] = sqrt(pivot);
		for (i = k + 1; i < n; i++)
		{
			double		v = h[i][k];

			for (j = 0; j < k; j++)
				v -= h[i][j] * h[k][j];
			h[i][k] = v / h[k][k];
		}
	}
	return true;
}

/*
 * The parameters p = e^lp of a fit over log-parameters; false when a log is
 * beyond +-bound (or NaN): the objective is then infinite, the Hessian not
 * taken.
 */
bool
clv_params_from_logs(const double *lp, int n, double bound, double *p)
{
	int			k;

	for (k = 0; k < n; k++)
	{
		if (!(fabs(lp[k]) <= bound))
			return false;
		p[k] = exp(lp[k]);
	}
	return true;
}

/*
 * The Hessian over log-parameters h of an objective -ll / total_w +
 * penalizer * sum(p^2), from the log-likelihood's Hessian hp (upper
 * triangle) and gradient g in the parameters p = e^lp:
 * h = diag(p) (-hp / total_w + 2 penalizer I) diag(p) + diag(p G), G the
 * objective's gradient in p.  False when a value is not finite.
 */
bool
clv_hessian_over_log_params(int n, const double *p, double hp[][CLV_MAX_PARAMS], const double *g,
							double total_w, double penalizer, double h[][CLV_MAX_PARAMS])
{
	int			j,
				k;

	for (j = 0; j < n; j++)
		for (k = j; k < n; k++)
		{
			double		v = p[j] * p[k] * (-hp[j][k] / total_w + (j == k ? 2 * penalizer : 0));

			if (j == k)
				v += p[j] * (-g[j] / total_w + 2 * penalizer * p[j]);
			h[j][k] = h[k][j] = v;
			if (!isfinite(v))
				return false;
		}
	return true;
}

/* The trigamma function psi'(x), for x > 0 (the analytic Hessians). */
double
clv_trigamma(double x)
{
	double		result = 0;
	double		inv,
				inv2;

	if (!(x > 0))
		return NAN;
	if (isinf(x))
		return 0;
	/* psi'(x) = psi'(x + 1) + 1/x^2 moves x up to where the series is accurate */
	while (x < 6)
	{
		result += 1 / (x * x);
		x += 1;
	}
	inv = 1 / x;
	inv2 = inv * inv;
	/* asymptotic series with the Bernoulli numbers B2..B10 */
	return result + inv + inv2 / 2 +
		inv * inv2 * (1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 * (1.0 / 30 - inv2 * 5.0 / 66))));
}
