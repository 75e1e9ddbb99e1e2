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
#include "utils/typcache.h"
#include "utils/varlena.h"

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

/* Count one line bought at ordered_at (launched_at NULL: no launch date). */
static void
lines_add(SegmentLinesState *state, TimestampTz ordered_at, const TimestampTz *launched_at,
		  text *category, MemoryContext aggcontext)
{
	state->lines++;
	if (launched_at != NULL)
	{
		segment_check_finite(*launched_at, "launch timestamp");
		state->dated++;
		/* bought before the launch (a pre-order) counts as following the trend */
		if (ordered_at - *launched_at <= (int64) state->launch_days * USECS_PER_DAY)
			state->trend++;
	}
	if (category == NULL)
		state->uncategorized++;
	else
		category_add(state, VARDATA_ANY(category), VARSIZE_ANY_EXHDR(category), 1,
					 ordered_at, aggcontext);
}

/* The launch_days of a row of a group whose state has them already. */
static void
lines_check_launch_days(FunctionCallInfo fcinfo, int argno, const SegmentLinesState *state)
{
	if (PG_ARGISNULL(argno) || PG_GETARG_INT32(argno) != state->launch_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("launch_days must be the same in every row of a group")));
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
	TimestampTz launched_at;

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
	else
		lines_check_launch_days(fcinfo, 4, state);
	if (!PG_ARGISNULL(2))
		launched_at = PG_GETARG_TIMESTAMPTZ(2);
	lines_add(state, ordered_at, PG_ARGISNULL(2) ? NULL : &launched_at,
			  PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3), aggcontext);
	PG_RETURN_POINTER(state);
}

/* Add the lines of right to left (same launch_days). */
static void
lines_merge(SegmentLinesState *left, const SegmentLinesState *right, MemoryContext aggcontext)
{
	int32		i;

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
}

/* order_lines combine: merge two partial states (parallel query). */
Datum
segment_lines_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentLinesState *left;
	SegmentLinesState *right;

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
	{
		left = MemoryContextAllocZero(aggcontext, sizeof(SegmentLinesState));
		left->launch_days = right->launch_days;
	}
	lines_merge(left, right, aggcontext);
	PG_RETURN_POINTER(left);
}

/* The fields of an order_lines state: launch_days, counts, then the categories. */
static void
lines_send(StringInfo buf, const SegmentLinesState *state)
{
	int32		i;

	pq_sendint32(buf, state->launch_days);
	pq_sendint64(buf, state->lines);
	pq_sendint64(buf, state->dated);
	pq_sendint64(buf, state->trend);
	pq_sendint64(buf, state->uncategorized);
	pq_sendint32(buf, state->ncat);
	for (i = 0; i < state->ncat; i++)
	{
		pq_sendint64(buf, state->cats[i].lines);
		pq_sendint64(buf, state->cats[i].last);
		pq_sendint32(buf, state->cats[i].len);
		pq_sendbytes(buf, state->cats[i].name, state->cats[i].len);
	}
}

/* Read what lines_send() wrote into a zeroed state, validating it. */
static void
lines_receive(StringInfo buf, SegmentLinesState *state, const char *aggregate,
			  MemoryContext aggcontext)
{
	int32		ncat;
	int64		categorized = 0;
	int32		i;

	state->launch_days = segment_read_int32(buf);
	state->lines = segment_read_int64(buf);
	state->dated = segment_read_int64(buf);
	state->trend = segment_read_int64(buf);
	state->uncategorized = segment_read_int64(buf);
	ncat = segment_read_int32(buf);
	if (state->launch_days < 0 || state->launch_days > MAX_LAUNCH_DAYS ||
		state->lines < 1 || state->dated < 0 || state->dated > state->lines ||
		state->trend < 0 || state->trend > state->dated ||
		state->uncategorized < 0 || state->uncategorized > state->lines ||
		ncat < 0 || ncat > buf->len - buf->cursor)
		segment_corrupt_state(aggregate, "Counts out of range.");
	for (i = 0; i < ncat; i++)
	{
		int64		lines = segment_read_int64(buf);
		TimestampTz last = segment_read_int64(buf);
		int32		len = segment_read_int32(buf);

		CHECK_FOR_INTERRUPTS();
		if (lines < 1 || lines > state->lines || len < 0 || len > buf->len - buf->cursor ||
			TIMESTAMP_NOT_FINITE(last))
			segment_corrupt_state(aggregate, "Category out of range.");
		categorized += lines;
		category_add(state, segment_read_bytes(buf, len), len, lines, last, aggcontext);
	}
	if (state->ncat != ncat || categorized + state->uncategorized != state->lines)
		segment_corrupt_state(aggregate, "Category counts do not add up.");
}

