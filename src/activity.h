/*
 * activity.h
 *	  The as_of and window arguments shared by the per-customer activity
 *	  aggregates (events, contacts), and small helpers for their states.
 */
#ifndef SEGMENT_ACTIVITY_H
#define SEGMENT_ACTIVITY_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

#include "segment.h"

/* "No such event yet" markers; input timestamps are finite, so never equal. */
#define ACTIVITY_NONE_MAX	DT_NOBEGIN	/* for a latest time */
#define ACTIVITY_NONE_MIN	DT_NOEND	/* for an earliest time */

/*
 * The reference time and window of one group: rows after as_of are counted
 * as future and otherwise ignored; the window counts take the rows in
 * (start, as_of].  start is DT_NOBEGIN for a NULL (unbounded) window.
 */
typedef struct SegmentWindow
{
	TimestampTz as_of;
	TimestampTz start;
	bool		bounded;		/* a window was given */
	Interval	window;			/* as given, to check the next rows */
} SegmentWindow;

extern void segment_window_init(SegmentWindow *w, FunctionCallInfo fcinfo,
								int as_of_arg, int window_arg);
extern void segment_window_check(const SegmentWindow *w, FunctionCallInfo fcinfo,
								 int as_of_arg, int window_arg);
extern void segment_window_check_same(const SegmentWindow *a, const SegmentWindow *b);
extern void segment_window_send(StringInfo buf, const SegmentWindow *w);
extern void segment_window_recv(StringInfo buf, SegmentWindow *w);
extern void segment_window_datums(const SegmentWindow *w, Datum *values, bool *nulls);


#endif							/* SEGMENT_ACTIVITY_H */
