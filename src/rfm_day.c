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
#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "rfm.h"

#define DAY_CACHE_PERIODS 32

typedef struct DayPeriod
{
	TimestampTz lo;				/* known to have this offset: [lo, hi) */
	TimestampTz hi;				/* the next transition, or DT_NOEND */
	int64		offset;			/* UTC offset, microseconds */
} DayPeriod;

struct SegmentDayCache
{
	const pg_tz *tz;			/* the zone the periods belong to */
	char		zone[TZ_STRLEN_MAX + 1];	/* an explicit zone's name, as given */
	const pg_tz *zone_tz;		/* and the zone it names */
	int			nperiods;
	int			next;			/* round-robin slot to replace when full */
	DayPeriod	periods[DAY_CACHE_PERIODS];
};

typedef struct SegmentDayCache DayCache;

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

/* The zone a time zone name (as SET TimeZone takes it) stands for, or an error. */
static const pg_tz *
day_zone(DayCache *cache, text *zone)
{
	int			len = VARSIZE_ANY_EXHDR(zone);
	char		name[TZ_STRLEN_MAX + 1];
	const pg_tz *tz;

	if (cache->zone_tz != NULL && (int) strlen(cache->zone) == len &&
		memcmp(cache->zone, VARDATA_ANY(zone), len) == 0)
		return cache->zone_tz;
	if (len > TZ_STRLEN_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone name too long")));
	memcpy(name, VARDATA_ANY(zone), len);
	name[len] = '\0';
	tz = pg_tzset(name);
	if (tz == NULL || len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", name),
				 errhint("Use a name of pg_timezone_names, or the value of current_setting('TimeZone').")));
	strcpy(cache->zone, name);
	cache->zone_tz = tz;
	return tz;
}

/* A cache of zone offset periods, in mcxt (it lives as long as the query). */
SegmentDayCache *
segment_day_cache_create(MemoryContext mcxt)
{
	return MemoryContextAllocZero(mcxt, sizeof(DayCache));
}

/* segment_day_cache_date with the cache in flinfo->fn_extra. */
DateADT
segment_local_date(TimestampTz ts, FmgrInfo *flinfo, text *zone)
{
	if (flinfo->fn_extra == NULL)
		flinfo->fn_extra = segment_day_cache_create(flinfo->fn_mcxt);
	return segment_day_cache_date((DayCache *) flinfo->fn_extra, ts, zone);
}

/*
 * The date of ts in a time zone, equal to timestamptz_date(ts) under that
 * TimeZone: zone is a name as SET TimeZone takes it, or NULL for the
 * session's.  ts must be finite.
 */
DateADT
segment_day_cache_date(SegmentDayCache *cache, TimestampTz ts, text *zone)
{
	const pg_tz *tz;
	int			i;

	tz = zone ? day_zone(cache, zone) : session_timezone;
	if (cache->tz != tz)
	{
		/* another zone (SET TimeZone in the middle of a query): start afresh */
		cache->tz = tz;
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

/*
 * The type segment.time_zone: a time zone name, checked when it is read.
 * The aggregates take the zone as this type rather than text because text
 * is collatable, and postgres_fdw ships no aggregate with a collatable
 * argument that does not come from a column; its layout is text's.
 */
PG_FUNCTION_INFO_V1(segment_time_zone_in);
PG_FUNCTION_INFO_V1(segment_time_zone_out);

Datum
segment_time_zone_in(PG_FUNCTION_ARGS)
{
	char	   *name = PG_GETARG_CSTRING(0);

	if (strlen(name) > TZ_STRLEN_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone name too long")));
	if (name[0] == '\0' || pg_tzset(name) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", name),
				 errhint("Use a name of pg_timezone_names, or the value of current_setting('TimeZone').")));
	PG_RETURN_TEXT_P(cstring_to_text(name));
}

Datum
segment_time_zone_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(text_to_cstring(PG_GETARG_TEXT_PP(0)));
}
