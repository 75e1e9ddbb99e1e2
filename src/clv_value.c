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

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "clv.h"
#include "segment.h"

#define CLV_MAX_MONTHS 1200

PG_FUNCTION_INFO_V1(segment_clv);
PG_FUNCTION_INFO_V1(segment_bgnbd_predictions);

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

/* Raise an error unless months and rate are a horizon and a discount rate CLV takes. */
void
clv_check_terms(int32 months, double rate)
{
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
}

/*
 * The discounted sum of CLV (months >= 1) of a customer whose purchases are
 * worth value each, with den from clv_bgnbd_denominator(); the numerators
 * are memoised in memo slot of the call site.
 */
static double
clv_sum(FunctionCallInfo fcinfo, int slot, const ClvBgnbd *bg, double value, double den,
		double x, double t_cal, double f, int32 months, double rate)
{
	const double *discount = clv_discounts(fcinfo, rate, months);
	double		clv = 0,
				prev = 0;
	const double *num;
	double	   *fresh = NULL;
	int32		k;

	/*
	 * The numerators of the cumulative expectations at the ends of the
	 * months depend on the customer through (x, T) only, which many
	 * customers share: they are computed once per (x, T) in a query.
	 */
	num = clv_memo_get_slot(fcinfo, slot, x, t_cal, f, months);
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
			clv_bgnbd_numerators(bg, t, nt, x, t_cal, fresh + k);
		}
		clv_memo_put_slot(fcinfo, slot, x, t_cal, f, months, fresh);
		num = fresh;
	}
	for (k = 0; k < months; k++)
	{
		double		cum = num[k] / den;

		clv += value * (cum - prev) * discount[k];
		prev = cum;
	}
	if (fresh != NULL)
		pfree(fresh);
	clv_check_result(clv, "customer lifetime value", false);
	return clv;
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
	double		value;

	clv_models_cached(fcinfo, 0, &bg, 1, &gg);
	clv_check_customer(x, t_x, t_cal);
	clv_check_terms(months, rate);
	value = clv_gg_expected(&gg, x, mean);
	if (months == 0)
		PG_RETURN_FLOAT8(0.0);
	PG_RETURN_FLOAT8(clv_sum(fcinfo, 0, &bg, value, clv_bgnbd_denominator(&bg, x, t_x, t_cal),
							 x, t_cal, f, months, rate));
}

/*
 * A refresh's predictions of one customer (x, t_x, T, and mean_value unless
 * mean_null), equal to those of bgnbd_p_alive(model, x, t_x, T),
 * bgnbd_expected_purchases(model, t, x, t_x, T) and, when the call site has
 * a Gamma-Gamma model and x = 0 or mean_value > 0 (in SQL's order, NaN above
 * every number), clv(model, gamma_gamma, x, t_x, T, mean_value, months,
 * monthly_discount_rate, time_unit).  Values out of their range (p_alive
 * outside [0, 1], expected purchases negative or infinite, CLV infinite) are
 * NULL and make bad true.  The odds of death are computed once for all three.
 *
 * fcinfo is the call site: its arguments 0 and 1 are the models (1 NULL: no
 * CLV), read once and kept with the memos in its flinfo; the terms (the
 * models, horizons, rate) are checked by clv_prediction_terms(), once for
 * refresh_figures() (src/refresh_clv.c), per call for the SQL function below.
 */
void
clv_prediction_terms(FunctionCallInfo fcinfo, double t, int32 months, double rate, text *time_unit,
					 ClvPredictionTerms *terms)
{
	terms->has_clv = !PG_ARGISNULL(1);
	clv_models_cached(fcinfo, 0, &terms->bg, terms->has_clv ? 1 : -1, &terms->gg);
	clv_check_horizon(t);
	clv_check_terms(months, rate);
	terms->f = clv_units_per_month(time_unit);
	terms->t = t;
	terms->months = months;
	terms->rate = rate;
}

/*
 * The predictions of one customer with terms from clv_prediction_terms() of
 * the same call site (whose models it keeps, with their memos).
 */
