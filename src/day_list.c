/*
 * day_list.c
 *	  A growable list of purchase days inside an aggregate state.
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "utils/memutils.h"

#include "day_list.h"

static int
day_cmp(const void *a, const void *b)
{
	DateADT		x = *(const DateADT *) a;
	DateADT		y = *(const DateADT *) b;

	return (x > y) - (x < y);
}

/* Sort days[0..n) and drop repeats in place; returns the distinct count. */
static int32
sort_unique_days(DateADT *days, int32 n)
{
	int32		i,
				out = 0;

	if (n <= 1)
		return n;
	qsort(days, n, sizeof(DateADT), day_cmp);
	for (i = 1; i < n; i++)
		if (days[i] != days[out])
			days[++out] = days[i];
	return out + 1;
}

void
segment_days_init(SegmentDayList *list, DateADT *inline_days, int32 inline_max)
{
	list->n = 0;
	list->max = inline_max;
	list->days = inline_days;
}

/*
 * Make room for "extra" more days: drop repeats first, grow only if still
 * full (or more than half full, so that sorting is not repeated on every
 * row).  "owner" names what the days belong to in the error message.
 */
void
segment_days_reserve(SegmentDayList *list, const DateADT *inline_days, int32 extra,
					 MemoryContext cxt, const char *owner)
{
	int32		needed;
	int32		newmax;
	DateADT    *newdays;

	if (list->n + extra <= list->max)
		return;
	list->n = sort_unique_days(list->days, list->n);
	needed = list->n + extra;
	if (needed <= list->max && list->n <= list->max / 2)
		return;

	newmax = Max(list->max * 2, needed);
	if ((Size) newmax > MaxAllocSize / sizeof(DateADT))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct purchase days for one %s", owner)));
	newdays = MemoryContextAlloc(cxt, newmax * sizeof(DateADT));
	memcpy(newdays, list->days, list->n * sizeof(DateADT));
	if (list->days != inline_days)
		pfree(list->days);
	list->days = newdays;
	list->max = newmax;
}

/* Add the days of another list (the combine step). */
void
segment_days_append(SegmentDayList *list, const DateADT *inline_days,
					const SegmentDayList *other, MemoryContext cxt, const char *owner)
{
	segment_days_reserve(list, inline_days, other->n, cxt, owner);
	memcpy(list->days + list->n, other->days, other->n * sizeof(DateADT));
	list->n += other->n;
}

/*
 * The distinct days in order, as a palloc'd copy: serial and final functions
 * must not change the state they are given.
 */
DateADT *
segment_days_distinct(const SegmentDayList *list, int32 *ndistinct)
{
	DateADT    *days = palloc(Max(list->n, 1) * sizeof(DateADT));

	memcpy(days, list->days, list->n * sizeof(DateADT));
	*ndistinct = sort_unique_days(days, list->n);
	return days;
}

/* Serialize: the number of distinct days, then the days in order. */
void
segment_days_send(StringInfo buf, const SegmentDayList *list)
{
	int32		ndays;
	DateADT    *days = segment_days_distinct(list, &ndays);
	int32		i;

	pq_sendint32(buf, ndays);
	for (i = 0; i < ndays; i++)
		pq_sendint32(buf, days[i]);
	pfree(days);
}