/* order_lines serial: version, then the state's fields (lines_send()). */
Datum
segment_lines_serial(PG_FUNCTION_ARGS)
{
	SegmentLinesState *state;
	StringInfoData buf;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentLinesState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, LINES_SERIAL_VERSION);
	lines_send(&buf, state);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* order_lines deserial: read what segment_lines_serial wrote, validating it. */
Datum
segment_lines_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	StringInfoData buf;
	SegmentLinesState *state;

	aggcontext = segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));
	if (segment_read_byte(&buf) != LINES_SERIAL_VERSION)
		segment_corrupt_state("order_lines", "Unknown format version.");
	state = MemoryContextAllocZero(aggcontext, sizeof(SegmentLinesState));
	lines_receive(&buf, state, "order_lines", aggcontext);
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

/* The segment.order_line_summary composite of a state (tupdesc blessed). */
static Datum
lines_result(const SegmentLinesState *state, TupleDesc tupdesc)
{
	Datum		values[LINES_RESULT_NATTS];
	bool		nulls[LINES_RESULT_NATTS] = {0};
	const CategoryEntry *top = NULL;
	int32		i;

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
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* order_lines final: the segment.order_line_summary composite (state unchanged). */
Datum
segment_lines_final(PG_FUNCTION_ARGS)
{
	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(lines_result((SegmentLinesState *) PG_GETARG_POINTER(0),
								 segment_result_tupdesc(fcinfo, LINES_RESULT_NATTS,
														"segment.order_line_summary")));
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

/* A line's quantity (argno NULL: one unit), which must be a positive finite number. */
static double
restock_quantity(FunctionCallInfo fcinfo, int argno)
{
	double		quantity;

	if (PG_ARGISNULL(argno))
		return 1;
	quantity = PG_GETARG_FLOAT8(argno);
	if (!(quantity > 0) || isinf(quantity))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity must be a positive finite number"),
				 errdetail("Got %g.", quantity),
				 errhint("Leave returns and cancelled lines out, for example with WHERE quantity > 0.")));
	return quantity;
}

/* Count quantity units bought at ts, on the local date day. */
static void
restock_line(SegmentRestockState *state, TimestampTz ts, DateADT day, double quantity,
			 MemoryContext aggcontext)
{
	restock_add(state, ts, ts, day, quantity, quantity);
	state->lines++;
	restock_reserve_days(state, 1, aggcontext);
	state->days.days[state->days.n++] = day;
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
	double		quantity;

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
	quantity = restock_quantity(fcinfo, 2);
	if (state == NULL)
		state = restock_state_create(aggcontext);

	/* the date in the session's time zone, without a time zone conversion per line */
	restock_line(state, ts, segment_local_date(ts, fcinfo->flinfo, NULL), quantity, aggcontext);
	PG_RETURN_POINTER(state);
}

/* Add the purchases of right to left. */
static void
restock_merge(SegmentRestockState *left, const SegmentRestockState *right,
			  MemoryContext aggcontext)
{
	restock_add(left, right->first, right->last, right->last_day, right->units,
				right->last_units);
	left->lines += right->lines;
	segment_days_append(&left->days, left->inline_days, &right->days, aggcontext, "product");
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
	restock_merge(left, right, aggcontext);
	PG_RETURN_POINTER(left);
}

