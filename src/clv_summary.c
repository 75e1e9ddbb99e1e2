/*
 * clv_summary.c
 *	  The clv_summary(ordered_at, amount, as_of [, time_unit [, period
 *	  [, time_zone]]])
 *	  aggregate: one customer's orders in the form the BG/NBD and
 *	  Gamma-Gamma models take, as lifetimes' summary_data_from_transaction_data
 *	  and BTYD's dc.ElogToCbsCbt compute it.
 *
 * Orders in the same purchase period (a calendar day in the session's time
 * zone or the one given, or an ISO week starting on Monday) are one purchase.  With n
 * periods: x = n - 1 repeat purchases, t_x = last period - first period,
 * T = period of as_of - first period, in time units (days or weeks), and the
 * mean value is the mean total of the repeat periods (the first purchase
 * left out, as the Gamma-Gamma model wants; 0 when x = 0, as lifetimes).
 *
 * The state is the float8[] row list of clv.h with rows (day, amount) and
 * settings (as_of day, days per time unit, days per period), small at first
 * since there is one per customer.  The repeat periods' amounts are summed
 * exactly and rounded once (src/clv_exact_sum.c), so the order in which the
 * orders come does not change the mean value.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "pgtime.h"

#include "clv.h"
#include "rfm.h"
#include "segment.h"

#define SUMMARY_WIDTH 2
#define SUMMARY_INITIAL_ROWS 8
#define SUMMARY_RESULT_NATTS 4

PG_FUNCTION_INFO_V1(segment_clv_summary_trans);
PG_FUNCTION_INFO_V1(segment_clv_summary_combine);
PG_FUNCTION_INFO_V1(segment_clv_summary_final);

/* Days in a "day" or "week" (time unit or purchase period). */
double
clv_summary_days_in(const text *t, const char *what)
{
	const char *p = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	/* compared in place: this runs for every order */
	if (len == 3 && memcmp(p, "day", 3) == 0)
		return 1;
	if (len == 4 && memcmp(p, "week", 4) == 0)
		return 7;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized %s \"%s\"", what, text_to_cstring(t)),
			 errhint("Use \"day\" or \"week\".")));
	return 0;					/* keep the compiler quiet */
}

/* The same for an argument; 1 when absent. */
static double
summary_days_in(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_NARGS() <= argno)
		return 1;
	segment_check_arg_not_null(fcinfo, argno, what);
	return clv_summary_days_in(PG_GETARG_TEXT_PP(argno), what);
}

/*
 * Per query: the calendar day of as_of (the same for every row, checked),
 * and the zone offset periods that turn an order time into its calendar day
 * without a time zone conversion per row (shared with rfm, rfm_day.c).
 */
typedef struct SummaryCache
{
	bool		valid;
	TimestampTz as_of;
	DateADT		day;
	SegmentDayCache *days;
} SummaryCache;

static SummaryCache *
summary_cache(FunctionCallInfo fcinfo)
{
	SummaryCache *cache = (SummaryCache *) fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(SummaryCache));
		cache->days = segment_day_cache_create(fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache;
}

/* The time zone argument (sixth), or NULL for the session's. */
static text *
summary_zone(FunctionCallInfo fcinfo)
{
	if (PG_NARGS() <= 6)
		return NULL;
	if (PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("time zone of the clv_summary aggregate must not be null")));
	return PG_GETARG_TEXT_PP(6);
}

static DateADT
summary_as_of_day(FunctionCallInfo fcinfo, TimestampTz as_of, text *zone)
{
	SummaryCache *cache = summary_cache(fcinfo);

	if (!cache->valid || cache->as_of != as_of)
	{
		segment_check_finite(as_of, "as_of");
		cache->day = segment_day_cache_date(cache->days, as_of, zone);
		cache->as_of = as_of;
		cache->valid = true;
	}
	return cache->day;
}

/* The calendar day of an order in the time zone (NULL: the session's). */
static DateADT
summary_order_day(FunctionCallInfo fcinfo, TimestampTz ts, text *zone)
{
	segment_check_finite(ts, "order timestamp");
	return segment_day_cache_date(summary_cache(fcinfo)->days, ts, zone);
}

/*
 * An amount as a double, the same double as numeric_float8 gives (which
 * prints the number and reads it back with strtod, the costliest step of
 * this aggregate) without the text: an amount read as an integer count of
 * 10^-scale units (rfm_money.c) below 2^53 with a scale up to 22 is a
 * quotient of two exact doubles, so one IEEE division rounds the exact value
 * correctly, as strtod does.  Other numbers, NaN and the infinities go
 * through numeric_float8.  Shared with refresh_figures() (src/refresh_figures.c).
 */
