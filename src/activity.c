/*
 * activity.c
 *	  The as_of and window arguments of the per-customer activity aggregates
 *	  (events, contacts) and helpers shared by their C files.
 *
 * as_of and window are ordinary aggregate arguments, so that one GROUP BY
 * query computes every customer's figures for the same moment: the first row
 * of a group fixes them, every other row (and every partial state combined
 * in) must carry the same values.
 */
#include "postgres.h"

#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "activity.h"

/* Fix the window of a group from the arguments of its first row. */
void
segment_window_init(SegmentWindow *w, FunctionCallInfo fcinfo, int as_of_arg, int window_arg)
{
	memset(w, 0, sizeof(SegmentWindow));
	if (PG_ARGISNULL(as_of_arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null"),
				 errhint("Pass the moment the figures are computed for, for example now().")));
	w->as_of = PG_GETARG_TIMESTAMPTZ(as_of_arg);
	segment_check_finite(w->as_of, "as_of");

	w->start = DT_NOBEGIN;
	if (!PG_ARGISNULL(window_arg))
	{
		Interval   *window = PG_GETARG_INTERVAL_P(window_arg);

		w->bounded = true;
		w->window = *window;
		w->start = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														   TimestampTzGetDatum(w->as_of),
														   IntervalPGetDatum(window)));
		if (w->start > w->as_of)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("lookback must not be negative"),
					 errdetail("Got %s.",
							   DatumGetCString(DirectFunctionCall1(interval_out,
																   IntervalPGetDatum(window))))));
		/* an infinite window (PostgreSQL 17) is the whole history */
		if (TIMESTAMP_NOT_FINITE(w->start))
			w->start = DT_NOBEGIN;
	}
}

static void
window_differs(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be the same in every row of a group", what),
			 errhint("Pass a constant, or the same column value for every row of the customer.")));
}

/* Check that a later row of the group has the same as_of and window. */
void
segment_window_check(const SegmentWindow *w, FunctionCallInfo fcinfo, int as_of_arg, int window_arg)
{
	if (PG_ARGISNULL(as_of_arg) || PG_GETARG_TIMESTAMPTZ(as_of_arg) != w->as_of)
		window_differs("as_of");
	if (PG_ARGISNULL(window_arg))
	{
		if (w->bounded)
			window_differs("lookback");
	}
	else
	{
		Interval   *window = PG_GETARG_INTERVAL_P(window_arg);

		if (!w->bounded || window->time != w->window.time ||
			window->day != w->window.day || window->month != w->window.month)
			window_differs("lookback");
	}
}

/* Check that two partial states were computed for the same as_of and window. */
void
segment_window_check_same(const SegmentWindow *a, const SegmentWindow *b)
{
	if (a->as_of != b->as_of)
		window_differs("as_of");
	if (a->bounded != b->bounded || a->start != b->start)
		window_differs("lookback");
}

void
segment_window_send(StringInfo buf, const SegmentWindow *w)
{
	pq_sendint64(buf, w->as_of);
	pq_sendint64(buf, w->start);
	pq_sendbyte(buf, w->bounded ? 1 : 0);
	pq_sendint64(buf, w->window.time);
	pq_sendint32(buf, w->window.day);
	pq_sendint32(buf, w->window.month);
}

void
segment_window_recv(StringInfo buf, SegmentWindow *w)
{
	int			bounded;

	w->as_of = segment_read_int64(buf);
	w->start = segment_read_int64(buf);
	bounded = segment_read_byte(buf);
	w->window.time = segment_read_int64(buf);
	w->window.day = segment_read_int32(buf);
	w->window.month = segment_read_int32(buf);
	if ((bounded != 0 && bounded != 1) || TIMESTAMP_NOT_FINITE(w->as_of) ||
		w->start > w->as_of || (bounded == 0 && w->start != DT_NOBEGIN))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid serialized window"),
				 errdetail_internal("as_of or window start out of range.")));
	w->bounded = bounded == 1;
}

/* as_of and window_start, the first two fields of the summaries. */
void
segment_window_datums(const SegmentWindow *w, Datum *values, bool *nulls)
{
	values[0] = TimestampTzGetDatum(w->as_of);
	nulls[0] = false;
	values[1] = TimestampTzGetDatum(w->start);
	nulls[1] = TIMESTAMP_IS_NOBEGIN(w->start);
}
