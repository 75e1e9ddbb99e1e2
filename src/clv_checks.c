/*
 * clv_checks.c
 *	  What every lifetime-value function validates: its arguments (finite
 *	  numbers, a possible customer history, a horizon), its results, and the
 *	  parameters of a model a caller hands it (a fit's, or one built by hand:
 *	  any role may craft one).
 *
 * Kept apart from the models so that each model's file uses them without
 * depending on another model's.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "executor/executor.h"
#include "fmgr.h"

#include "clv.h"

/* Raise an error unless value is a finite number. */
void
clv_check_finite(double value, const char *what)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", what),
				 errdetail("Got %s.", isnan(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity"))));
}

/*
 * Raise an error rather than return NaN (or an infinity, unless the value
 * may be one, as a log-likelihood of -Infinity): a prediction from extreme
 * but finite parameters can lose every digit, or overflow.
 */
void
clv_check_result(double value, const char *what, bool may_be_infinite)
{
	if (isnan(value) || (isinf(value) && !may_be_infinite))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s cannot be computed for these arguments", what),
				 errdetail("The result is %s: the model parameters or the arguments are too extreme.",
						   isnan(value) ? "not a number" : "infinite"),
				 errhint("Use the parameters of a fit, and arguments of a similar magnitude.")));
}

bool
clv_is_whole(double value)
{
	return value == floor(value);
}

/* Raise an error unless (x, t_x, T) describes a possible customer history. */
void
clv_check_customer(double x, double t_x, double t_cal)
{
	clv_check_finite(x, "number of repeat purchases x");
	clv_check_finite(t_x, "time of the last purchase t_x");
	clv_check_finite(t_cal, "customer age T");
	if (x < 0 || !clv_is_whole(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of repeat purchases x must be a non-negative whole number"),
				 errdetail("Got %g.", x)));
	if (t_x < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time of the last purchase t_x must not be negative"),
				 errdetail("Got %g.", t_x)));
	if (t_cal < t_x)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customer age T must not be less than t_x"),
				 errdetail("Got T = %g and t_x = %g.", t_cal, t_x),
				 errhint("Both are measured from the first purchase, T up to the end of the observation period.")));
	if (x == 0 && t_x != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("t_x must be 0 when there is no repeat purchase"),
				 errdetail("Got x = 0 and t_x = %g.", t_x)));
}

/*
 * Raise an error for a repeat purchase at the time of the first one: the
 * likelihood of BG/NBD, MBG/NBD and Pareto/NBD then grows without bound as
 * alpha goes to 0.
 */
void
clv_check_repeat_at_zero(double x, double t_x, const char *model)
{
	if (x > 0 && t_x == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit %s on a repeat purchase at the time of the first purchase", model),
				 errdetail("Got x = %g and t_x = 0: the likelihood grows without bound as alpha goes to 0.", x),
				 errhint("Count repeat purchases on distinct purchase periods (clv_summary does), so that t_x > 0 when x > 0.")));
}

void
clv_check_horizon(double t)
{
	clv_check_finite(t, "horizon t");
	if (t < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon t must not be negative"),
				 errdetail("Got %g.", t)));
}

/* Read one positive, finite float8 attribute of a model composite. */
double
clv_model_param(HeapTupleHeader t, int attno, const char *name, const char *model)
{
	bool		isnull;
	double		v = DatumGetFloat8(GetAttributeByNum(t, attno, &isnull));

	if (isnull || !(v > 0) || isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s parameter %s must be a positive finite number", model, name),
				 isnull ? errdetail("Got NULL.") : errdetail("Got %g.", v),
				 errhint("Use the result of the %s fit aggregate, or build the model with ROW(...).",
						 model)));
	return v;
}

/* The parameters of a segment.bgnbd_model value, validated. */
void
clv_bgnbd_from_datum(Datum model, ClvBgnbd *m)
{
	HeapTupleHeader t = DatumGetHeapTupleHeader(model);

	m->r = clv_model_param(t, 1, "r", "BG/NBD");
	m->alpha = clv_model_param(t, 2, "alpha", "BG/NBD");
	m->a = clv_model_param(t, 3, "a", "BG/NBD");
	m->b = clv_model_param(t, 4, "b", "BG/NBD");
}

/* The parameters of a segment.gamma_gamma_model value, validated (q > 1 for a finite mean). */
void
clv_gg_from_datum(Datum model, ClvGammaGamma *m)
{
	HeapTupleHeader t = DatumGetHeapTupleHeader(model);
	const char *names[3] = {"p", "q", "v"};
	double		v[3];
	int			i;

	for (i = 0; i < 3; i++)
	{
		bool		isnull;

		v[i] = DatumGetFloat8(GetAttributeByNum(t, i + 1, &isnull));
		if (isnull || !(v[i] > 0) || isinf(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("Gamma-Gamma parameter %s must be a positive finite number", names[i]),
					 isnull ? errdetail("Got NULL.") : errdetail("Got %g.", v[i])));
	}
	if (!(v[1] > 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Gamma-Gamma parameter q must be greater than 1 for a finite expected value"),
				 errdetail("Got q = %g.", v[1]),
				 errhint("The population mean spend p v / (q - 1) does not exist when q <= 1; fit on more repeat customers.")));
	m->p = v[0];
	m->q = v[1];
	m->v = v[2];
}