double
clv_summary_amount(Datum d)
{
#ifdef HAVE_INT128
	SegmentAmount a;

	if (segment_amount_decode(d, &a))
		return clv_summary_decoded_amount(&a, d);
#endif
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
}

/* The same for an amount already decoded (segment_amount_decode() of d). */
double
clv_summary_decoded_amount(const SegmentAmount *a, Datum d)
{
#ifdef HAVE_INT128
	static const double powers[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
		1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	const int128 limit = (int128) 1 << 53;

	if (a->units <= limit && a->units >= -limit && a->scale >= 0 && a->scale <= 22)
		return (double) (int64) a->units / powers[a->scale];
#endif
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
}

/* clv_summary transition: remember one order; NULL timestamps or amounts are skipped. */
Datum
segment_clv_summary_trans(PG_FUNCTION_ARGS)
{
	ClvRows		rows;
	float8		settings[3];
	float8	   *row;
	DateADT		day;
	double		amount;
	text	   *zone;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null"),
				 errhint("as_of is the end of the observation period, e.g. now().")));
	zone = summary_zone(fcinfo);
	settings[0] = summary_as_of_day(fcinfo, PG_GETARG_TIMESTAMPTZ(3), zone);
	settings[1] = summary_days_in(fcinfo, 4, "time unit");
	settings[2] = summary_days_in(fcinfo, 5, "purchase period");
	if (PG_ARGISNULL(0))
		clv_rows_init(&rows, CLV_KIND_SUMMARY, SUMMARY_WIDTH, settings);
	else
	{
		clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), CLV_KIND_SUMMARY, SUMMARY_WIDTH, &rows);
		clv_rows_check_settings(&rows, settings, 3, "as_of, time unit and purchase period");
	}
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (rows.state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(rows.state);
	}

	day = summary_order_day(fcinfo, PG_GETARG_TIMESTAMPTZ(1), zone);
	amount = clv_summary_amount(PG_GETARG_DATUM(2));
	clv_check_finite(amount, "order amount");
	if (amount < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order amount must not be negative"),
				 errdetail("Got %g.", amount),
				 errhint("Leave refunds out, e.g. with FILTER (WHERE amount >= 0).")));
	if (day > settings[0])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order after the end of the observation period"),
				 errdetail("An order on %s is after as_of (%s).",
						   DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day))),
						   DatumGetCString(DirectFunctionCall1(date_out,
															   DateADTGetDatum((DateADT) settings[0])))),
				 errhint("Filter the orders, e.g. WHERE ordered_at <= as_of.")));

	row = clv_rows_append(&rows, 1, SUMMARY_INITIAL_ROWS);
	row[0] = day;
	row[1] = amount;
	PG_RETURN_ARRAYTYPE_P(rows.state);
}

/* clv_summary combine: append the right state's orders to the left one. */
Datum
segment_clv_summary_combine(PG_FUNCTION_ARGS)
{
	ClvRows		left,
				right;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	clv_rows_read(PG_GETARG_ARRAYTYPE_P(1), CLV_KIND_SUMMARY, SUMMARY_WIDTH, &right);
	if (PG_ARGISNULL(0))
		clv_rows_init(&left, CLV_KIND_SUMMARY, SUMMARY_WIDTH, right.settings);
	else
	{
		clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), CLV_KIND_SUMMARY, SUMMARY_WIDTH, &left);
		clv_rows_check_settings(&left, right.settings, 3, "as_of, time unit and purchase period");
	}
	memcpy(clv_rows_append(&left, right.count, SUMMARY_INITIAL_ROWS), clv_rows_data(&right),
		   right.count * SUMMARY_WIDTH * sizeof(float8));
	PG_RETURN_ARRAYTYPE_P(left.state);
}

/* A row of the state: an order's day and amount. */
typedef struct SummaryRow
{
	float8		day;
	float8		amount;
} SummaryRow;

StaticAssertDecl(sizeof(SummaryRow) == SUMMARY_WIDTH * sizeof(float8),
				 "a summary row is its two floats");

/*
 * By day, then amount: the purchase periods follow in order (the amounts'
 * sum is exact, so their order within a period does not matter).
 */
