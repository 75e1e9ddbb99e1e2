/*
 * clv_summary.c
 *	  The clv_summary(ordered_at, amount, as_of [, time_unit [, period]])
 *	  aggregate: one customer's orders in the form the BG/NBD and
 *	  Gamma-Gamma models take, as lifetimes' summary_data_from_transaction_data
 *	  and BTYD's dc.ElogToCbsCbt compute it.
 *
 * Orders in the same purchase period (a calendar day in the session's time
 * zone, or an ISO week starting on Monday) are one purchase.  With n
 * periods: x = n - 1 repeat purchases, t_x = last period - first period,
 * T = period of as_of - first period, in time units (days or weeks), and the
 * mean value is the mean total of the repeat periods (the first purchase
 * left out, as the Gamma-Gamma model wants; 0 when x = 0, as lifetimes).
 *
 * The state is the float8[] row list of clv.h with rows (day, amount) and
 * settings (as_of day, days per time unit, days per period), small at first
 * since there is one per customer.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "pgtime.h"

#include "clv.h"

#define SUMMARY_WIDTH 2
#define SUMMARY_INITIAL_ROWS 8
#define SUMMARY_RESULT_NATTS 4

PG_FUNCTION_INFO_V1(segment_clv_summary_trans);
PG_FUNCTION_INFO_V1(segment_clv_summary_combine);
PG_FUNCTION_INFO_V1(segment_clv_summary_final);

/* Days in a "day" or "week" (time unit or purchase period); 1 when absent. */
static double
summary_days_in(FunctionCallInfo fcinfo, int argno, const char *what)
{
	text	   *t;
	const char *p;
	int			len;

	if (PG_NARGS() <= argno)
		return 1;
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	t = PG_GETARG_TEXT_PP(argno);
	p = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
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

/* The calendar day of a finite timestamp in the session's time zone. */
static DateADT
summary_day(TimestampTz ts, const char *what)
{
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s must be finite", what),
				 errdetail("Got %s.", TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity")));
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date, TimestampTzGetDatum(ts)));
}

/*
 * The calendar day of as_of, converted once per query: as_of is the same
 * for every row (checked), and a time-zone conversion per row is what the
 * transition function would spend most on.
 */
#define SUMMARY_SPANS 8

typedef struct SummaryAsOfCache
{
	bool		valid;
	TimestampTz as_of;
	DateADT		day;

	/*
	 * The order days likewise: spans [lo, hi) of time in which the session's
	 * time zone has one UTC offset (between two daylight-saving changes),
	 * learnt from the orders seen, so that a calendar day is an addition and
	 * a division instead of a pg_localtime() call.
	 */
	pg_tz	   *tz;
	int			nspans;
	int			next;			/* the span to replace when all are used */
	struct
	{
		TimestampTz lo;
		TimestampTz hi;
		int64		offset;		/* microseconds to add to UTC */
	}			spans[SUMMARY_SPANS];
} SummaryAsOfCache;

