/*
 * products.c
 *	  Aggregates over a customer's order lines joined with the products:
 *	  order_lines(ordered_at, launched_at, category, launch_days), for trend
 *	  followers and category affinity, per customer; and restock(ordered_at,
 *	  quantity), for replenishment, per customer and product.
 *
 * order_lines keeps a small map category -> (lines, latest purchase),
 * sorted by the hash of the category so that a row costs a binary search;
 * restock keeps the distinct purchase days, as rfm does.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "activity.h"
#include "day_list.h"
#include "rfm.h"

#define LINES_SERIAL_VERSION 1
#define LINES_RESULT_NATTS 10
#define RESTOCK_SERIAL_VERSION 1
#define RESTOCK_RESULT_NATTS 8
#define RESTOCK_INLINE_DAYS 6
#define MAX_LAUNCH_DAYS 36525

typedef struct CategoryEntry
{
	uint32		hash;
	int32		len;
	char	   *name;			/* not terminated */
	int64		lines;
	TimestampTz last;			/* latest purchase in the category */
} CategoryEntry;

typedef struct SegmentLinesState
{
	int32		launch_days;
	int64		lines;
	int64		dated;			/* lines with a launch date */
	int64		trend;			/* of those, within launch_days of the launch */
	int64		uncategorized;
	int32		ncat;
	int32		maxcat;
	CategoryEntry *cats;		/* sorted by hash */
} SegmentLinesState;

typedef struct SegmentRestockState
{
	int64		lines;
	TimestampTz first;
	TimestampTz last;
	DateADT		last_day;		/* local date of the last purchase */
	double		units;
	double		last_units;		/* units bought on last_day */
	SegmentDayList days;		/* purchase dates */
	DateADT		inline_days[RESTOCK_INLINE_DAYS];
} SegmentRestockState;

PG_FUNCTION_INFO_V1(segment_lines_trans);
PG_FUNCTION_INFO_V1(segment_lines_combine);
PG_FUNCTION_INFO_V1(segment_lines_serial);
PG_FUNCTION_INFO_V1(segment_lines_deserial);
PG_FUNCTION_INFO_V1(segment_lines_final);
PG_FUNCTION_INFO_V1(segment_restock_trans);
PG_FUNCTION_INFO_V1(segment_restock_combine);
PG_FUNCTION_INFO_V1(segment_restock_serial);
PG_FUNCTION_INFO_V1(segment_restock_deserial);
PG_FUNCTION_INFO_V1(segment_restock_final);

/* ---------- order_lines ---------- */

static int32
check_launch_days(FunctionCallInfo fcinfo, int argno)
{
	int32		days;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("launch_days must not be null")));
	days = PG_GETARG_INT32(argno);
	if (days < 0 || days > MAX_LAUNCH_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("launch_days must be between 0 and %d", MAX_LAUNCH_DAYS),
				 errdetail("Got %d.", days)));
	return days;
}