/* The fields of a restock state: lines, first, last, last day, units, then the days. */
static void
restock_send(StringInfo buf, const SegmentRestockState *state)
{
	pq_sendint64(buf, state->lines);
	pq_sendint64(buf, state->first);
	pq_sendint64(buf, state->last);
	pq_sendint32(buf, state->last_day);
	pq_sendfloat8(buf, state->units);
	pq_sendfloat8(buf, state->last_units);
	segment_days_send(buf, &state->days);
}

/* Read what restock_send() wrote into a new state, validating it. */
static SegmentRestockState *
restock_receive(StringInfo buf, const char *aggregate, MemoryContext aggcontext)
{
	SegmentRestockState *state = restock_state_create(aggcontext);
	int32		ndays;
	int32		i;

	state->lines = segment_read_int64(buf);
	state->first = segment_read_int64(buf);
	state->last = segment_read_int64(buf);
	state->last_day = segment_read_int32(buf);
	state->units = segment_read_float8(buf);
	state->last_units = segment_read_float8(buf);
	ndays = segment_read_int32(buf);
	if (state->lines < 1 || state->first > state->last ||
		TIMESTAMP_NOT_FINITE(state->first) || TIMESTAMP_NOT_FINITE(state->last) ||
		!(state->last_units > 0) || !(state->units >= state->last_units) ||
		isinf(state->units) ||
		ndays < 1 || ndays > state->lines ||
		(Size) ndays > (Size) (buf->len - buf->cursor) / sizeof(int32))
		segment_corrupt_state(aggregate, "Counts or timestamps out of range.");
	restock_reserve_days(state, ndays, aggcontext);
	for (i = 0; i < ndays; i++)
	{
		DateADT		day = segment_read_int32(buf);

		CHECK_FOR_INTERRUPTS();
		if (day > state->last_day || (i > 0 && day <= state->days.days[i - 1]))
			segment_corrupt_state(aggregate, "Purchase days out of order.");
		state->days.days[i] = day;
	}
	state->days.n = ndays;
	if (state->days.days[ndays - 1] != state->last_day)
		segment_corrupt_state(aggregate, "Last purchase day does not match.");
	return state;
}

/* restock serial: version, then the state's fields (restock_send()). */
Datum
segment_restock_serial(PG_FUNCTION_ARGS)
{
	SegmentRestockState *state;
	StringInfoData buf;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentRestockState *) PG_GETARG_POINTER(0);

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, RESTOCK_SERIAL_VERSION);
	restock_send(&buf, state);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* restock deserial: read what segment_restock_serial wrote, validating it. */
Datum
segment_restock_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	StringInfoData buf;
	SegmentRestockState *state;

	aggcontext = segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));
	if (segment_read_byte(&buf) != RESTOCK_SERIAL_VERSION)
		segment_corrupt_state("restock", "Unknown format version.");
	state = restock_receive(&buf, "restock", aggcontext);
	segment_read_end(&buf);
	PG_RETURN_POINTER(state);
}

/* The figures of the restock_summary computed from the days and units. */
typedef struct RestockFigures
{
	int32		ndays;
	bool		has_gap;
	double		mean_gap_days;
	bool		has_per_unit;
	double		days_per_unit;
	bool		has_expected;
	DateADT		expected;
} RestockFigures;

/*
 * The expected re-stock date assumes the customer uses the product up at a
 * steady rate: the units bought before the last purchase day lasted from the
 * first to the last purchase day, so the units of the last day last
 * last_units times as many days per unit.  With equal quantities this is
 * the mean gap.
 */
static RestockFigures
restock_figures(const SegmentRestockState *state)
{
	RestockFigures f = {0};
	DateADT    *days = segment_days_distinct(&state->days, &f.ndays);
	DateADT		first_day = days[0];

	pfree(days);
	if (f.ndays > 1)
	{
		double		span = state->last_day - first_day;
		double		per_unit = span / (state->units - state->last_units);
		double		ahead = rint(state->last_units * per_unit);

		f.has_gap = true;
		f.mean_gap_days = span / (f.ndays - 1);
		f.has_per_unit = isfinite(per_unit);
		f.days_per_unit = per_unit;
		/* beyond the date range (absurd quantities): no date rather than a wrong one */
		if (isfinite(ahead) && IS_VALID_DATE((double) state->last_day + ahead))
		{
			f.has_expected = true;
			f.expected = state->last_day + (DateADT) ahead;
		}
	}
	return f;
}

