/*
 * rfm.c
 *	  The per-customer rfm(ordered_at, amount) aggregate.
 *
 * The state lives in the aggregate memory context and is "internal"; it is
 * per customer, so a GROUP BY on the customer key is pushed down whole to
 * parallel workers or shards and the combine function is only needed for
 * parallel plans that split one customer's rows.
 *
 * The state is one allocation of about 128 bytes: a hash aggregate over a
 * million customers visits it once per order at a random place in memory, so
 * what an order adds stays in it (the money sum as a 128-bit integer, see
 * rfm_money.c; the first purchase days inline).  Money is summed exactly,
 * with the same result as sum(numeric).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "day_list.h"
#include "rfm.h"
#include "segment.h"

#define RFM_INLINE_DAYS 16
#define RFM_SERIAL_VERSION 2
#define RFM_RESULT_NATTS 7

typedef struct SegmentRfmState
{
	SegmentMoney money;			/* the sum of the amounts */
	int64		orders;			/* rows seen */
	TimestampTz first_order;
	TimestampTz last_order;
	SegmentDayList days;		/* local purchase dates */
	DateADT		inline_days[RFM_INLINE_DAYS];	/* most customers fit here */
} SegmentRfmState;

PG_FUNCTION_INFO_V1(segment_rfm_trans);
PG_FUNCTION_INFO_V1(segment_rfm_combine);
PG_FUNCTION_INFO_V1(segment_rfm_serial);
PG_FUNCTION_INFO_V1(segment_rfm_deserial);
PG_FUNCTION_INFO_V1(segment_rfm_final);

static SegmentRfmState *
rfm_state_create(MemoryContext aggcontext)
{
	SegmentRfmState *state;

	state = MemoryContextAllocZero(aggcontext, sizeof(SegmentRfmState));
	segment_money_init(&state->money);
	segment_days_init(&state->days, state->inline_days, RFM_INLINE_DAYS);
	return state;
}

/* Make room for "extra" more purchase days. */
static inline void
rfm_reserve_days(SegmentRfmState *state, int32 extra, MemoryContext cxt)
{
	segment_days_reserve(&state->days, state->inline_days, extra, cxt, "customer");
}

static void
rfm_check_amount(Datum amount)
{
	if (!segment_money_is_finite(amount))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order amount must be a finite number"),
				 errdetail("Got %s.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, amount)))));
}

/*
 * rfm transition: add one order; rows with a NULL timestamp or amount are
 * skipped.  An optional fourth argument names the time zone of purchase days.
 */
Datum
segment_rfm_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentRfmState *state;
	TimestampTz ts;
	Datum		amount;
	text	   *zone = NULL;

	aggcontext = segment_aggregate_context(fcinfo);

	state = PG_ARGISNULL(0) ? NULL : (SegmentRfmState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}

	/* rfm(ordered_at, amount, time_zone): purchase days in that zone */
	if (PG_NARGS() > 3)
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("time zone of the rfm aggregate must not be null")));
		zone = PG_GETARG_TEXT_PP(3);
	}
	ts = PG_GETARG_TIMESTAMPTZ(1);
	amount = PG_GETARG_DATUM(2);	/* read in place, see rfm_money.c */
	segment_check_finite(ts, "order timestamp");
	rfm_check_amount(amount);

	if (state == NULL)
	{
		state = rfm_state_create(aggcontext);
		state->first_order = ts;
		state->last_order = ts;
	}
	else
	{
		if (ts < state->first_order)
			state->first_order = ts;
		if (ts > state->last_order)
			state->last_order = ts;
	}
	state->orders++;

	rfm_reserve_days(state, 1, aggcontext);
	state->days.days[state->days.n++] = segment_local_date(ts, fcinfo->flinfo, zone);

	segment_money_add(&state->money, amount, aggcontext);
	PG_RETURN_POINTER(state);
}

/* rfm combine: merge two partial states (parallel query). */
Datum
segment_rfm_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentRfmState *left;
	SegmentRfmState *right;

	aggcontext = segment_aggregate_context(fcinfo);

	left = PG_ARGISNULL(0) ? NULL : (SegmentRfmState *) PG_GETARG_POINTER(0);
	right = PG_ARGISNULL(1) ? NULL : (SegmentRfmState *) PG_GETARG_POINTER(1);
	if (right == NULL)
	{
		if (left == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(left);
	}

	if (left == NULL)
	{
		/* copy, never adopt: the right state belongs to someone else */
		left = rfm_state_create(aggcontext);
		left->first_order = right->first_order;
		left->last_order = right->last_order;
	}
	else
	{
		left->first_order = Min(left->first_order, right->first_order);
		left->last_order = Max(left->last_order, right->last_order);
	}
	left->orders += right->orders;

	segment_days_append(&left->days, left->inline_days, &right->days, aggcontext, "customer");

	segment_money_combine(&left->money, &right->money, aggcontext);
	PG_RETURN_POINTER(left);
}