static SummaryAsOfCache *
summary_cache(FunctionCallInfo fcinfo)
{
	SummaryAsOfCache *cache = (SummaryAsOfCache *) fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(SummaryAsOfCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache;
}

static DateADT
summary_as_of_day(FunctionCallInfo fcinfo, TimestampTz as_of)
{
	SummaryAsOfCache *cache = summary_cache(fcinfo);

	if (!cache->valid || cache->as_of != as_of)
	{
		cache->day = summary_day(as_of, "as_of");
		cache->as_of = as_of;
		cache->valid = true;
	}
	return cache->day;
}

/*
 * The calendar day of an order in the session's time zone: the same day as
 * timestamptz_date() gives, from the UTC offset of a span seen before when
 * there is one.  Only times after 2000 and before 2100 take the short way.
 */
static DateADT
summary_order_day(FunctionCallInfo fcinfo, TimestampTz ts)
{
	SummaryAsOfCache *cache = summary_cache(fcinfo);
	DateADT		day;
	pg_time_t	t;
	long int	before_gmtoff,
				after_gmtoff;
	int			before_isdst,
				after_isdst;
	pg_time_t	boundary;
	TimestampTz hi;
	int			found,
				i;

	if (cache->tz != session_timezone)
	{
		cache->tz = session_timezone;
		cache->nspans = 0;
	}
	for (i = 0; i < cache->nspans; i++)
		if (ts >= cache->spans[i].lo && ts < cache->spans[i].hi &&
			ts + cache->spans[i].offset >= 0)
			return (DateADT) ((ts + cache->spans[i].offset) / USECS_PER_DAY);

	day = summary_day(ts, "order timestamp");
	if (ts <= 0 || ts >= INT64CONST(100) * 36525 * USECS_PER_DAY)
		return day;

	/* the offset at ts holds until the next change (or for good) */
	t = timestamptz_to_time_t(ts - ts % USECS_PER_SEC);
	found = pg_next_dst_boundary(&t, &before_gmtoff, &before_isdst, &boundary,
								 &after_gmtoff, &after_isdst, session_timezone);
	if (found < 0)
		return day;
	hi = found == 0 ? DT_NOEND : time_t_to_timestamptz(boundary);
	if (ts + before_gmtoff * USECS_PER_SEC < 0 ||
		(DateADT) ((ts + before_gmtoff * USECS_PER_SEC) / USECS_PER_DAY) != day)
		return day;				/* not what timestamptz_date says: do not cache */
	for (i = 0; i < cache->nspans; i++)
		if (cache->spans[i].hi == hi && cache->spans[i].offset == before_gmtoff * USECS_PER_SEC)
		{
			cache->spans[i].lo = Min(cache->spans[i].lo, ts - ts % USECS_PER_SEC);
			return day;
		}
	if (cache->nspans < SUMMARY_SPANS)
		i = cache->nspans++;
	else
	{
		i = cache->next;
		cache->next = (cache->next + 1) % SUMMARY_SPANS;
	}
	cache->spans[i].lo = ts - ts % USECS_PER_SEC;
	cache->spans[i].hi = hi;
	cache->spans[i].offset = (int64) before_gmtoff * USECS_PER_SEC;
	return day;
}

/*
 * The on-disk layout of numeric (src/backend/utils/adt/numeric.c), which
 * pg_upgrade keeps from one release to the next: a varlena header, a 16-bit
 * header word, in the long form a 16-bit weight, then base-10000 digits.
 */
#define SUMMARY_NBASE 10000
#define SUMMARY_NUMERIC_SIGN_MASK 0xC000
#define SUMMARY_NUMERIC_NEG 0x4000
#define SUMMARY_NUMERIC_SHORT 0x8000
#define SUMMARY_NUMERIC_SPECIAL 0xC000
#define SUMMARY_NUMERIC_SHORT_SIGN_MASK 0x2000
#define SUMMARY_NUMERIC_SHORT_WEIGHT_SIGN_MASK 0x0040
#define SUMMARY_NUMERIC_SHORT_WEIGHT_MASK 0x003F

/*
 * An amount as a double, the same double as numeric_float8 gives (which
 * prints the number and reads it back with strtod, the costliest step of
 * this aggregate) without the text: a number of at most four base-10000
 * digits has an integer mantissa below 2^53 and a power of ten within
 * 10^+-22, both exact doubles, so one IEEE multiplication or division
 * rounds the exact value correctly, as strtod does.  Other numbers, NaN and
 * the infinities go through numeric_float8.
 */
static double
summary_amount(Datum d)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
	const char *p = VARDATA_ANY(v);
	Size		len = VARSIZE_ANY_EXHDR(v);
	uint16		header;
	int			weight,
				ndigits,
				exponent,
				i;
	bool		negative;
	const int16 *digits;
	int64		mantissa = 0;
	static const double powers[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
		1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

	if (len < sizeof(uint16))
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	memcpy(&header, p, sizeof(uint16));
	if ((header & SUMMARY_NUMERIC_SIGN_MASK) == SUMMARY_NUMERIC_SPECIAL)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	if ((header & SUMMARY_NUMERIC_SIGN_MASK) == SUMMARY_NUMERIC_SHORT)
	{
		negative = (header & SUMMARY_NUMERIC_SHORT_SIGN_MASK) != 0;
		weight = (header & SUMMARY_NUMERIC_SHORT_WEIGHT_MASK) |
			((header & SUMMARY_NUMERIC_SHORT_WEIGHT_SIGN_MASK) ? ~SUMMARY_NUMERIC_SHORT_WEIGHT_MASK : 0);
		p += sizeof(uint16);
		len -= sizeof(uint16);
	}
	else
	{
		int16		w;

		if (len < 2 * sizeof(uint16))
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
		negative = (header & SUMMARY_NUMERIC_SIGN_MASK) == SUMMARY_NUMERIC_NEG;
		memcpy(&w, p + sizeof(uint16), sizeof(int16));
		weight = w;
		p += 2 * sizeof(uint16);
		len -= 2 * sizeof(uint16);
	}
	ndigits = len / sizeof(int16);
	if (ndigits == 0)
		return 0.0;
	if (ndigits > 4)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	digits = (const int16 *) p;
	for (i = 0; i < ndigits; i++)
	{
		int16		digit;

		memcpy(&digit, digits + i, sizeof(int16));
		mantissa = mantissa * SUMMARY_NBASE + digit;
	}
	exponent = 4 * (weight - ndigits + 1);
	if (mantissa > (INT64CONST(1) << 53) || exponent < -22 || exponent > 22)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	if (exponent >= 0)
		return negative ? -((double) mantissa * powers[exponent]) : (double) mantissa * powers[exponent];
	return negative ? -((double) mantissa / powers[-exponent]) : (double) mantissa / powers[-exponent];
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

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_clv_summary_trans called in non-aggregate context");
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null"),
				 errhint("as_of is the end of the observation period, e.g. now().")));
	settings[0] = summary_as_of_day(fcinfo, PG_GETARG_TIMESTAMPTZ(3));
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

	day = summary_order_day(fcinfo, PG_GETARG_TIMESTAMPTZ(1));
	amount = summary_amount(PG_GETARG_DATUM(2));
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

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_clv_summary_combine called in non-aggregate context");
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