/* Index of the first entry with a hash >= hash. */
static int32
category_lower_bound(const SegmentLinesState *state, uint32 hash)
{
	int32		lo = 0,
				hi = state->ncat;

	while (lo < hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (state->cats[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Count lines bought in a category, the latest at "last". */
static void
category_add(SegmentLinesState *state, const char *name, int32 len, int64 lines,
			 TimestampTz last, MemoryContext aggcontext)
{
	uint32		hash = hash_bytes((const unsigned char *) name, len);
	int32		i = category_lower_bound(state, hash);
	int32		j;
	CategoryEntry *e;

	for (j = i; j < state->ncat && state->cats[j].hash == hash; j++)
	{
		e = &state->cats[j];
		if (e->len == len && memcmp(e->name, name, len) == 0)
		{
			e->lines += lines;
			e->last = Max(e->last, last);
			return;
		}
	}
	if (state->ncat == state->maxcat)
	{
		int32		newmax = Max(8, state->maxcat * 2);

		if ((Size) newmax > MaxAllocSize / sizeof(CategoryEntry))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many distinct categories for one customer")));
		state->cats = state->cats == NULL
			? MemoryContextAlloc(aggcontext, newmax * sizeof(CategoryEntry))
			: repalloc(state->cats, newmax * sizeof(CategoryEntry));
		state->maxcat = newmax;
	}
	memmove(&state->cats[i + 1], &state->cats[i], (state->ncat - i) * sizeof(CategoryEntry));
	state->ncat++;
	e = &state->cats[i];
	e->hash = hash;
	e->len = len;
	e->name = MemoryContextAlloc(aggcontext, Max(len, 1));
	memcpy(e->name, name, len);
	e->lines = lines;
	e->last = last;
}

/*
 * order_lines transition: arguments ordered_at, launched_at, category,
 * launch_days.  A line with a NULL ordered_at is skipped; a NULL launched_at
 * (the product is missing, or its launch unknown) or category is counted.
 */
Datum
segment_lines_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentLinesState *state;
	TimestampTz ordered_at;

	aggcontext = segment_aggregate_context(fcinfo);
	state = PG_ARGISNULL(0) ? NULL : (SegmentLinesState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	ordered_at = PG_GETARG_TIMESTAMPTZ(1);
	segment_check_finite(ordered_at, "order timestamp");
	if (state == NULL)
	{
		state = MemoryContextAllocZero(aggcontext, sizeof(SegmentLinesState));
		state->launch_days = check_launch_days(fcinfo, 4);
	}
	else if (PG_ARGISNULL(4) || PG_GETARG_INT32(4) != state->launch_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("launch_days must be the same in every row of a group")));

	state->lines++;
	if (!PG_ARGISNULL(2))
	{
		TimestampTz launched_at = PG_GETARG_TIMESTAMPTZ(2);

		segment_check_finite(launched_at, "launch timestamp");
		state->dated++;
		/* bought before the launch (a pre-order) counts as following the trend */
		if (ordered_at - launched_at <= (int64) state->launch_days * USECS_PER_DAY)
			state->trend++;
	}
	if (PG_ARGISNULL(3))
		state->uncategorized++;
	else
	{
		text	   *category = PG_GETARG_TEXT_PP(3);

		category_add(state, VARDATA_ANY(category), VARSIZE_ANY_EXHDR(category), 1,
					 ordered_at, aggcontext);
	}
	PG_RETURN_POINTER(state);
}

static SegmentLinesState *
lines_copy(const SegmentLinesState *from, MemoryContext aggcontext)
{
	SegmentLinesState *to = MemoryContextAllocZero(aggcontext, sizeof(SegmentLinesState));
	int32		i;

	*to = *from;
	to->ncat = to->maxcat = 0;
	to->cats = NULL;
	for (i = 0; i < from->ncat; i++)
		category_add(to, from->cats[i].name, from->cats[i].len, from->cats[i].lines,
					 from->cats[i].last, aggcontext);
	return to;
}

/* order_lines combine: merge two partial states (parallel query). */
Datum
segment_lines_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentLinesState *left;
	SegmentLinesState *right;
	int32		i;

	aggcontext = segment_aggregate_context(fcinfo);
	left = PG_ARGISNULL(0) ? NULL : (SegmentLinesState *) PG_GETARG_POINTER(0);
	right = PG_ARGISNULL(1) ? NULL : (SegmentLinesState *) PG_GETARG_POINTER(1);
	if (right == NULL)
	{
		if (left == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(left);
	}
	if (left == NULL)
		PG_RETURN_POINTER(lines_copy(right, aggcontext));
	if (left->launch_days != right->launch_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("launch_days must be the same in every row of a group")));
	left->lines += right->lines;
	left->dated += right->dated;
	left->trend += right->trend;
	left->uncategorized += right->uncategorized;
	for (i = 0; i < right->ncat; i++)
	{
		CHECK_FOR_INTERRUPTS();
		category_add(left, right->cats[i].name, right->cats[i].len, right->cats[i].lines,
					 right->cats[i].last, aggcontext);
	}
	PG_RETURN_POINTER(left);
}

/* order_lines serial: version, launch_days, counts, then the categories. */
Datum
segment_lines_serial(PG_FUNCTION_ARGS)
{
	SegmentLinesState *state;
	StringInfoData buf;
	int32		i;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentLinesState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, LINES_SERIAL_VERSION);
	pq_sendint32(&buf, state->launch_days);
	pq_sendint64(&buf, state->lines);
	pq_sendint64(&buf, state->dated);
	pq_sendint64(&buf, state->trend);
	pq_sendint64(&buf, state->uncategorized);
	pq_sendint32(&buf, state->ncat);
	for (i = 0; i < state->ncat; i++)
	{
		pq_sendint64(&buf, state->cats[i].lines);
		pq_sendint64(&buf, state->cats[i].last);
		pq_sendint32(&buf, state->cats[i].len);
		pq_sendbytes(&buf, state->cats[i].name, state->cats[i].len);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* order_lines deserial: read what segment_lines_serial wrote, validating it. */
Datum
segment_lines_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	StringInfoData buf;
	SegmentLinesState *state;
	int32		ncat;
	int64		categorized = 0;
	int32		i;

	aggcontext = segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));
	if (segment_read_byte(&buf) != LINES_SERIAL_VERSION)
		segment_corrupt_state("order_lines", "Unknown format version.");
	state = MemoryContextAllocZero(aggcontext, sizeof(SegmentLinesState));
	state->launch_days = segment_read_int32(&buf);
	state->lines = segment_read_int64(&buf);
	state->dated = segment_read_int64(&buf);
	state->trend = segment_read_int64(&buf);
	state->uncategorized = segment_read_int64(&buf);
	ncat = segment_read_int32(&buf);
	if (state->launch_days < 0 || state->launch_days > MAX_LAUNCH_DAYS ||
		state->lines < 1 || state->dated < 0 || state->dated > state->lines ||
		state->trend < 0 || state->trend > state->dated ||
		state->uncategorized < 0 || state->uncategorized > state->lines ||
		ncat < 0 || ncat > buf.len - buf.cursor)
		segment_corrupt_state("order_lines", "Counts out of range.");
	for (i = 0; i < ncat; i++)
	{
		int64		lines = segment_read_int64(&buf);
		TimestampTz last = segment_read_int64(&buf);
		int32		len = segment_read_int32(&buf);

		if (lines < 1 || lines > state->lines || len < 0 || len > buf.len - buf.cursor ||
			TIMESTAMP_NOT_FINITE(last))
			segment_corrupt_state("order_lines", "Category out of range.");
		categorized += lines;
		category_add(state, segment_read_bytes(&buf, len), len, lines, last, aggcontext);
	}
	if (state->ncat != ncat || categorized + state->uncategorized != state->lines)
		segment_corrupt_state("order_lines", "Category counts do not add up.");
	segment_read_end(&buf);
	PG_RETURN_POINTER(state);
}

