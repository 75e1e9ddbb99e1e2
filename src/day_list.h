/*
 * day_list.h
 *	  A growable list of purchase days inside an aggregate state.
 *
 * The rfm and restock aggregates count distinct purchase days.  Days are
 * appended unsorted (one per row, cheap), repeats are dropped only when the
 * list is full, and the owner keeps a small inline buffer so that most
 * customers never allocate.
 */
#ifndef DAY_LIST_H
#define DAY_LIST_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/date.h"

typedef struct SegmentDayList
{
	int32		n;				/* entries used; unsorted, may repeat */
	int32		max;			/* entries allocated */
	DateADT    *days;			/* the owner's inline buffer, or palloc'd */
} SegmentDayList;

extern void segment_days_init(SegmentDayList *list, DateADT *inline_days, int32 inline_max);
extern void segment_days_reserve(SegmentDayList *list, const DateADT *inline_days,
								 int32 extra, MemoryContext cxt, const char *owner);
extern void segment_days_append(SegmentDayList *list, const DateADT *inline_days,
								const SegmentDayList *other, MemoryContext cxt,
								const char *owner);
extern DateADT *segment_days_distinct(const SegmentDayList *list, int32 *ndistinct);
extern void segment_days_send(StringInfo buf, const SegmentDayList *list);

/*
 * A set of distinct purchase days kept mostly inside a hash-table entry,
 * for an engine that reads every order of a customer one at a time: a
 * bitmap of a window of SEGMENT_DAY_WINDOW_BITS(nwords) days from base
 * (its words, in the entry, are the caller's) and a list of the days
 * before the window.  A shop's orders are mostly stored in the order they
 * were placed, so the window moves forward now and then, and only then are
 * days written to the list: unlike a list of every order's day, most
 * orders touch no memory outside the entry, and the distinct days need no
 * sort.  Any order still gives the exact set: a day before the window is
 * appended to the list, whose repeats are dropped (by a sort) only when it
 * is full, as for SegmentDayList.
 */
typedef struct SegmentEarlierDays
{
	int32		n;				/* entries used; may repeat */
	int32		max;			/* entries allocated */
	DateADT		days[FLEXIBLE_ARRAY_MEMBER];
} SegmentEarlierDays;

typedef struct SegmentDayWindow
{
	DateADT		base;			/* the window's first day */
	SegmentEarlierDays *earlier;	/* days before base, or NULL */
} SegmentDayWindow;

#define SEGMENT_DAY_WINDOW_BITS(nwords) (64 * (int64) (nwords))

extern void segment_day_window_init(SegmentDayWindow *window, uint64 *bits, int nwords,
									DateADT day);
extern void segment_day_window_add_outside(SegmentDayWindow *window, uint64 *bits,
										   int nwords, DateADT day, MemoryContext cxt);
extern int32 segment_day_window_count(SegmentDayWindow *window, const uint64 *bits,
									  int nwords);
extern void segment_day_window_copy(SegmentDayWindow *to, uint64 *to_bits,
									const SegmentDayWindow *from, const uint64 *from_bits,
									int nwords, MemoryContext cxt);

/* Add a day (the fast path: inside the window, one bit). */
static inline void
segment_day_window_add(SegmentDayWindow *window, uint64 *bits, int nwords, DateADT day,
					   MemoryContext cxt)
{
	int64		offset = (int64) day - window->base;

	if (likely(offset >= 0 && offset < SEGMENT_DAY_WINDOW_BITS(nwords)))
		bits[offset >> 6] |= UINT64CONST(1) << (offset & 63);
	else
		segment_day_window_add_outside(window, bits, nwords, day, cxt);
}

#endif							/* DAY_LIST_H */