static int
summary_row_cmp(const void *pa, const void *pb)
{
	const float8 *a = pa;
	const float8 *b = pb;

	return (a[0] > b[0]) - (a[0] < b[0]);
}

/* First day of the purchase period holding day (weeks start on Monday). */
static double
summary_period_start(double day, double period)
{
	/* day 0 (2000-01-01) is a Saturday, five days after a Monday */
	if (period == 7)
		return day - (day + 5 - 7 * floor((day + 5) / 7));
	return day;
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
	double		unit,
				period,
				first,
				last,
				repeat_total = 0,
				period_total = 0;
	int64		i,
				periods = 0;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "segment_clv_summary_final called in non-aggregate context");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	clv_rows_read(PG_GETARG_ARRAYTYPE_P(0), CLV_KIND_SUMMARY, SUMMARY_WIDTH, &rows);
	if (rows.count == 0)
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "segment_clv_summary_final must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != SUMMARY_RESULT_NATTS)
		elog(ERROR, "segment.clv_summary has %d attributes, expected %d",
			 tupdesc->natts, SUMMARY_RESULT_NATTS);
	unit = rows.settings[1];
	period = rows.settings[2];

	/* sort a copy: the final function may run more than once on one state */
	sorted = palloc(rows.count * SUMMARY_WIDTH * sizeof(float8));
	memcpy(sorted, clv_rows_data(&rows), rows.count * SUMMARY_WIDTH * sizeof(float8));
	qsort(sorted, rows.count, SUMMARY_WIDTH * sizeof(float8), summary_row_cmp);

	first = last = summary_period_start(sorted[0], period);
	for (i = 0; i < rows.count; i++)
	{
		double		start = summary_period_start(sorted[i * SUMMARY_WIDTH], period);

		if (i == 0 || start != last)
		{
			/* a new period: the one before it, unless the first, was a repeat */
			if (periods > 1)
				repeat_total += period_total;
			periods++;
			period_total = 0;
			last = start;
		}
		period_total += sorted[i * SUMMARY_WIDTH + 1];
	}
	if (periods > 1)
		repeat_total += period_total;
	pfree(sorted);

	values[0] = Int32GetDatum((int32) (periods - 1));
	values[1] = Float8GetDatum((last - first) / unit);
	values[2] = Float8GetDatum((summary_period_start(rows.settings[0], period) - first) / unit);
	values[3] = Float8GetDatum(periods > 1 ? repeat_total / (periods - 1) : 0.0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