/* restock final: the segment.restock_summary composite (restock_figures()). */
Datum
segment_restock_final(PG_FUNCTION_ARGS)
{
	SegmentRestockState *state;
	TupleDesc	tupdesc;
	Datum		values[RESTOCK_RESULT_NATTS];
	bool		nulls[RESTOCK_RESULT_NATTS] = {0};
	RestockFigures f;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SegmentRestockState *) PG_GETARG_POINTER(0);
	tupdesc = segment_result_tupdesc(fcinfo, RESTOCK_RESULT_NATTS, "segment.restock_summary");
	f = restock_figures(state);

	values[0] = Int32GetDatum(f.ndays);
	values[1] = TimestampTzGetDatum(state->first);
	values[2] = TimestampTzGetDatum(state->last);
	values[3] = Float8GetDatum(state->units);
	values[4] = Float8GetDatum(state->last_units);
	values[5] = Float8GetDatum(f.mean_gap_days);
	nulls[5] = !f.has_gap;
	values[6] = Float8GetDatum(f.days_per_unit);
	nulls[6] = !f.has_per_unit;
	values[7] = DateADTGetDatum(f.expected);
	nulls[7] = !f.has_expected;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------- line_stages ---------- */

/*
 * One pass over a customer's order lines for both product stages of a
 * refresh: the order_lines state, and a restock state per product (told
 * apart by their text), of which the final function keeps the product whose
 * re-stock is due first.  Products are kept in the order they were first
 * bought, with an open-addressing index once there are more than a few.
 */
typedef struct ProductEntry
{
	uint32		hash;
	int32		len;
	char	   *name;			/* not terminated */
	SegmentRestockState *restock;
} ProductEntry;

typedef struct SegmentLineStagesState
{
	SegmentLinesState lines;
	int32		restock_purchases;
	DateADT		restock_from;	/* earliest re-stock date reported */
	int32		nprod;
	int32		maxprod;
	ProductEntry *prods;
	int32		index_size;		/* 0 (no index) or a power of two > 2 * nprod */
	int32	   *index;			/* entry number + 1; 0 is empty */
} SegmentLineStagesState;

typedef struct LineStagesResult
{
	TupleDesc	result;
	TupleDesc	lines;
} LineStagesResult;

PG_FUNCTION_INFO_V1(segment_line_stages_trans);
PG_FUNCTION_INFO_V1(segment_line_stages_combine);
PG_FUNCTION_INFO_V1(segment_line_stages_serial);
PG_FUNCTION_INFO_V1(segment_line_stages_deserial);
PG_FUNCTION_INFO_V1(segment_line_stages_final);

#define LINE_STAGES_SERIAL_VERSION 1
#define LINE_STAGES_RESULT_NATTS 3
#define PRODUCT_LINEAR_MAX 8

/* (Re)build the index of the products at twice their count or more. */
static void
products_reindex(SegmentLineStagesState *state, MemoryContext aggcontext)
{
	int32		size = 16;
	int32		i;

	while (size <= 2 * state->maxprod)
		size *= 2;
	if (state->index != NULL)
		pfree(state->index);
	state->index = MemoryContextAllocZero(aggcontext, size * sizeof(int32));
	state->index_size = size;
	for (i = 0; i < state->nprod; i++)
	{
		uint32		slot = state->prods[i].hash & (size - 1);

		CHECK_FOR_INTERRUPTS();
		while (state->index[slot] != 0)
			slot = (slot + 1) & (size - 1);
		state->index[slot] = i + 1;
	}
}

