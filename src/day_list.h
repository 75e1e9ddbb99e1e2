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

#endif							/* DAY_LIST_H */
