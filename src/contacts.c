/*
 * contacts.c
 *	  The per-customer contacts(opened_at, negative, as_of, window) aggregate
 *	  over a shop's support contacts (tickets, calls, chats).
 *
 * Plain SQL could compute the same figures with five FILTER aggregates, but
 * each would repeat the window bounds and the NULL and future rules; one
 * aggregate keeps them in one place, the same as for events (activity.c),
 * and costs one transition call per row instead of five.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/timestamp.h"

#include "activity.h"

#define CONTACTS_SERIAL_VERSION 1
#define CONTACTS_RESULT_NATTS 9

typedef struct SegmentContactState
{
	SegmentWindow w;
	int64		contacts;		/* window counts */
	int64		negative;
	int64		unrated;		/* negative flag NULL */
	int64		future;			/* after as_of */
	TimestampTz first_contact;	/* at or before as_of */
	TimestampTz last_contact;
	TimestampTz last_negative;
} SegmentContactState;

PG_FUNCTION_INFO_V1(segment_contacts_trans);
PG_FUNCTION_INFO_V1(segment_contacts_combine);
PG_FUNCTION_INFO_V1(segment_contacts_serial);
PG_FUNCTION_INFO_V1(segment_contacts_deserial);
PG_FUNCTION_INFO_V1(segment_contacts_final);

static SegmentContactState *
contacts_state_create(MemoryContext aggcontext)
{
	SegmentContactState *state = MemoryContextAllocZero(aggcontext, sizeof(SegmentContactState));

	state->first_contact = ACTIVITY_NONE_MIN;
	state->last_contact = ACTIVITY_NONE_MAX;
	state->last_negative = ACTIVITY_NONE_MAX;
	return state;
}

/*
 * contacts transition: arguments opened_at, negative, as_of, window.  Rows
 * with a NULL opened_at are skipped; a NULL negative flag is a contact that
 * is neither negative nor not (counted as unrated).
 */
Datum
segment_contacts_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentContactState *state;
	TimestampTz ts;
	bool		in_window;

	aggcontext = segment_aggregate_context(fcinfo);

	state = PG_ARGISNULL(0) ? NULL : (SegmentContactState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	ts = PG_GETARG_TIMESTAMPTZ(1);
	segment_check_finite(ts, "contact timestamp");
	if (state == NULL)
	{
		state = contacts_state_create(aggcontext);
		segment_window_init(&state->w, fcinfo, 3, 4);
	}
	else
		segment_window_check(&state->w, fcinfo, 3, 4);

	if (ts > state->w.as_of)
	{
		state->future++;
		PG_RETURN_POINTER(state);
	}
	if (ts < state->first_contact)
		state->first_contact = ts;
	if (ts > state->last_contact)
		state->last_contact = ts;
	in_window = ts > state->w.start;
	state->contacts += in_window;
	if (PG_ARGISNULL(2))
		state->unrated += in_window;
	else if (PG_GETARG_BOOL(2))
	{
		state->negative += in_window;
		if (ts > state->last_negative)
			state->last_negative = ts;
	}
	PG_RETURN_POINTER(state);
}

/* contacts combine: merge two partial states (parallel query). */
Datum
segment_contacts_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentContactState *left;
	SegmentContactState *right;

	aggcontext = segment_aggregate_context(fcinfo);
	left = PG_ARGISNULL(0) ? NULL : (SegmentContactState *) PG_GETARG_POINTER(0);
	right = PG_ARGISNULL(1) ? NULL : (SegmentContactState *) PG_GETARG_POINTER(1);
	if (right == NULL)
	{
		if (left == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(left);
	}
	if (left == NULL)
	{
		left = contacts_state_create(aggcontext);
		*left = *right;
		PG_RETURN_POINTER(left);
	}
	segment_window_check_same(&left->w, &right->w);
	left->contacts += right->contacts;
	left->negative += right->negative;
	left->unrated += right->unrated;
	left->future += right->future;
	left->first_contact = Min(left->first_contact, right->first_contact);
	left->last_contact = Max(left->last_contact, right->last_contact);
	left->last_negative = Max(left->last_negative, right->last_negative);
	PG_RETURN_POINTER(left);
}

/* contacts serial: version, window, the four counts, the three timestamps. */
Datum
segment_contacts_serial(PG_FUNCTION_ARGS)
{
	SegmentContactState *state;
	StringInfoData buf;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentContactState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, CONTACTS_SERIAL_VERSION);
	segment_window_send(&buf, &state->w);
	pq_sendint64(&buf, state->contacts);
	pq_sendint64(&buf, state->negative);
	pq_sendint64(&buf, state->unrated);
	pq_sendint64(&buf, state->future);
	pq_sendint64(&buf, state->first_contact);
	pq_sendint64(&buf, state->last_contact);
	pq_sendint64(&buf, state->last_negative);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* contacts deserial: read what segment_contacts_serial wrote, validating it. */
Datum
segment_contacts_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	StringInfoData buf;
	SegmentContactState *state;

	aggcontext = segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));
	if (segment_read_byte(&buf) != CONTACTS_SERIAL_VERSION)
		segment_corrupt_state("contacts", "Unknown format version.");
	state = contacts_state_create(aggcontext);
	segment_window_recv(&buf, &state->w);
	state->contacts = segment_read_int64(&buf);
	state->negative = segment_read_int64(&buf);
	state->unrated = segment_read_int64(&buf);
	state->future = segment_read_int64(&buf);
	state->first_contact = segment_read_int64(&buf);
	state->last_contact = segment_read_int64(&buf);
	state->last_negative = segment_read_int64(&buf);
	segment_read_end(&buf);
	if (state->contacts < 0 || state->negative < 0 || state->unrated < 0 || state->future < 0 ||
		state->negative + state->unrated > state->contacts)
		segment_corrupt_state("contacts", "Counts out of range.");
	PG_RETURN_POINTER(state);
}

static inline void
set_time(Datum *values, bool *nulls, int i, TimestampTz ts)
{
	values[i] = TimestampTzGetDatum(ts);
	nulls[i] = TIMESTAMP_NOT_FINITE(ts);
}

/* contacts final: the segment.contact_summary composite (state unchanged). */
Datum
segment_contacts_final(PG_FUNCTION_ARGS)
{
	SegmentContactState *state;
	TupleDesc	tupdesc;
	Datum		values[CONTACTS_RESULT_NATTS];
	bool		nulls[CONTACTS_RESULT_NATTS] = {0};

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SegmentContactState *) PG_GETARG_POINTER(0);
	tupdesc = segment_result_tupdesc(fcinfo, CONTACTS_RESULT_NATTS, "segment.contact_summary");

	segment_window_datums(&state->w, values, nulls);
	values[2] = Int64GetDatum(state->contacts);
	values[3] = Int64GetDatum(state->negative);
	values[4] = Int64GetDatum(state->unrated);
	set_time(values, nulls, 5, state->first_contact);
	set_time(values, nulls, 6, state->last_contact);
	set_time(values, nulls, 7, state->last_negative);
	values[8] = Int64GetDatum(state->future);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