/* The restock state of a product, created (empty) if the customer had none. */
static SegmentRestockState *
product_restock(SegmentLineStagesState *state, const char *name, int32 len,
				MemoryContext aggcontext)
{
	uint32		hash = hash_bytes((const unsigned char *) name, len);
	ProductEntry *e;

	if (state->index == NULL)
	{
		int32		i;

		for (i = 0; i < state->nprod; i++)
		{
			e = &state->prods[i];
			if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
				return e->restock;
		}
	}
	else
	{
		uint32		slot = hash & (state->index_size - 1);

		while (state->index[slot] != 0)
		{
			e = &state->prods[state->index[slot] - 1];
			if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
				return e->restock;
			slot = (slot + 1) & (state->index_size - 1);
		}
	}
	if (state->nprod == state->maxprod)
	{
		int32		newmax = Max(4, state->maxprod * 2);

		if ((Size) newmax > MaxAllocSize / sizeof(ProductEntry) / 4)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many distinct products for one customer")));
		state->prods = state->prods == NULL
			? MemoryContextAlloc(aggcontext, newmax * sizeof(ProductEntry))
			: repalloc(state->prods, newmax * sizeof(ProductEntry));
		state->maxprod = newmax;
	}
	e = &state->prods[state->nprod++];
	e->hash = hash;
	e->len = len;
	e->name = MemoryContextAlloc(aggcontext, Max(len, 1));
	memcpy(e->name, name, len);
	e->restock = restock_state_create(aggcontext);
	if (state->nprod > PRODUCT_LINEAR_MAX &&
		(state->index == NULL || state->index_size <= 2 * state->nprod))
		products_reindex(state, aggcontext);
	else if (state->index != NULL)
	{
		uint32		slot = hash & (state->index_size - 1);

		while (state->index[slot] != 0)
			slot = (slot + 1) & (state->index_size - 1);
		state->index[slot] = state->nprod;
	}
	return e->restock;
}

static SegmentLineStagesState *
line_stages_create(int32 launch_days, int32 restock_purchases, DateADT restock_from,
				   MemoryContext aggcontext)
{
	SegmentLineStagesState *state = MemoryContextAllocZero(aggcontext,
														   sizeof(SegmentLineStagesState));

	state->lines.launch_days = launch_days;
	state->restock_purchases = restock_purchases;
	state->restock_from = restock_from;
	return state;
}

/* The restock_purchases and restock_from arguments (argno, argno + 1). */
static void
check_restock_args(FunctionCallInfo fcinfo, int argno, int32 *purchases, DateADT *from)
{
	if (PG_ARGISNULL(argno) || PG_ARGISNULL(argno + 1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("restock_purchases and restock_from must not be null")));
	*purchases = PG_GETARG_INT32(argno);
	*from = PG_GETARG_DATEADT(argno + 1);
	if (*purchases < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("restock_purchases must be at least 1"),
				 errdetail("Got %d.", *purchases)));
}

/*
 * line_stages transition: arguments ordered_at, launched_at, category,
 * launch_days (as order_lines), product, quantity (as restock, per
 * product), restock_purchases, restock_from.  A line with a NULL ordered_at
 * is skipped; one with a NULL product counts in order_lines only.
 */
Datum
segment_line_stages_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentLineStagesState *state;
	TimestampTz ordered_at;
	TimestampTz launched_at;
	int32		purchases;
	DateADT		from;

	aggcontext = segment_aggregate_context(fcinfo);
	state = PG_ARGISNULL(0) ? NULL : (SegmentLineStagesState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	ordered_at = PG_GETARG_TIMESTAMPTZ(1);
	segment_check_finite(ordered_at, "order timestamp");
	check_restock_args(fcinfo, 7, &purchases, &from);
	if (state == NULL)
		state = line_stages_create(check_launch_days(fcinfo, 4), purchases, from, aggcontext);
	else
	{
		lines_check_launch_days(fcinfo, 4, &state->lines);
		if (purchases != state->restock_purchases || from != state->restock_from)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("restock_purchases and restock_from must be the same in every row of a group")));
	}
	if (!PG_ARGISNULL(2))
		launched_at = PG_GETARG_TIMESTAMPTZ(2);
	lines_add(&state->lines, ordered_at, PG_ARGISNULL(2) ? NULL : &launched_at,
			  PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3), aggcontext);
	if (!PG_ARGISNULL(5))
	{
		text	   *product = PG_GETARG_TEXT_PP(5);
		double		quantity = restock_quantity(fcinfo, 6);

		restock_line(product_restock(state, VARDATA_ANY(product), VARSIZE_ANY_EXHDR(product),
									 aggcontext),
					 ordered_at, segment_local_date(ordered_at, fcinfo->flinfo, NULL), quantity,
					 aggcontext);
	}
	PG_RETURN_POINTER(state);
}