/*
 * rfm serial: a versioned byte layout (version, orders, first, last, number
 * of distinct days, the days, then the money sum, see rfm_money.c).
 */
Datum
segment_rfm_serial(PG_FUNCTION_ARGS)
{
	SegmentRfmState *state;
	StringInfoData buf;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentRfmState *) PG_GETARG_POINTER(0);

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, RFM_SERIAL_VERSION);
	pq_sendint64(&buf, state->orders);
	pq_sendint64(&buf, state->first_order);
	pq_sendint64(&buf, state->last_order);
	segment_days_send(&buf, &state->days);
	segment_money_serialize(&buf, &state->money);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* rfm deserial: read what segment_rfm_serial wrote, validating every length. */
Datum
segment_rfm_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	SegmentRfmState *state;
	int32		ndays;
	int32		i;

	(void) segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));

	if (segment_read_byte(&buf) != RFM_SERIAL_VERSION)
		segment_corrupt_state("rfm", "Unknown format version.");

	/*
	 * Only the combine function reads a deserialized state, and it copies it:
	 * the state belongs in the per-tuple memory, not the aggregate context.
	 */
	state = rfm_state_create(CurrentMemoryContext);
	state->orders = segment_read_int64(&buf);
	state->first_order = segment_read_int64(&buf);
	state->last_order = segment_read_int64(&buf);
	ndays = segment_read_int32(&buf);
	if (state->orders < 1 || state->first_order > state->last_order ||
		ndays < 1 || ndays > state->orders ||
		(Size) ndays > (Size) (buf.len - buf.cursor) / sizeof(int32))
		segment_corrupt_state("rfm", "Counts or timestamps out of range.");

	rfm_reserve_days(state, ndays, CurrentMemoryContext);
	for (i = 0; i < ndays; i++)
		state->days.days[i] = segment_read_int32(&buf);
	state->days.n = ndays;

	if (!segment_money_deserialize(&buf, &state->money, CurrentMemoryContext) || !state->money.any)
		segment_corrupt_state("rfm", "Invalid money sum.");
	segment_read_end(&buf);
	PG_RETURN_POINTER(state);
}

/*
 * The segment.rfm_summary composite of a customer's figures: also what
 * refresh_figures() (src/refresh_figures.c) returns, which must be equal.
 */
Datum
segment_rfm_summary(TupleDesc tupdesc, TimestampTz first_order, TimestampTz last_order,
					int64 orders, int32 ndays, const SegmentMoney *money)
{
	Datum		values[RFM_RESULT_NATTS];
	bool		nulls[RFM_RESULT_NATTS] = {0};

	if (tupdesc->natts != RFM_RESULT_NATTS)
		elog(ERROR, "segment.rfm_summary has %d attributes, expected %d",
			 tupdesc->natts, RFM_RESULT_NATTS);
	values[0] = TimestampTzGetDatum(first_order);
	values[1] = TimestampTzGetDatum(last_order);
	values[2] = Int64GetDatum(orders);
	values[3] = Int32GetDatum(ndays);
	/* the mean as avg(numeric) computes it: the sum divided by the count */
	values[4] = segment_money_sum(money, &nulls[4]);
	if (nulls[4])
		nulls[5] = true;
	else
		values[5] = DirectFunctionCall2(numeric_div, values[4],
										DirectFunctionCall1(int8_numeric,
															Int64GetDatum(orders)));
	if (ndays > 1)
		values[6] = Float8GetDatum((double) (last_order - first_order) /
								   USECS_PER_DAY / (ndays - 1));
	else
		nulls[6] = true;

	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/*
 * rfm final: the segment.rfm_summary composite.  Reads the state without
 * changing it, so it may be called more than once on the same state.
 */
Datum
segment_rfm_final(PG_FUNCTION_ARGS)
{
	SegmentRfmState *state;
	TupleDesc	tupdesc;
	DateADT    *days;
	int32		ndays;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SegmentRfmState *) PG_GETARG_POINTER(0);

	tupdesc = segment_result_tupdesc(fcinfo, RFM_RESULT_NATTS, "segment.rfm_summary");

	days = segment_days_distinct(&state->days, &ndays);
	pfree(days);

	PG_RETURN_DATUM(segment_rfm_summary(tupdesc, state->first_order, state->last_order,
										state->orders, ndays, &state->money));
}