void
clv_bgnbd_predict(FunctionCallInfo fcinfo, const ClvPredictionTerms *terms, double x, double t_x,
				  double t_cal, bool mean_null, double mean, ClvPredictions *out)
{
	const ClvBgnbd *bg = &terms->bg;
	double		t = terms->t;
	double		den,
				num;
	double		clv = 0;
	bool		has_clv = terms->has_clv;
	const double *memo;

	clv_check_customer(x, t_x, t_cal);

	/* as bgnbd_p_alive(); den is also the expectations' denominator */
	den = clv_bgnbd_denominator(bg, x, t_x, t_cal);
	out->p_alive = x == 0 ? 1.0 : 1.0 / den;
	clv_check_result(out->p_alive, "probability of being alive", false);

	/* as bgnbd_expected_purchases(), with the numerators in memo slot 0 */
	if (t == 0)
		out->expected = 0.0;
	else
	{
		memo = clv_memo_get_slot(fcinfo, 0, x, t_cal, t, 1);
		if (memo != NULL)
			num = memo[0];
		else
		{
			num = clv_bgnbd_numerator(bg, t, x, t_cal);
			clv_memo_put_slot(fcinfo, 0, x, t_cal, t, 1, &num);
		}
		out->expected = x > 0 ? num / den : num;
		clv_check_result(out->expected, "expected number of purchases", false);
	}

	/* as clv(), for the customers the refresh values */
	if (has_clv && !mean_null)
	{
		/* SQL's mean_value > 0, for which NaN is above every number */
		has_clv = x == 0 || mean > 0 || isnan(mean);
		if (has_clv)
		{
			double		value = clv_gg_expected(&terms->gg, x, mean);

			if (terms->months > 0)
				clv = clv_sum(fcinfo, 1, bg, value, den, x, t_cal, terms->f, terms->months,
							  terms->rate);
		}
	}
	else
		has_clv = false;
	out->clv = clv;

	out->p_alive_null = !(out->p_alive >= 0 && out->p_alive <= 1);
	out->expected_null = !(out->expected >= 0 && !isinf(out->expected));
	out->clv_null = !has_clv || !isfinite(clv);
	out->bad = out->p_alive_null || out->expected_null || (has_clv && out->clv_null);
}

/* Both: the predictions of one customer of a call site, its terms checked. */
void
clv_bgnbd_predictions(FunctionCallInfo fcinfo, double t, int32 months, double rate,
					  text *time_unit, double x, double t_x, double t_cal,
					  bool mean_null, double mean, ClvPredictions *out)
{
	ClvPredictionTerms terms;

	clv_prediction_terms(fcinfo, t, months, rate, time_unit, &terms);
	clv_bgnbd_predict(fcinfo, &terms, x, t_x, t_cal, mean_null, mean, out);
}

/* The three predictions as values[0..2] (p_alive, expected purchases, CLV) and their nulls. */
void
clv_predictions_datums(const ClvPredictions *p, Datum *values, bool *nulls)
{
	values[0] = Float8GetDatum(p->p_alive);
	nulls[0] = p->p_alive_null;
	values[1] = Float8GetDatum(p->expected);
	nulls[1] = p->expected_null;
	values[2] = Float8GetDatum(p->clv);
	nulls[2] = p->clv_null;
}

/*
 * bgnbd_predictions(model, gamma_gamma, t, months, monthly_discount_rate,
 * time_unit, x, t_x, T, mean_value): clv_bgnbd_predictions() of one
 * customer in one call, each NULL when a customer argument it takes is NULL
 * (the public functions are strict).
 */
Datum
segment_bgnbd_predictions(PG_FUNCTION_ARGS)
{
	ClvPredictions p;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	TupleDesc  *tupdesc;

	segment_check_arg_not_null(fcinfo, 0, "model");
	segment_check_arg_not_null(fcinfo, 2, "horizon t");
	segment_check_arg_not_null(fcinfo, 3, "horizon in months");
	segment_check_arg_not_null(fcinfo, 4, "monthly discount rate");
	segment_check_arg_not_null(fcinfo, 5, "time unit");

	/* the tuple descriptor of the result, built once per call site */
	tupdesc = (TupleDesc *) clv_cache_extra(fcinfo);
	if (*tupdesc == NULL)
	{
		TupleDesc	desc;
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		*tupdesc = BlessTupleDesc(CreateTupleDescCopy(desc));
		MemoryContextSwitchTo(old);
	}

	values[3] = BoolGetDatum(false);
	if (PG_ARGISNULL(6) || PG_ARGISNULL(7) || PG_ARGISNULL(8))
	{
		ClvBgnbd	bg;
		ClvGammaGamma gg;

		/* the models and terms are still checked */
		clv_models_cached(fcinfo, 0, &bg, PG_ARGISNULL(1) ? -1 : 1, &gg);
		clv_check_horizon(PG_GETARG_FLOAT8(2));
		clv_check_terms(PG_GETARG_INT32(3), PG_GETARG_FLOAT8(4));
		(void) clv_units_per_month(PG_GETARG_TEXT_PP(5));
		nulls[0] = nulls[1] = nulls[2] = true;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(*tupdesc, values, nulls)));
	}
	clv_bgnbd_predictions(fcinfo, PG_GETARG_FLOAT8(2), PG_GETARG_INT32(3), PG_GETARG_FLOAT8(4),
						  PG_GETARG_TEXT_PP(5), PG_GETARG_FLOAT8(6), PG_GETARG_FLOAT8(7),
						  PG_GETARG_FLOAT8(8), PG_ARGISNULL(9),
						  PG_ARGISNULL(9) ? 0 : PG_GETARG_FLOAT8(9), &p);
	clv_predictions_datums(&p, values, nulls);
	values[3] = BoolGetDatum(p.bad);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(*tupdesc, values, nulls)));
}