/* Add the lines and products of right to left. */
static void
line_stages_merge(SegmentLineStagesState *left, const SegmentLineStagesState *right,
				  MemoryContext aggcontext)
{
	int32		i;

	if (left->restock_purchases != right->restock_purchases ||
		left->restock_from != right->restock_from)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("restock_purchases and restock_from must be the same in every row of a group")));
	lines_merge(&left->lines, &right->lines, aggcontext);
	for (i = 0; i < right->nprod; i++)
	{
		const ProductEntry *e = &right->prods[i];

		CHECK_FOR_INTERRUPTS();
		restock_merge(product_restock(left, e->name, e->len, aggcontext), e->restock, aggcontext);
	}
}

/* line_stages combine: merge two partial states (parallel query). */
Datum
segment_line_stages_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentLineStagesState *left;
	SegmentLineStagesState *right;

	aggcontext = segment_aggregate_context(fcinfo);
	left = PG_ARGISNULL(0) ? NULL : (SegmentLineStagesState *) PG_GETARG_POINTER(0);
	right = PG_ARGISNULL(1) ? NULL : (SegmentLineStagesState *) PG_GETARG_POINTER(1);
	if (right == NULL)
	{
		if (left == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(left);
	}
	if (left == NULL)
		left = line_stages_create(right->lines.launch_days, right->restock_purchases,
								  right->restock_from, aggcontext);
	line_stages_merge(left, right, aggcontext);
	PG_RETURN_POINTER(left);
}

/*
 * line_stages serial: version, the order_lines fields (lines_send()),
 * restock_purchases, restock_from, then each product: its text and its
 * restock fields (restock_send()).
 */
Datum
segment_line_stages_serial(PG_FUNCTION_ARGS)
{
	SegmentLineStagesState *state;
	StringInfoData buf;
	int32		i;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentLineStagesState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, LINE_STAGES_SERIAL_VERSION);
	lines_send(&buf, &state->lines);
	pq_sendint32(&buf, state->restock_purchases);
	pq_sendint32(&buf, state->restock_from);
	pq_sendint32(&buf, state->nprod);
	for (i = 0; i < state->nprod; i++)
	{
		pq_sendint32(&buf, state->prods[i].len);
		pq_sendbytes(&buf, state->prods[i].name, state->prods[i].len);
		restock_send(&buf, state->prods[i].restock);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * line_stages deserial: read what segment_line_stages_serial wrote,
 * validating it: each part as order_lines' and restock's deserial do, and
 * products distinct, of no more lines than the order_lines state counts.
 */
Datum
segment_line_stages_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	StringInfoData buf;
	SegmentLineStagesState *state;
	int32		nprod;
	int64		product_lines = 0;
	int32		i;

	aggcontext = segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));
	if (segment_read_byte(&buf) != LINE_STAGES_SERIAL_VERSION)
		segment_corrupt_state("line_stages", "Unknown format version.");
	state = line_stages_create(0, 0, 0, aggcontext);
	lines_receive(&buf, &state->lines, "line_stages", aggcontext);
	state->restock_purchases = segment_read_int32(&buf);
	state->restock_from = segment_read_int32(&buf);
	nprod = segment_read_int32(&buf);
	if (state->restock_purchases < 1 || nprod < 0 || nprod > buf.len - buf.cursor)
		segment_corrupt_state("line_stages", "Counts out of range.");
	for (i = 0; i < nprod; i++)
	{
		int32		len = segment_read_int32(&buf);
		const char *name;
		SegmentRestockState *restock;

		CHECK_FOR_INTERRUPTS();
		if (len < 0 || len > buf.len - buf.cursor)
			segment_corrupt_state("line_stages", "Product out of range.");
		name = segment_read_bytes(&buf, len);
		restock = product_restock(state, name, len, aggcontext);
		if (restock->lines != 0)
			segment_corrupt_state("line_stages", "Product repeated.");
		pfree(restock);
		state->prods[state->nprod - 1].restock = restock_receive(&buf, "line_stages", aggcontext);
		product_lines += state->prods[state->nprod - 1].restock->lines;
		if (product_lines > state->lines.lines)
			segment_corrupt_state("line_stages", "More product lines than lines.");
	}
	segment_read_end(&buf);
	PG_RETURN_POINTER(state);
}