static inline int
summary_row_cmp(const SummaryRow *a, const SummaryRow *b)
{
	if (a->day != b->day)
		return (a->day > b->day) - (a->day < b->day);
	return (a->amount > b->amount) - (a->amount < b->amount);
}

/* A sort specialised for rows (one per order: it runs for every customer). */
#define ST_SORT summary_sort
#define ST_ELEMENT_TYPE SummaryRow
#define ST_COMPARE(a, b) summary_row_cmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/* First day of the purchase period holding day (weeks start on Monday). */
static double
summary_period_start(double day, double period)
{
	/* day 0 (2000-01-01) is a Saturday, five days after a Monday */
	if (period == 7)
		return day - (day + 5 - 7 * floor((day + 5) / 7));
	return day;
}

/* The number of the purchase period holding day (days or Monday weeks). */
double
clv_summary_period(double day, double period)
{
	return period == 7 ? floor((day + 5) / 7) : day;
}

/* The first day of the purchase period numbered index (clv_summary_period). */
double
clv_summary_period_start(double index, double period)
{
	return period == 7 ? index * 7 - 5 : index;
}

/*
 * The summary of a customer's periods purchase periods (> 0), the first and
 * last starting on days first and last, repeat the amounts of the periods
 * after the first.  The mean value is their exact sum rounded once, over
 * the repeat periods: the same floats however the purchases were read.
 */
void
clv_summary_of(double first, double last, int64 periods, const ClvExactSum *repeat,
			   double as_of_day, double unit, double period, ClvSummary *out)
{
	out->x = (int32) (periods - 1);
	out->t_x = (last - first) / unit;
	out->t_cal = (summary_period_start(as_of_day, period) - first) / unit;
	out->mean_value = periods > 1 ? clv_exact_value(repeat) / (periods - 1) : 0.0;
}

/*
 * One customer's summary from the rows (day, amount) of the orders, sorted
 * here in place (for the purchase periods): x, t_x and t_cal in time units
 * of unit days, purchase periods of period days, as_of_day the calendar day
 * of as_of.  count > 0.  refresh_figures() (src/refresh_figures.c) gives
 * the same floats from its own sums (clv_summary_of()).
 */
void
clv_summary_compute(float8 *rows, int64 count, double as_of_day, double unit, double period,
					ClvSummary *out)
{
	double		first,
				last;
	int64		i,
				periods = 0;
	ClvExactSum repeat;

	summary_sort((SummaryRow *) rows, count);
	clv_exact_init(&repeat);
	first = last = summary_period_start(rows[0], period);
	for (i = 0; i < count; i++)
	{
		double		start = summary_period_start(rows[i * SUMMARY_WIDTH], period);

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (i == 0 || start != last)
		{
			periods++;
			last = start;
		}
		if (start != first)
			clv_exact_add(&repeat, rows[i * SUMMARY_WIDTH + 1], CurrentMemoryContext);
	}
	clv_summary_of(first, last, periods, &repeat, as_of_day, unit, period, out);
	clv_exact_free(&repeat);
}

/* clv_summary final: (x, t_x, t_cal, mean_value); NULL without orders. */
Datum
segment_clv_summary_final(PG_FUNCTION_ARGS)
{
	ClvRows		rows;
	TupleDesc	tupdesc;
	Datum		values[SUMMARY_RESULT_NATTS];
	bool		nulls[SUMMARY_RESULT_NATTS] = {0};
	float8	   *sorted;
	ClvSummary	summary;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), CLV_KIND_SUMMARY, SUMMARY_WIDTH, &rows);
	if (rows.count == 0)
		PG_RETURN_NULL();
	clv_rows_check(&rows);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "segment_clv_summary_final must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != SUMMARY_RESULT_NATTS)
		elog(ERROR, "segment.clv_summary has %d attributes, expected %d",
			 tupdesc->natts, SUMMARY_RESULT_NATTS);

	/* sort a copy: the final function may run more than once on one state */
	sorted = palloc(rows.count * SUMMARY_WIDTH * sizeof(float8));
	memcpy(sorted, clv_rows_data(&rows), rows.count * SUMMARY_WIDTH * sizeof(float8));
	clv_summary_compute(sorted, rows.count, rows.settings[0], rows.settings[1], rows.settings[2],
						&summary);
	pfree(sorted);

	values[0] = Int32GetDatum(summary.x);
	values[1] = Float8GetDatum(summary.t_x);
	values[2] = Float8GetDatum(summary.t_cal);
	values[3] = Float8GetDatum(summary.mean_value);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
