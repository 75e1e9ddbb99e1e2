/*
 * rfm.h
 *	  Parts of the rfm aggregate's state: the exact money sum (rfm_money.c)
 *	  and local purchase dates (rfm_day.c).
 */
#ifndef SEGMENT_RFM_H
#define SEGMENT_RFM_H

#include "postgres.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "pgtime.h"
#include "utils/date.h"
#include "utils/timestamp.h"

/*
 * An exact sum of numeric amounts: a 128-bit count of 10^-scale units while
 * it fits, else a numeric (see rfm_money.c).
 */
typedef struct SegmentMoney
{
	union
	{
#ifdef HAVE_INT128
		int128		units;		/* the sum times 10^scale, unless is_numeric */
#endif
		Datum		sum;		/* the numeric sum, once is_numeric */
	}			u;
	int16		scale;			/* largest display scale of the amounts */
	bool		is_numeric;
	bool		any;			/* at least one amount was added */
} SegmentMoney;

/* One amount read as a count of 10^-scale units (see segment_amount_decode). */
typedef struct SegmentAmount
{
#ifdef HAVE_INT128
	int128		units;
#endif
	int16		scale;
} SegmentAmount;

extern bool segment_amount_decode(Datum amount, SegmentAmount *out);
extern Datum segment_amount_numeric(const SegmentAmount *amount);
extern void segment_money_add_amount(SegmentMoney *money, const SegmentAmount *amount,
									 MemoryContext mcxt);
extern bool segment_money_is_finite(Datum amount);
extern void segment_money_init(SegmentMoney *money);
extern void segment_money_add(SegmentMoney *money, Datum amount, MemoryContext mcxt);
extern void segment_money_combine(SegmentMoney *money, const SegmentMoney *other,
								  MemoryContext mcxt);
extern Datum segment_money_sum(const SegmentMoney *money, bool *isnull);
extern void segment_money_serialize(StringInfo buf, const SegmentMoney *money);
extern bool segment_money_deserialize(StringInfo buf, SegmentMoney *money, MemoryContext mcxt);

/* The segment.rfm_summary composite of a customer's figures (rfm.c). */
extern Datum segment_rfm_summary(TupleDesc tupdesc, TimestampTz first_order,
								 TimestampTz last_order, int64 orders, int32 ndays,
								 const SegmentMoney *money);

/* Whether a prepared scan reads foreign or custom scans (rfm_scores.c). */
struct _SPI_plan;
extern bool segment_scan_is_remote(struct _SPI_plan *plan);

/*
 * The calendar date of a timestamp in a time zone (a name as SET TimeZone
 * takes it; NULL: the session's), from a cache of the zone's offset periods
 * (rfm_day.c): in flinfo->fn_extra, or one of the caller's.
 */
typedef struct SegmentDayCache SegmentDayCache;
extern DateADT segment_local_date(TimestampTz ts, FmgrInfo *flinfo, text *zone);
extern SegmentDayCache *segment_day_cache_create(MemoryContext mcxt);
extern DateADT segment_day_cache_date(SegmentDayCache *cache, TimestampTz ts, text *zone);

#endif							/* SEGMENT_RFM_H */