/* Does category a rank above b: more lines, then bought later, then smaller name. */
static bool
category_above(const CategoryEntry *a, const CategoryEntry *b)
{
	int			c;

	if (a->lines != b->lines)
		return a->lines > b->lines;
	if (a->last != b->last)
		return a->last > b->last;
	c = memcmp(a->name, b->name, Min(a->len, b->len));
	return c < 0 || (c == 0 && a->len < b->len);
}

/* order_lines final: the segment.order_line_summary composite (state unchanged). */
Datum
segment_lines_final(PG_FUNCTION_ARGS)
{
	SegmentLinesState *state;
	TupleDesc	tupdesc;
	Datum		values[LINES_RESULT_NATTS];
	bool		nulls[LINES_RESULT_NATTS] = {0};
	const CategoryEntry *top = NULL;
	int32		i;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SegmentLinesState *) PG_GETARG_POINTER(0);
	tupdesc = segment_result_tupdesc(fcinfo, LINES_RESULT_NATTS, "segment.order_line_summary");

	for (i = 0; i < state->ncat; i++)
		if (top == NULL || category_above(&state->cats[i], top))
			top = &state->cats[i];

	values[0] = Int64GetDatum(state->lines);
	values[1] = Int64GetDatum(state->dated);
	values[2] = Int64GetDatum(state->trend);
	values[3] = Float8GetDatum(state->dated > 0 ? (double) state->trend / state->dated : 0);
	nulls[3] = state->dated == 0;
	values[4] = Int64GetDatum(state->lines - state->dated);
	values[5] = Int32GetDatum(state->ncat);
	if (top != NULL)
	{
		values[6] = PointerGetDatum(cstring_to_text_with_len(top->name, top->len));
		values[7] = Int64GetDatum(top->lines);
		values[8] = Float8GetDatum((double) top->lines / (state->lines - state->uncategorized));
	}
	else
		nulls[6] = nulls[7] = nulls[8] = true;
	values[9] = Int64GetDatum(state->uncategorized);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------- restock ---------- */

