/*
 * day_list.c
 *	  A growable list of purchase days inside an aggregate state.
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "port/pg_bitutils.h"
#include "utils/memutils.h"

#include "day_list.h"

/* days in ascending order, the comparison inlined (qsort()'s call per pair cost more) */
#define ST_SORT sort_days
#define ST_ELEMENT_TYPE DateADT
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/* Sort days[0..n) and drop repeats in place; returns the distinct count. */
static int32
sort_unique_days(DateADT *days, int32 n)
{
	int32		i,
				out = 0;

	if (n <= 1)
		return n;
	sort_days(days, n);
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

/*
 * The window starts (and moves to) this fraction of its width before the
 * day that places it, room for orders stored a little out of time order.
 */
#define DAY_WINDOW_SLACK_DIVISOR 8

/* A window holding just this day. */
void
segment_day_window_init(SegmentDayWindow *window, uint64 *bits, int nwords, DateADT day)
{
	int64		slack = SEGMENT_DAY_WINDOW_BITS(nwords) / DAY_WINDOW_SLACK_DIVISOR;

	memset(bits, 0, nwords * sizeof(uint64));
	/* days of finite timestamps lie far inside int32: no overflow */
	window->base = (DateADT) (day - slack);
	window->earlier = NULL;
	bits[slack >> 6] |= UINT64CONST(1) << (slack & 63);
}

/*
 * Append a day before the window to the earlier list: when the list is
 * full, drop its repeats first and grow it only if it is still more than
 * half full (so that sorting is not repeated on every day).
 */
static void
day_window_add_earlier(SegmentDayWindow *window, DateADT day, MemoryContext cxt)
{
	SegmentEarlierDays *earlier = window->earlier;

	if (earlier == NULL || earlier->n == earlier->max)
	{
		int32		n = 0;
		int64		max = 8;

		if (earlier != NULL)
		{
			n = earlier->n = sort_unique_days(earlier->days, earlier->n);
			max = n <= earlier->max / 2 ? earlier->max : (int64) earlier->max * 2;
		}
		if (earlier == NULL || max != earlier->max)
		{
			SegmentEarlierDays *grown;

			if ((Size) max > (MaxAllocSize - offsetof(SegmentEarlierDays, days)) / sizeof(DateADT))
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many distinct purchase days for one customer")));
			grown = MemoryContextAlloc(cxt, offsetof(SegmentEarlierDays, days) + max * sizeof(DateADT));
			grown->n = n;
			grown->max = (int32) max;
			if (earlier != NULL)
			{
				memcpy(grown->days, earlier->days, n * sizeof(DateADT));
				pfree(earlier);
			}
			window->earlier = earlier = grown;
		}
	}
	earlier->days[earlier->n++] = day;
}

static inline int
day_window_popcount(uint64 word)
{
	int			n = 0;

	while (word != 0)
	{
		word &= word - 1;
		n++;
	}
	return n;
}

/*
 * Move the window forward so that it starts at new_base: the days it
 * leaves go to the earlier list.
 */
static void
day_window_move(SegmentDayWindow *window, uint64 *bits, int nwords, DateADT new_base,
				MemoryContext cxt)
{
	int64		shift = (int64) new_base - window->base;
	int64		width = SEGMENT_DAY_WINDOW_BITS(nwords);
	int64		leaving = Min(shift, width);
	int			w;

	for (w = 0; w * 64 < leaving; w++)
	{
		uint64		word = bits[w];

		if (leaving - w * 64 < 64)
			word &= (UINT64CONST(1) << (leaving - w * 64)) - 1;
		while (word != 0)
		{
			int			bit = pg_rightmost_one_pos64(word);

			word &= word - 1;
			day_window_add_earlier(window, (DateADT) (window->base + w * 64 + bit), cxt);
		}
	}

	if (shift >= width)
		memset(bits, 0, nwords * sizeof(uint64));
	else
	{
		int			words = (int) (shift >> 6);
		int			bitshift = (int) (shift & 63);

		for (w = 0; w < nwords; w++)
		{
			uint64		lo = w + words < nwords ? bits[w + words] : 0;
			uint64		hi = w + words + 1 < nwords ? bits[w + words + 1] : 0;

			bits[w] = bitshift == 0 ? lo : (lo >> bitshift) | (hi << (64 - bitshift));
		}
	}
	window->base = new_base;
}

/*
 * Make *to (bits to_bits) a copy of the set *from (bits from_bits), both
 * of nwords words: the earlier list is copied into cxt.
 */
void
segment_day_window_copy(SegmentDayWindow *to, uint64 *to_bits, const SegmentDayWindow *from,
						const uint64 *from_bits, int nwords, MemoryContext cxt)
{
	to->base = from->base;
	memcpy(to_bits, from_bits, nwords * sizeof(uint64));
	to->earlier = NULL;
	if (from->earlier != NULL)
	{
		Size		size = offsetof(SegmentEarlierDays, days) + from->earlier->max * sizeof(DateADT);

		to->earlier = MemoryContextAlloc(cxt, size);
		memcpy(to->earlier, from->earlier, size);
	}
}

/* Add a day outside the window (segment_day_window_add's slow path). */
void
segment_day_window_add_outside(SegmentDayWindow *window, uint64 *bits, int nwords,
							   DateADT day, MemoryContext cxt)
{
	int64		width = SEGMENT_DAY_WINDOW_BITS(nwords);
	int64		offset;

	if (day < window->base)
	{
		day_window_add_earlier(window, day, cxt);
		return;
	}
	day_window_move(window, bits, nwords,
					(DateADT) (day - width / DAY_WINDOW_SLACK_DIVISOR), cxt);
	offset = (int64) day - window->base;
	bits[offset >> 6] |= UINT64CONST(1) << (offset & 63);
}

/*
 * The number of distinct days in the set (the earlier list's repeats are
 * dropped: it is sorted in place).
 */
int32
segment_day_window_count(SegmentDayWindow *window, const uint64 *bits, int nwords)
{
	int32		n = 0;
	int			w;

	if (window->earlier != NULL)
		n = window->earlier->n = sort_unique_days(window->earlier->days, window->earlier->n);
	for (w = 0; w < nwords; w++)
		n += day_window_popcount(bits[w]);
	return n;
}
