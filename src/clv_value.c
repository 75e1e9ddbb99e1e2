/*
 * clv_value.c
 *	  Customer lifetime value over a horizon of months, combining BG/NBD
 *	  (how many purchases) and Gamma-Gamma (how much each is worth), as
 *	  lifetimes' customer_lifetime_value does:
 *
 *	  CLV = sum over months k = 1..H of
 *			  value * (E[X(k f)] - E[X((k-1) f)]) / (1 + d)^k
 *
 *	  where E[X(t)] is the expected number of purchases in the next t time
 *	  units given the customer's history, f the number of model time units in
 *	  a month (lifetimes' constants: 30 days, 4.345 weeks) and d the monthly
 *	  discount rate.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/builtins.h"

#include "clv.h"

#define CLV_MAX_MONTHS 1200

PG_FUNCTION_INFO_V1(segment_clv);

/* Model time units in a month, for a unit name. */
static double
clv_units_per_month(text *unit)
{
	const char *p = VARDATA_ANY(unit);
	int			len = VARSIZE_ANY_EXHDR(unit);

	/* compared in place: this runs for every customer */
	if (len == 3 && memcmp(p, "day", 3) == 0)
		return 30.0;
	if (len == 4 && memcmp(p, "week", 4) == 0)
		return 4.345;
	if (len == 5 && memcmp(p, "month", 5) == 0)
		return 1.0;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized time unit \"%s\"", text_to_cstring(unit)),
			 errhint("The time unit of x, t_x and T is \"day\", \"week\" or \"month\".")));
	return 0;					/* keep the compiler quiet */
}

/*
 * clv(bgnbd, gamma_gamma, x, t_x, T, mean_value, months, monthly_discount_rate,
 * time_unit): discounted expected value of the customer's purchases over the
 * next months.
 */
Datum
segment_clv(PG_FUNCTION_ARGS)
{
	ClvBgnbd	bg;
	ClvGammaGamma gg;
	double		x = PG_GETARG_FLOAT8(2);
	double		t_x = PG_GETARG_FLOAT8(3);
	double		t_cal = PG_GETARG_FLOAT8(4);
	double		mean = PG_GETARG_FLOAT8(5);
	int32		months = PG_GETARG_INT32(6);
	double		rate = PG_GETARG_FLOAT8(7);
	double		f = clv_units_per_month(PG_GETARG_TEXT_PP(8));
	double		discount = 1;
	double		value,
				den,
				clv = 0,
				prev = 0;
	const double *num;
	double	   *fresh = NULL;
	int32		k;

	clv_models_cached(fcinfo, 0, &bg, 1, &gg);
	clv_check_customer(x, t_x, t_cal);
	if (months < 0 || months > CLV_MAX_MONTHS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be between 0 and %d months", CLV_MAX_MONTHS),
				 errdetail("Got %d.", months)));
	clv_check_finite(rate, "monthly discount rate");
	if (rate <= -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monthly discount rate must be greater than -1"),
				 errdetail("Got %g.", rate),
				 errhint("The rate is a fraction per month: 0.01 discounts by 1%% a month.")));

	value = clv_gg_expected(&gg, x, mean);
	if (months == 0)
		PG_RETURN_FLOAT8(0.0);
	den = clv_bgnbd_denominator(&bg, x, t_x, t_cal);

	/*
	 * The numerators of the cumulative expectations at the ends of the
	 * months depend on the customer through (x, T) only, which many
	 * customers share: they are computed once per (x, T) in a query.
	 */
	num = clv_memo_get(fcinfo, x, t_cal, f, months);
	if (num == NULL)
	{
		fresh = palloc(sizeof(double) * months);

		/* a chunk of months at a time */
		for (k = 0; k < months; k += CLV_HYP_MAX_Z)
		{
			double		t[CLV_HYP_MAX_Z];
			int			nt = Min(CLV_HYP_MAX_Z, months - k);
			int			j;

			CHECK_FOR_INTERRUPTS();
			for (j = 0; j < nt; j++)
				t[j] = (k + j + 1) * f;
			clv_bgnbd_numerators(&bg, t, nt, x, t_cal, fresh + k);
		}
		clv_memo_put(fcinfo, x, t_cal, f, months, fresh);
		num = fresh;
	}
	for (k = 0; k < months; k++)
	{
		double		cum = num[k] / den;

		discount /= 1 + rate;
		clv += value * (cum - prev) * discount;
		prev = cum;
	}
	if (fresh != NULL)
		pfree(fresh);
	clv_check_result(clv, "customer lifetime value", false);
	PG_RETURN_FLOAT8(clv);
}