static SegmentRestockState *
restock_state_create(MemoryContext aggcontext)
{
	SegmentRestockState *state = MemoryContextAllocZero(aggcontext, sizeof(SegmentRestockState));

	segment_days_init(&state->days, state->inline_days, RESTOCK_INLINE_DAYS);
	return state;
}

/* Make room for "extra" more purchase days. */
static inline void
restock_reserve_days(SegmentRestockState *state, int32 extra, MemoryContext cxt)
{
	segment_days_reserve(&state->days, state->inline_days, extra, cxt, "product");
}

/* Units bought on "day"; keeps first, last, and the units of the last day. */
static void
restock_add(SegmentRestockState *state, TimestampTz first, TimestampTz last, DateADT day,
			double units, double day_units)
{
	if (state->lines == 0)
	{
		state->first = first;
		state->last = last;
		state->last_day = day;
		state->last_units = day_units;
	}
	else
	{
		state->first = Min(state->first, first);
		if (last > state->last)
			state->last = last;
		if (day > state->last_day)
		{
			state->last_day = day;
			state->last_units = day_units;
		}
		else if (day == state->last_day)
			state->last_units += day_units;
	}
	state->units += units;
}

/*
 * restock transition: arguments ordered_at, quantity.  A line with a NULL
 * ordered_at is skipped; a NULL quantity is one unit.
 */
Datum
segment_restock_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentRestockState *state;
	TimestampTz ts;
	double		quantity = 1;
	DateADT		day;

	aggcontext = segment_aggregate_context(fcinfo);
	state = PG_ARGISNULL(0) ? NULL : (SegmentRestockState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	ts = PG_GETARG_TIMESTAMPTZ(1);
	segment_check_finite(ts, "order timestamp");
	if (!PG_ARGISNULL(2))
	{
		quantity = PG_GETARG_FLOAT8(2);
		if (!(quantity > 0) || isinf(quantity))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("quantity must be a positive finite number"),
					 errdetail("Got %g.", quantity),
					 errhint("Leave returns and cancelled lines out, for example with WHERE quantity > 0.")));
	}
	if (state == NULL)
		state = restock_state_create(aggcontext);

	/* the date in the session's time zone, without a time zone conversion per line */
	day = segment_local_date(ts, fcinfo->flinfo, NULL);
	restock_add(state, ts, ts, day, quantity, quantity);
	state->lines++;
	restock_reserve_days(state, 1, aggcontext);
	state->days.days[state->days.n++] = day;
	PG_RETURN_POINTER(state);
}

/* restock combine: merge two partial states (parallel query). */
Datum
segment_restock_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentRestockState *left;
	SegmentRestockState *right;

	aggcontext = segment_aggregate_context(fcinfo);
	left = PG_ARGISNULL(0) ? NULL : (SegmentRestockState *) PG_GETARG_POINTER(0);
	right = PG_ARGISNULL(1) ? NULL : (SegmentRestockState *) PG_GETARG_POINTER(1);
	if (right == NULL)
	{
		if (left == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(left);
	}
	if (left == NULL)
		left = restock_state_create(aggcontext);
	restock_add(left, right->first, right->last, right->last_day, right->units,
				right->last_units);
	left->lines += right->lines;
	segment_days_append(&left->days, left->inline_days, &right->days, aggcontext, "product");
	PG_RETURN_POINTER(left);
}