/*
 * Does product a come before product b among those due: earlier re-stock
 * date, then the text order of the product under the aggregate's collation
 * (as ORDER BY expected_restock, product).
 */
static bool
product_due_before(DateADT a_day, const ProductEntry *a, DateADT b_day, const ProductEntry *b,
				   Oid collation)
{
	if (a_day != b_day)
		return a_day < b_day;
	return varstr_cmp(a->name, a->len, b->name, b->len, collation) < 0;
}

/* The result's descriptors, kept in fn_extra: the composite and its order_lines field. */
static LineStagesResult *
line_stages_tupdescs(FunctionCallInfo fcinfo)
{
	LineStagesResult *r = (LineStagesResult *) fcinfo->flinfo->fn_extra;

	if (r == NULL)
	{
		TupleDesc	tupdesc;
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "function returning segment_internal.line_stages_result called in a context that does not accept a record");
		if (tupdesc->natts != LINE_STAGES_RESULT_NATTS)
			elog(ERROR, "segment_internal.line_stages_result has %d attributes, expected %d",
				 tupdesc->natts, LINE_STAGES_RESULT_NATTS);
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		r = palloc(sizeof(LineStagesResult));
		r->result = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
		r->lines = BlessTupleDesc(lookup_rowtype_tupdesc_copy(TupleDescAttr(tupdesc, 0)->atttypid, -1));
		MemoryContextSwitchTo(old);
		if (r->lines->natts != LINES_RESULT_NATTS)
			elog(ERROR, "segment.order_line_summary has %d attributes, expected %d",
				 r->lines->natts, LINES_RESULT_NATTS);
		fcinfo->flinfo->fn_extra = r;
	}
	return r;
}

/*
 * line_stages final: the segment_internal.line_stages_result composite: the
 * order_lines summary, and among the products bought on restock_purchases
 * days or more whose expected re-stock is restock_from or later, the one
 * due first and its date (state unchanged).
 */
Datum
segment_line_stages_final(PG_FUNCTION_ARGS)
{
	SegmentLineStagesState *state;
	LineStagesResult *r;
	Datum		values[LINE_STAGES_RESULT_NATTS];
	bool		nulls[LINE_STAGES_RESULT_NATTS] = {0};
	const ProductEntry *due = NULL;
	DateADT		due_day = 0;
	int32		i;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SegmentLineStagesState *) PG_GETARG_POINTER(0);
	r = line_stages_tupdescs(fcinfo);

	for (i = 0; i < state->nprod; i++)
	{
		const ProductEntry *e = &state->prods[i];
		RestockFigures f;

		CHECK_FOR_INTERRUPTS();
		f = restock_figures(e->restock);
		if (f.ndays < state->restock_purchases || !f.has_expected || f.expected < state->restock_from)
			continue;
		if (due == NULL || product_due_before(f.expected, e, due_day, due, PG_GET_COLLATION()))
		{
			due = e;
			due_day = f.expected;
		}
	}
	values[0] = lines_result(&state->lines, r->lines);
	if (due != NULL)
	{
		values[1] = DateADTGetDatum(due_day);
		values[2] = PointerGetDatum(cstring_to_text_with_len(due->name, due->len));
	}
	else
		nulls[1] = nulls[2] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(r->result, values, nulls)));
}
