/*
 * rfm_day.c
 *	  The local calendar date of an order time, as ordered_at::date gives it,
 *	  for the purchase days of the rfm aggregate.
 *
 * timestamptz -> date runs the time zone library for every value (a search
 * of the zone's transitions, then a calendar conversion).  Between two of the
 * zone's transitions the UTC offset is constant, and a shop's orders fall in
 * a few dozen such periods, so we remember for each period met the offset and
 * the time range already known to be in it: most orders then cost one
 * comparison and a division.  Each range comes from the library itself, from
 * the time looked up to the next transition (pg_next_dst_boundary), and its
 * offset is the one pg_localtime() gives, the function the cast uses.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "rfm.h"

#define DAY_CACHE_PERIODS 32

typedef struct DayPeriod
{
	TimestampTz lo;				/* known to have this offset: [lo, hi) */
	TimestampTz hi;				/* the next transition, or DT_NOEND */
	int64		offset;			/* UTC offset, microseconds */
} DayPeriod;

typedef struct DayCache
{
	const pg_tz *tz;			/* the zone the periods belong to */
	int			nperiods;
	int			next;			/* round-robin slot to replace when full */
	DayPeriod	periods[DAY_CACHE_PERIODS];
} DayCache;

/* Seconds between the Unix and the PostgreSQL epochs. */
#define DAY_EPOCH_SHIFT ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

static inline DateADT
day_of(TimestampTz ts, int64 offset)
{
	int64		local = ts + offset;
	int64		day = local / USECS_PER_DAY;

	if (local % USECS_PER_DAY < 0)
		day--;
	return (DateADT) day;
}

/* The slow path: ask the time zone library, and remember the period. */
static DateADT
day_lookup(DayCache *cache, TimestampTz ts)
{
	int64		secs = ts / USECS_PER_SEC;
	pg_time_t	utime;
	struct pg_tm *tm;
	long int	before_gmtoff;
	long int	after_gmtoff;
	int			before_isdst;
	int			after_isdst;
	pg_time_t	boundary;
	int			found;
	int64		offset;
	TimestampTz hi;
	int			i;
	DayPeriod  *slot;

	/* whole seconds, rounded down, as timestamp2tm() does */
	if (ts % USECS_PER_SEC < 0)
		secs--;
	utime = (pg_time_t) (secs + DAY_EPOCH_SHIFT);
	tm = pg_localtime(&utime, cache->tz);
	if (tm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	offset = (int64) tm->tm_gmtoff * USECS_PER_SEC;

	found = pg_next_dst_boundary(&utime, &before_gmtoff, &before_isdst, &boundary,
								 &after_gmtoff, &after_isdst, cache->tz);
	if (found < 0 || before_gmtoff != tm->tm_gmtoff)
		return day_of(ts, offset);	/* the two disagree: do not remember */
	if (found == 0)
		hi = DT_NOEND;
	else if (boundary - DAY_EPOCH_SHIFT >= PG_INT64_MAX / USECS_PER_SEC)
		hi = DT_NOEND;
	else
		hi = (TimestampTz) (boundary - DAY_EPOCH_SHIFT) * USECS_PER_SEC;

	/* the same period as one we know: extend it down to ts */
	for (i = 0; i < cache->nperiods; i++)
	{
		DayPeriod  *p = &cache->periods[i];

		if (p->hi == hi && p->offset == offset)
		{
			if (ts < p->lo)
				p->lo = ts;
			return day_of(ts, offset);
		}
	}

	if (cache->nperiods < DAY_CACHE_PERIODS)
		slot = &cache->periods[cache->nperiods++];
	else
	{
		slot = &cache->periods[cache->next];
		cache->next = (cache->next + 1) % DAY_CACHE_PERIODS;
	}
	slot->lo = ts;
	slot->hi = hi;
	slot->offset = offset;
	return day_of(ts, offset);
}

/*
 * The date of ts in the session's TimeZone, equal to timestamptz_date(ts).
 * ts must be finite.  The cache lives in flinfo->fn_extra (per query).
 */
DateADT
segment_local_date(TimestampTz ts, FmgrInfo *flinfo)
{
	DayCache   *cache = (DayCache *) flinfo->fn_extra;
	int			i;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(DayCache));
		flinfo->fn_extra = cache;
	}
	if (cache->tz != session_timezone)
	{
		/* SET TimeZone in the middle of a query: start afresh */
		cache->tz = session_timezone;
		cache->nperiods = 0;
		cache->next = 0;
	}
	for (i = 0; i < cache->nperiods; i++)
	{
		DayPeriod  *p = &cache->periods[i];

		if (ts >= p->lo && ts < p->hi)
			return day_of(ts, p->offset);
	}
	return day_lookup(cache, ts);
}