/* restock serial: version, lines, first, last, last day, units, then the days. */
Datum
segment_restock_serial(PG_FUNCTION_ARGS)
{
	SegmentRestockState *state;
	StringInfoData buf;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentRestockState *) PG_GETARG_POINTER(0);

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, RESTOCK_SERIAL_VERSION);
	pq_sendint64(&buf, state->lines);
	pq_sendint64(&buf, state->first);
	pq_sendint64(&buf, state->last);
	pq_sendint32(&buf, state->last_day);
	pq_sendfloat8(&buf, state->units);
	pq_sendfloat8(&buf, state->last_units);
	segment_days_send(&buf, &state->days);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* restock deserial: read what segment_restock_serial wrote, validating it. */
Datum
segment_restock_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	StringInfoData buf;
	SegmentRestockState *state;
	int32		ndays;
	int32		i;

	aggcontext = segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));
	if (segment_read_byte(&buf) != RESTOCK_SERIAL_VERSION)
		segment_corrupt_state("restock", "Unknown format version.");
	state = restock_state_create(aggcontext);
	state->lines = segment_read_int64(&buf);
	state->first = segment_read_int64(&buf);
	state->last = segment_read_int64(&buf);
	state->last_day = segment_read_int32(&buf);
	state->units = segment_read_float8(&buf);
	state->last_units = segment_read_float8(&buf);
	ndays = segment_read_int32(&buf);
	if (state->lines < 1 || state->first > state->last ||
		TIMESTAMP_NOT_FINITE(state->first) || TIMESTAMP_NOT_FINITE(state->last) ||
		!(state->last_units > 0) || !(state->units >= state->last_units) ||
		isinf(state->units) ||
		ndays < 1 || ndays > state->lines ||
		(Size) ndays > (Size) (buf.len - buf.cursor) / sizeof(int32))
		segment_corrupt_state("restock", "Counts or timestamps out of range.");
	restock_reserve_days(state, ndays, aggcontext);
	for (i = 0; i < ndays; i++)
	{
		DateADT		day = segment_read_int32(&buf);

		if (day > state->last_day || (i > 0 && day <= state->days.days[i - 1]))
			segment_corrupt_state("restock", "Purchase days out of order.");
		state->days.days[i] = day;
	}
	state->days.n = ndays;
	if (state->days.days[ndays - 1] != state->last_day)
		segment_corrupt_state("restock", "Last purchase day does not match.");
	segment_read_end(&buf);
	PG_RETURN_POINTER(state);
}

/*
 * restock final: the segment.restock_summary composite.  The expected
 * re-stock date assumes the customer uses the product up at a steady rate:
 * the units bought before the last purchase day lasted from the first to the
 * last purchase day, so the units of the last day last last_units times as
 * many days per unit.  With equal quantities this is the mean gap.
 */
Datum
segment_restock_final(PG_FUNCTION_ARGS)
{
	SegmentRestockState *state;
	TupleDesc	tupdesc;
	Datum		values[RESTOCK_RESULT_NATTS];
	bool		nulls[RESTOCK_RESULT_NATTS] = {0};
	DateADT    *days;
	int32		ndays;
	DateADT		first_day;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SegmentRestockState *) PG_GETARG_POINTER(0);
	tupdesc = segment_result_tupdesc(fcinfo, RESTOCK_RESULT_NATTS, "segment.restock_summary");

	days = segment_days_distinct(&state->days, &ndays);
	first_day = days[0];
	pfree(days);

	values[0] = Int32GetDatum(ndays);
	values[1] = TimestampTzGetDatum(state->first);
	values[2] = TimestampTzGetDatum(state->last);
	values[3] = Float8GetDatum(state->units);
	values[4] = Float8GetDatum(state->last_units);
	nulls[5] = nulls[6] = nulls[7] = true;
	if (ndays > 1)
	{
		double		span = state->last_day - first_day;
		double		per_unit = span / (state->units - state->last_units);
		double		ahead = rint(state->last_units * per_unit);

		values[5] = Float8GetDatum(span / (ndays - 1));
		nulls[5] = false;
		if (isfinite(per_unit))
		{
			values[6] = Float8GetDatum(per_unit);
			nulls[6] = false;
		}
		/* beyond the date range (absurd quantities): no date rather than a wrong one */
		if (isfinite(ahead) && IS_VALID_DATE((double) state->last_day + ahead))
		{
			values[7] = DateADTGetDatum(state->last_day + (DateADT) ahead);
			nulls[7] = false;
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
