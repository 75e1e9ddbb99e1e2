/*
 * refresh_figures.c
 *	  refresh_figures(): step 1 of a full refresh, the per-customer figures
 *	  of the kept orders (segment.rfm_summary and the discounted-order count),
 *	  equal to what segment_internal.figures_sql()'s GROUP BY returns.
 *
 * The engine of rfm_figures() (src/rfm_scores.c) extended to the refresh's
 * figures: one hash table of our own fed straight from an SPI scan, a
 * customer's key and figures together in one aligned 128-byte entry (two
 * adjacent cache lines, fetched together) with its purchase days as bits
 * of a window of days (src/day_list.c: an order in time order touches no
 * other memory, and counting the distinct days needs no sort), orders of
 * customers past the hash memory limit spilled to files partitioned by
 * hash.  The figures are those of the rfm aggregate computed the same way
 * (src/rfm_money.c, src/rfm_day.c, src/day_list.c) and turned into a
 * composite by the same function (segment_rfm_summary()).
 *
 * With a time unit of lifetime value (the variant with clv_time_unit), it
 * also gives the columns of segment.clv_summary (x, t_x, t_cal, mean_value)
 * of the orders that are purchases (amount >= 0), as refresh_run()'s
 * clv_summary(...) FILTER (WHERE amount >= 0) does, from a few figures per
 * customer rather than a list of its purchases: the purchase periods as a
 * set (a window of bits, as the days), the first and last, and the exact
 * sums of the first period's amounts and of the later ones'; the aggregate
 * sums exactly too (src/clv_exact_sum.c), so the floats are the same
 * (clv_summary_of() of src/clv_summary.c) whatever order the orders come in.
 *
 * With the models' settings too (the variant with nineteen arguments), once
 * every customer is in the table it fits BG/NBD and Gamma-Gamma over their
 * summaries and writes each customer's predictions with its row
 * (src/refresh_clv.c); not after a spill to disk, when the table no longer
 * holds every customer.
 *
 * Over foreign or custom scans (postgres_fdw shards, Citus) the GROUP BY with
 * the rfm (and clv_summary) aggregate is run instead, which the shards run.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "clv.h"
#include "customer_hash.h"
#include "day_list.h"
#include "refresh_clv.h"
#include "rfm.h"
#include "segment.h"

#define REFRESH_NATTS 3			/* customer_id, s, discounted */
#define REFRESH_CLV_NATTS 7		/* and clv_x, clv_t_x, clv_t_cal, clv_mean_value */
#define REFRESH_FIT_NATTS 10	/* and p_alive, expected_purchases, clv */
#define REFRESH_SCAN_NATTS 4	/* key, ordered_at, amount, discounted */
#define REFRESH_SPILL_BITS 4
#define REFRESH_SPILL_PARTS (1 << REFRESH_SPILL_BITS)
#define REFRESH_MIN_ENTRIES 1024
#define REFRESH_LINE 128
#define REFRESH_BATCH 32
#define REFRESH_EMIT_BATCH 32
#define REFRESH_DAY_WORDS 5		/* a window of 320 purchase days */
#define REFRESH_CLV_DAY_WORDS 4	/* with lifetime value, 256 days and its figures */
#define REFRESH_CLV_PERIOD_WORDS 4	/* a window of 256 purchase periods */

PG_FUNCTION_INFO_V1(segment_refresh_figures);

/*
 * A customer's purchases as clv_summary_of() takes them, outside the entry
 * (in the keys context, made at the first purchase): purchase periods are
 * numbered by clv_summary_period().  One cache line, read at every purchase:
 * the first and last periods live in the sums' spare words.
 *
 * Periods of a day are the purchase days; while every order of the customer
 * is a purchase (no refund), those are the entry's days, and the set is not
 * kept twice (a second set costs a pass over long lists of earlier days, and
 * cache misses, for nothing).  Otherwise (refresh_own_periods()) the
 * purchases are a RefreshClvPeriods, with a set of their own; the first
 * refund moves them to one and copies the days there, before its day is
 * counted.
 */
typedef struct RefreshClv
{
	ClvExactSum first_sum;		/* the amounts of the first period */
	ClvExactSum later_sum;		/* of the later ones */
} RefreshClv;

#define REFRESH_CLV_FIRST(p) ((p)->first_sum.spare) /* the first period */
#define REFRESH_CLV_LAST(p) ((p)->later_sum.spare)	/* the last period */

typedef struct RefreshClvPeriods
{
	RefreshClv	sums;
	SegmentDayWindow periods;	/* the set of periods, and its bits: */
	uint64		period_bits[REFRESH_CLV_PERIOD_WORDS];
} RefreshClvPeriods;

/* slots cut from blocks at cache-line boundaries */
#define REFRESH_CLV_SLOT(type) ((ssize_t) TYPEALIGN(64, sizeof(type)))
#define REFRESH_CLV_BLOCK ((ssize_t) 64 * 1024)	/* the first; they double */
#define REFRESH_CLV_MAX_BLOCK ((ssize_t) 4 * 1024 * 1024)	/* huge pages */

/* One customer: key and figures in two adjacent cache lines. */
typedef struct RefreshEntry
{
	Datum		key;			/* by value, or a copy in the keys context */
	int64		orders;
	TimestampTz first_order;
	TimestampTz last_order;
	SegmentMoney money;
	int64		discounted;
	uint32		hash;
	char		status;			/* simplehash's */
	bool		refunds;		/* with lifetime value: an order not a purchase */
	SegmentDayWindow days;		/* local purchase dates, and the bits: */
	union
	{
		uint64		day_bits[REFRESH_DAY_WORDS];
		struct
		{
			uint64		day_bits[REFRESH_CLV_DAY_WORDS];
			RefreshClv *purchases;	/* NULL before the first */
		}			clv;
	}			u;
} RefreshEntry;

/* A buffered order (integer key, amount read as units). */
typedef struct RefreshRow
{
	Datum		key;
	uint32		hash;
	bool		discounted;
	bool		purchase;		/* with lifetime value: amount >= 0 */
	TimestampTz ts;
	double		value;			/* the purchase's amount as clv_summary reads it */
	SegmentAmount amount;
} RefreshRow;

struct RefreshState;

#define SH_PREFIX refresh
#define SH_ELEMENT_TYPE RefreshEntry
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) refresh_hash_key((struct RefreshState *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) refresh_equal_keys((struct RefreshState *) (tb)->private_data, a, b)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DECLARE
#include "lib/simplehash.h"

typedef struct RefreshState
{
	SegmentCustomerKey key;

	text	   *zone;			/* of purchase days */
	SegmentDayCache *day_cache;
	int			day_words;		/* of an entry's window of days */

	bool		clv;			/* the clv_summary columns too */
	double		clv_unit;		/* days per time unit and purchase period */
	bool		clv_days;		/* periods of a day: RefreshClv may share the days */
	double		clv_as_of_day;
	Datum		zero;			/* numeric 0 */
	RefreshClvModels *models;	/* the models fitted here too, or NULL */
	ClvSummary *summaries;		/* the fits' pass's, in the table's order; x -1: none */
	int64		nsummaries;
	int64		next_summary;	/* the next one to write out */

	refresh_hash *table;
	Size		memory_limit;
	MemoryContext table_cxt;	/* the table's array */
	MemoryContext keys_cxt;		/* by-reference keys, numeric sums, day lists */
	char	   *purchases_next; /* free RefreshClv slots in keys_cxt */
	char	   *purchases_end;
	ssize_t		purchases_block;	/* the size of the next block */
	MemoryContext row_cxt;		/* reset per output row */
	MemoryContext scan_cxt;		/* reset per input row */

	RefreshRow	batch[REFRESH_BATCH];
	int			nbatch;

	TupleDesc	input_desc;
	Tuplestorestate *spill[REFRESH_SPILL_PARTS];
	int			level;
	bool		full;
	bool		spilled;

	bool		no_discount;	/* none configured: discounted is NULL */
	Tuplestorestate *result;
	TupleDesc	result_desc;
	TupleDesc	summary_desc;	/* segment.rfm_summary */
} RefreshState;

static inline uint32
refresh_hash_key(RefreshState *rs, Datum key)
{
	return segment_customer_key_hash(&rs->key, key);
}

static inline bool
refresh_equal_keys(RefreshState *rs, Datum a, Datum b)
{
	return segment_customer_key_equal(&rs->key, a, b);
}

static inline void *
refresh_allocate(refresh_hash *tb, Size size)
{
	return segment_aligned_alloc(tb->ctx, size, REFRESH_LINE);
}

static inline void
refresh_free(refresh_hash *tb, void *pointer)
{
	segment_aligned_free(pointer);
}

#define SH_PREFIX refresh
#define SH_ELEMENT_TYPE RefreshEntry
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) refresh_hash_key((struct RefreshState *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) refresh_equal_keys((struct RefreshState *) (tb)->private_data, a, b)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DEFINE
#include "lib/simplehash.h"

StaticAssertDecl(sizeof(RefreshEntry) <= REFRESH_LINE,
				 "a customer's entry must fit in two cache lines");
StaticAssertDecl(offsetof(RefreshEntry, u.clv.day_bits) == offsetof(RefreshEntry, u.day_bits),
				 "the window's bits start at the same place with lifetime value");
StaticAssertDecl(sizeof(RefreshClv) <= 64, "a customer's purchases must fit in a cache line");

static void
refresh_table_create(RefreshState *rs)
{
	MemoryContextReset(rs->table_cxt);
	MemoryContextReset(rs->keys_cxt);
	rs->purchases_next = rs->purchases_end = NULL;
	rs->purchases_block = REFRESH_CLV_BLOCK;
	rs->table = refresh_create(rs->table_cxt, REFRESH_MIN_ENTRIES, rs);
	rs->full = false;
}

static inline bool
refresh_over_limit(RefreshState *rs)
{
	refresh_hash *tb = rs->table;

	/*
	 * Once every hash bit partitions the spill files, customers whose hashes
	 * collide (chosen keys can) stay in the table past the limit, as a hash
	 * aggregate's last partition does: a deeper spill would not split them.
	 */
	if ((rs->level + 2) * REFRESH_SPILL_BITS > 32)
		return false;
	return tb->members >= REFRESH_MIN_ENTRIES &&
		(Size) tb->size * sizeof(RefreshEntry) +
		MemoryContextMemAllocated(rs->keys_cxt, true) > rs->memory_limit;
}

static void
refresh_spill(RefreshState *rs, uint32 hash, Datum *values)
{
	int			part = (hash >> (32 - (rs->level + 1) * REFRESH_SPILL_BITS)) &
		(REFRESH_SPILL_PARTS - 1);
	bool		nulls[REFRESH_SCAN_NATTS] = {false, false, false, false};

	if (rs->spill[part] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(rs->table_cxt->parent);

		rs->spill[part] = tuplestore_begin_heap(false, false, 64);
		MemoryContextSwitchTo(old);
	}
	tuplestore_putvalues(rs->spill[part], rs->input_desc, values, nulls);
}

/* Orders with a time or an amount the rfm aggregate would refuse. */
static inline void
refresh_check(Datum *values)
{
	segment_check_finite(DatumGetTimestampTz(values[1]), "order timestamp");
	if (!segment_money_is_finite(values[2]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order amount must be a finite number"),
				 errdetail("Got %s.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, values[2])))));
}

/*
 * A new slot of size bytes (a multiple of 64) in keys_cxt: cut from blocks
 * at cache-line boundaries, so that each spans as few lines as it can (a
 * palloc'd one, behind its chunk header, straddles one more; each line is a
 * cache miss per order).  The blocks double up to 4 MB, which are asked
 * for huge pages as the table's array is (segment_aligned_alloc()): a
 * shop's purchases are read at random too.
 */
static void *
refresh_new_slot(RefreshState *rs, ssize_t size)
{
	void	   *p;

	if (rs->purchases_next == NULL || rs->purchases_end - rs->purchases_next < size)
	{
		rs->purchases_next = segment_aligned_alloc(rs->keys_cxt, rs->purchases_block, 64);
		rs->purchases_end = rs->purchases_next + rs->purchases_block;
		rs->purchases_block = Min(2 * rs->purchases_block, REFRESH_CLV_MAX_BLOCK);
	}
	p = rs->purchases_next;
	rs->purchases_next += size;
	return p;
}

/*
 * Whether the customer's purchases keep their own set of periods (are a
 * RefreshClvPeriods): periods longer than a day, or an order that is not a
 * purchase.
 */
static inline bool
refresh_own_periods(const RefreshState *rs, const RefreshEntry *entry)
{
	return !rs->clv_days || entry->refunds;
}

/*
 * Count a purchase (day, amount) of the customer in, after its day was
 * added to the entry's days.
 */
static void
refresh_clv_add(RefreshState *rs, RefreshEntry *entry, DateADT day, double value)
{
	RefreshClv *p = entry->u.clv.purchases;
	int32		period = (int32) clv_summary_period(day, rs->clv_unit);

	if (p == NULL)
	{
		if (refresh_own_periods(rs, entry))
		{
			RefreshClvPeriods *own = refresh_new_slot(rs, REFRESH_CLV_SLOT(RefreshClvPeriods));

			segment_day_window_init(&own->periods, own->period_bits, REFRESH_CLV_PERIOD_WORDS,
									period);
			p = &own->sums;
		}
		else
			p = refresh_new_slot(rs, REFRESH_CLV_SLOT(RefreshClv));
		entry->u.clv.purchases = p;
		clv_exact_init(&p->first_sum);
		clv_exact_init(&p->later_sum);
		REFRESH_CLV_FIRST(p) = REFRESH_CLV_LAST(p) = period;
		clv_exact_add(&p->first_sum, value, rs->keys_cxt);
		return;
	}
	if (period < REFRESH_CLV_FIRST(p))
	{
		/* an earlier first period: the one so far becomes a later one */
		clv_exact_merge(&p->later_sum, &p->first_sum, rs->keys_cxt);
		clv_exact_reset(&p->first_sum);
		REFRESH_CLV_FIRST(p) = period;
	}
	if (period == REFRESH_CLV_FIRST(p))
		clv_exact_add(&p->first_sum, value, rs->keys_cxt);
	else
		clv_exact_add(&p->later_sum, value, rs->keys_cxt);
	if (period > REFRESH_CLV_LAST(p))
		REFRESH_CLV_LAST(p) = period;
	if (refresh_own_periods(rs, entry))
	{
		RefreshClvPeriods *own = (RefreshClvPeriods *) p;

		segment_day_window_add(&own->periods, own->period_bits, REFRESH_CLV_PERIOD_WORDS,
							   period, rs->keys_cxt);
	}
}

/*
 * An order of the customer that is not a purchase, before its day is added
 * to the entry's days: from now on the purchases keep their own periods.
 */
static inline void
refresh_clv_refund(RefreshState *rs, RefreshEntry *entry)
{
	RefreshClv *p = entry->u.clv.purchases;
	bool		shared = !refresh_own_periods(rs, entry);

	if (entry->refunds)
		return;
	entry->refunds = true;
	if (p != NULL && shared)
	{
		RefreshClvPeriods *own = refresh_new_slot(rs, REFRESH_CLV_SLOT(RefreshClvPeriods));

		StaticAssertStmt(REFRESH_CLV_PERIOD_WORDS == REFRESH_CLV_DAY_WORDS,
						 "the periods of a day copy the entry's days");
		own->sums = *p;			/* the sums' limbs, if any, move along */
		segment_day_window_copy(&own->periods, own->period_bits, &entry->days,
								entry->u.clv.day_bits, REFRESH_CLV_PERIOD_WORDS, rs->keys_cxt);
		entry->u.clv.purchases = &own->sums;
	}
}

/*
 * Whether an order is a purchase of lifetime value (refunds, negative
 * amounts, are not: clv_summary(...) FILTER (WHERE amount >= 0)), and then
 * its amount as clv_summary reads it.  decoded: amount read as units, or NULL.
 */
static inline bool
refresh_purchase(RefreshState *rs, Datum amount, const SegmentAmount *decoded, double *value)
{
	*value = 0;
	if (!rs->clv)
		return false;
#ifdef HAVE_INT128
	if (decoded != NULL)
	{
		if (decoded->units < 0)
			return false;
		*value = clv_summary_decoded_amount(decoded, amount);
		if (unlikely(!isfinite(*value)))
			clv_check_finite(*value, "order amount");
		return true;
	}
#endif
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, amount, rs->zero)) < 0)
		return false;
	*value = clv_summary_amount(amount);
	clv_check_finite(*value, "order amount");
	return true;
}

/*
 * The customer's entry with this order counted in, except for the amount;
 * NULL when the table is full and the customer is not in it.
 */
static inline RefreshEntry *
refresh_count(RefreshState *rs, Datum key, uint32 hash, TimestampTz ts, bool discounted,
			  bool purchase, double value)
{
	RefreshEntry *entry;
	bool		found;
	DateADT		day;

	if (unlikely(rs->full))
	{
		entry = refresh_lookup_hash(rs->table, key, hash);
		if (entry == NULL)
			return NULL;
		found = true;
	}
	else
		entry = refresh_insert_hash(rs->table, key, hash, &found);

	day = segment_day_cache_date(rs->day_cache, ts, rs->zone);
	if (!found)
	{
		entry->key = segment_customer_key_copy(&rs->key, key, rs->keys_cxt);
		entry->orders = 1;
		entry->discounted = discounted ? 1 : 0;
		entry->first_order = ts;
		entry->last_order = ts;
		segment_money_init(&entry->money);
		segment_day_window_init(&entry->days, entry->u.day_bits, rs->day_words, day);
		entry->refunds = rs->clv && !purchase;
		if (rs->clv)
		{
			entry->u.clv.purchases = NULL;
			if (purchase)
				refresh_clv_add(rs, entry, day, value);
		}
		if (unlikely(refresh_over_limit(rs)))
		{
			if (!rs->spilled && rs->level == 0)
				ereport(DEBUG1,
						(errmsg_internal("refresh_figures: hash memory limit reached, orders of further customers spill to temporary files")));
			rs->full = true;
			rs->spilled = true;
		}
		return entry;
	}
	if (ts < entry->first_order)
		entry->first_order = ts;
	if (ts > entry->last_order)
		entry->last_order = ts;
	entry->orders++;
	if (discounted)
		entry->discounted++;
	if (rs->clv && !purchase)
		refresh_clv_refund(rs, entry);
	segment_day_window_add(&entry->days, entry->u.day_bits, rs->day_words, day, rs->keys_cxt);
	if (purchase && rs->clv)
		refresh_clv_add(rs, entry, day, value);
	return entry;
}

static void
refresh_add(RefreshState *rs, Datum *values)
{
	uint32		hash = refresh_hash_key(rs, values[0]);
	double		value = 0;
	bool		purchase = refresh_purchase(rs, values[2], NULL, &value);
	RefreshEntry *entry = refresh_count(rs, values[0], hash, DatumGetTimestampTz(values[1]),
										DatumGetBool(values[3]), purchase, value);

	if (entry == NULL)
		refresh_spill(rs, hash, values);
	else
		segment_money_add(&entry->money, values[2], rs->keys_cxt);
}

/* A hint that the block at p (if not NULL) is read soon. */
static inline void
refresh_prefetch(const void *p)
{
#if defined(__GNUC__) || defined(__clang__)
	if (p != NULL)
		__builtin_prefetch(p);
#endif
}

/*
 * With lifetime value, a customer's purchases live outside its entry (a
 * RefreshClv): one more cache miss per order when a shop's orders are stored
 * as they were placed (customers interleaved), about as much as the rest of
 * the pass at a million customers.  Once the batch's buckets are in the
 * cache (refresh_put() prefetched them), its customers' purchases are
 * fetched together, before any of them is counted: those of the batch's
 * first half (rows from..to) once its second half starts to be read, those
 * of the second half when the batch is counted, so that most have a half
 * batch of time to arrive.  Only a hint: entries the batch inserts or moves
 * are counted as ever.
 */
static void
refresh_prefetch_purchases(RefreshState *rs, int from, int to)
{
#if defined(__GNUC__) || defined(__clang__)
	const RefreshRow *last = NULL;
	int			i;

	for (i = from; i < to; i++)
	{
		RefreshEntry *entry;

		if (!rs->batch[i].purchase)
			continue;
		/* a customer's orders stored together: its line is asked for once */
		if (last != NULL && rs->batch[i].hash == last->hash && rs->batch[i].key == last->key)
			continue;
		last = &rs->batch[i];
		entry = refresh_lookup_hash(rs->table, rs->batch[i].key, rs->batch[i].hash);
		if (entry != NULL && entry->u.clv.purchases != NULL)
		{
			char	   *p = (char *) entry->u.clv.purchases;

			__builtin_prefetch(p, 1);
			if (refresh_own_periods(rs, entry))
				__builtin_prefetch(p + sizeof(RefreshClvPeriods) - 1, 1);
		}
	}
#endif
}

static void
refresh_flush(RefreshState *rs)
{
	int			i;

	if (rs->clv)
		refresh_prefetch_purchases(rs, rs->nbatch > REFRESH_BATCH / 2 ? REFRESH_BATCH / 2 : 0, rs->nbatch);
	for (i = 0; i < rs->nbatch; i++)
	{
		RefreshRow *row = &rs->batch[i];
		RefreshEntry *entry = refresh_count(rs, row->key, row->hash, row->ts, row->discounted,
											row->purchase, row->value);

		if (entry == NULL)
		{
			Datum		values[REFRESH_SCAN_NATTS];

			values[0] = row->key;
			values[1] = TimestampTzGetDatum(row->ts);
			values[2] = segment_amount_numeric(&row->amount);
			values[3] = BoolGetDatum(row->discounted);
			refresh_spill(rs, row->hash, values);
		}
		else
			segment_money_add_amount(&entry->money, &row->amount, rs->keys_cxt);
	}
	rs->nbatch = 0;
}

/* Buffer orders with an integer key, prefetching their buckets. */
static inline void
refresh_put(RefreshState *rs, Datum *values)
{
	RefreshRow *row = &rs->batch[rs->nbatch];

	if (rs->key.is_int && segment_amount_decode(values[2], &row->amount))
	{
		char	   *bucket;

		row->key = values[0];
		row->hash = refresh_hash_key(rs, values[0]);
		row->ts = DatumGetTimestampTz(values[1]);
		row->discounted = DatumGetBool(values[3]);
		row->purchase = refresh_purchase(rs, values[2], &row->amount, &row->value);
		bucket = (char *) &rs->table->data[row->hash & rs->table->sizemask];
#if defined(__GNUC__) || defined(__clang__)
		__builtin_prefetch(bucket, 1);
		__builtin_prefetch(bucket + 64, 1);
#endif
		if (++rs->nbatch == REFRESH_BATCH)
			refresh_flush(rs);
		else if (rs->nbatch == REFRESH_BATCH / 2 && rs->clv)
			refresh_prefetch_purchases(rs, 0, REFRESH_BATCH / 2);
		return;
	}
	refresh_flush(rs);
	refresh_add(rs, values);
}

/*
 * A customer's clv_summary (false without purchases, as the aggregate's
 * NULL); ndays: the number of the entry's days.
 */
static bool
refresh_clv_summary(RefreshState *rs, RefreshEntry *entry, int32 ndays, ClvSummary *summary)
{
	RefreshClv *p = entry->u.clv.purchases;

	if (p == NULL)
		return false;
	if (refresh_own_periods(rs, entry))
	{
		RefreshClvPeriods *own = (RefreshClvPeriods *) p;

		ndays = segment_day_window_count(&own->periods, own->period_bits,
										 REFRESH_CLV_PERIOD_WORDS);
	}
	clv_summary_of(clv_summary_period_start(REFRESH_CLV_FIRST(p), rs->clv_unit),
				   clv_summary_period_start(REFRESH_CLV_LAST(p), rs->clv_unit),
				   ndays, &p->later_sum, rs->clv_as_of_day, rs->clv_unit, rs->clv_unit, summary);
	return true;
}

/*
 * A customer's clv_summary columns, NULL without purchases, and with the
 * models fitted here its predictions after them.
 */
static void
refresh_clv_values(RefreshState *rs, RefreshEntry *entry, int32 ndays, Datum *values, bool *nulls)
{
	ClvSummary	summary;
	bool		bought;

	/* computed by the fits' pass already, in the order the table is read */
	if (rs->summaries != NULL)
	{
		if (rs->next_summary >= rs->nsummaries)
			elog(ERROR, "refresh_figures: more customers written than the fits read");
		summary = rs->summaries[rs->next_summary++];
		bought = summary.x >= 0;
	}
	else
		bought = refresh_clv_summary(rs, entry, ndays, &summary);

	if (rs->models != NULL)
		refresh_clv_models_predict(rs->models, bought ? &summary : NULL, values + 4, nulls + 4);
	if (!bought)
	{
		nulls[0] = nulls[1] = nulls[2] = nulls[3] = true;
		return;
	}
	values[0] = Int32GetDatum(summary.x);
	values[1] = Float8GetDatum(summary.t_x);
	values[2] = Float8GetDatum(summary.t_cal);
	values[3] = Float8GetDatum(summary.mean_value);
	nulls[0] = nulls[1] = nulls[2] = nulls[3] = false;
}

/* Write one customer to the result. */
static void
refresh_emit_entry(RefreshState *rs, RefreshEntry *entry, Datum *values, bool *nulls)
{
	MemoryContext old = MemoryContextSwitchTo(rs->row_cxt);
	int32		ndays = segment_day_window_count(&entry->days, entry->u.day_bits,
												 rs->day_words);

	values[0] = entry->key;
	values[1] = segment_rfm_summary(rs->summary_desc, entry->first_order,
									entry->last_order, entry->orders, ndays,
									&entry->money);
	values[2] = Int64GetDatum(entry->discounted);
	nulls[2] = rs->no_discount;
	if (rs->clv)
		refresh_clv_values(rs, entry, ndays, values + 3, nulls + 3);
	tuplestore_putvalues(rs->result, rs->result_desc, values, nulls);
	MemoryContextSwitchTo(old);
	MemoryContextReset(rs->row_cxt);
}

/*
 * The next batch of the table's entries (their number: less than
 * REFRESH_EMIT_BATCH at the end), with what they point to fetched early.
 * The table is read in bucket order, but an entry's earlier days and its
 * purchases were allocated in the order customers came first: read one at
 * a time, each is a cache miss (at a million customers with lifetime value,
 * half of the writing time).  Prefetched a batch at a time, the misses
 * overlap: first the blocks the entries point to, then those the purchases
 * point to (purchases false: not the purchases, when the fits' pass has read
 * them).  Only hints: the result is the same without them.
 */
static int
refresh_emit_batch(RefreshState *rs, refresh_iterator *it, RefreshEntry **batch, bool purchases)
{
	int			n,
				i;

	for (n = 0; n < REFRESH_EMIT_BATCH; n++)
	{
		RefreshEntry *entry = refresh_iterate(rs->table, it);

		if (entry == NULL)
			break;
		batch[n] = entry;
		refresh_prefetch(entry->days.earlier);
		if (purchases && entry->u.clv.purchases != NULL)
		{
			char	   *p = (char *) entry->u.clv.purchases;

			refresh_prefetch(p);
			if (refresh_own_periods(rs, entry))
				refresh_prefetch(p + sizeof(RefreshClvPeriods) - 1);
		}
	}
	if (purchases)
		for (i = 0; i < n; i++)
			if (batch[i]->u.clv.purchases != NULL && refresh_own_periods(rs, batch[i]))
				refresh_prefetch(((RefreshClvPeriods *) batch[i]->u.clv.purchases)->periods.earlier);
	return n;
}

/*
 * Fit the lifetime-value models over every customer of the table
 * (src/refresh_clv.c), before it is written out with the predictions.
 */
static void
refresh_fit_models(RefreshState *rs)
{
	refresh_iterator it;
	RefreshEntry *batch[REFRESH_EMIT_BATCH];
	int			n;

	refresh_clv_models_expect(rs->models, rs->table->members);
	rs->summaries = MemoryContextAllocHuge(rs->table_cxt,
										   Max(rs->table->members, 1) * sizeof(ClvSummary));
	rs->nsummaries = 0;
	refresh_start_iterate(rs->table, &it);
	do
	{
		CHECK_FOR_INTERRUPTS();
		n = refresh_emit_batch(rs, &it, batch, true);
		for (int i = 0; i < n; i++)
		{
			RefreshEntry *entry = batch[i];
			ClvSummary *summary = &rs->summaries[rs->nsummaries++];

			if (rs->nsummaries > rs->table->members)
				elog(ERROR, "refresh_figures: more customers read than the table holds");
			if (refresh_clv_summary(rs, entry,
									segment_day_window_count(&entry->days, entry->u.day_bits,
															 rs->day_words),
									summary))
				refresh_clv_models_add(rs->models, summary);
			else
				summary->x = -1;
		}
	} while (n == REFRESH_EMIT_BATCH);
	(void) refresh_clv_models_fit(rs->models);
}

/* Write the table's customers to the result and empty it. */
static void
refresh_emit(RefreshState *rs)
{
	refresh_iterator it;
	RefreshEntry *batch[REFRESH_EMIT_BATCH];
	Datum		values[REFRESH_FIT_NATTS];
	bool		nulls[REFRESH_FIT_NATTS] = {0};
	int			n;

	refresh_flush(rs);
	refresh_start_iterate(rs->table, &it);
	do
	{
		CHECK_FOR_INTERRUPTS();
		/* with the fits' summaries, what the purchases point to is not read again */
		n = refresh_emit_batch(rs, &it, batch, rs->clv && rs->summaries == NULL);
		for (int i = 0; i < n; i++)
			refresh_emit_entry(rs, batch[i], values, nulls);
	} while (n == REFRESH_EMIT_BATCH);
	if (rs->summaries != NULL)
	{
		if (rs->next_summary != rs->nsummaries)
			elog(ERROR, "refresh_figures: fewer customers written than the fits read");
		rs->summaries = NULL;	/* in the table's context */
	}
	refresh_table_create(rs);
}

static void refresh_drain_spill(RefreshState *rs);

static bool
refresh_any_spill(RefreshState *rs)
{
	for (int q = 0; q < REFRESH_SPILL_PARTS; q++)
		if (rs->spill[q] != NULL)
			return true;
	return false;
}

/* Read back the spilled orders, one partition at a time. */
static void
refresh_drain_spill(RefreshState *rs)
{
	Tuplestorestate *parts[REFRESH_SPILL_PARTS];
	TupleTableSlot *slot;
	int			p;

	if ((rs->level + 2) * REFRESH_SPILL_BITS > 32)
		elog(ERROR, "refresh_figures: too many levels of spill partitions");

	memcpy(parts, rs->spill, sizeof(parts));
	memset(rs->spill, 0, sizeof(rs->spill));
	slot = MakeSingleTupleTableSlot(rs->input_desc, &TTSOpsMinimalTuple);
	rs->level++;
	for (p = 0; p < REFRESH_SPILL_PARTS; p++)
	{
		if (parts[p] == NULL)
			continue;
		while (tuplestore_gettupleslot(parts[p], true, false, slot))
		{
			MemoryContext old;

			CHECK_FOR_INTERRUPTS();
			slot_getallattrs(slot);
			old = MemoryContextSwitchTo(rs->scan_cxt);
			refresh_put(rs, slot->tts_values);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rs->scan_cxt);
		}
		tuplestore_end(parts[p]);
		refresh_emit(rs);
		if (refresh_any_spill(rs))
			refresh_drain_spill(rs);
	}
	rs->level--;
	ExecDropSingleTupleTableSlot(slot);
}

typedef struct RefreshReceiver
{
	DestReceiver pub;
	RefreshState *rs;
} RefreshReceiver;

static bool
refresh_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RefreshState *rs = ((RefreshReceiver *) self)->rs;
	MemoryContext old;

	slot_getsomeattrs(slot, REFRESH_SCAN_NATTS);
	/* the scan's WHERE keeps no NULL key, time or amount */
	if (slot->tts_isnull[0] || slot->tts_isnull[1] || slot->tts_isnull[2])
		return true;
	if (slot->tts_isnull[3])
	{
		/* count(*) FILTER (WHERE NULL) does not count the row */
		slot->tts_values[3] = BoolGetDatum(false);
		slot->tts_isnull[3] = false;
	}
	old = MemoryContextSwitchTo(rs->scan_cxt);
	refresh_check(slot->tts_values);
	refresh_put(rs, slot->tts_values);
	MemoryContextSwitchTo(old);
	MemoryContextReset(rs->scan_cxt);
	return true;
}

static void
refresh_dest_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
refresh_dest_noop(DestReceiver *self)
{
}

static void
refresh_run_engine(RefreshState *rs, SPIPlanPtr plan)
{
	RefreshReceiver receiver;
	SPIExecuteOptions options;
	int			ret;

	memset(&receiver, 0, sizeof(receiver));
	receiver.pub.receiveSlot = refresh_receive;
	receiver.pub.rStartup = refresh_dest_startup;
	receiver.pub.rShutdown = refresh_dest_noop;
	receiver.pub.rDestroy = refresh_dest_noop;
	receiver.pub.mydest = DestNone;
	receiver.rs = rs;

	memset(&options, 0, sizeof(options));
	options.read_only = true;
	options.dest = (DestReceiver *) &receiver;
	ret = SPI_execute_plan_extended(plan, &options);
	if (ret < 0)
		elog(ERROR, "refresh_figures scan failed: %s", SPI_result_code_string(ret));

	/* every customer is in the table: the models can be fitted before it is written */
	refresh_flush(rs);
	if (rs->models != NULL && !rs->spilled)
		refresh_fit_models(rs);
	refresh_emit(rs);
	if (refresh_any_spill(rs))
		refresh_drain_spill(rs);
}

/* The GROUP BY the shards run (segment_internal.figures_sql()), fetched in batches. */
static void
refresh_run_group_by(RefreshState *rs, const char *query)
{
	SPIPlanPtr	plan;
	Portal		portal;

	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "refresh_figures: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		/* without the predictions, which the refresh then makes itself */
		if (SPI_tuptable->tupdesc->natts != (rs->models != NULL ? REFRESH_CLV_NATTS : rs->result_desc->natts))
			elog(ERROR, "refresh_figures: unexpected GROUP BY result");
		for (i = 0; i < SPI_processed; i++)
		{
			Datum		values[REFRESH_FIT_NATTS];
			bool		nulls[REFRESH_FIT_NATTS] = {0};

			CHECK_FOR_INTERRUPTS();
			if (rs->models != NULL)
				nulls[7] = nulls[8] = nulls[9] = true;
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, nulls);
			tuplestore_putvalues(rs->result, rs->result_desc, values, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
}

/* A column of the orders and its type, or undefined_column. */
static Oid
refresh_column(Oid relid, const char *relname, Name column, Oid *collation)
{
	AttrNumber	attnum = get_attnum(relid, NameStr(*column));
	Oid			typid;
	int32		typmod;
	Oid			coll;

	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						NameStr(*column), relname)));
	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &coll);
	if (collation)
		*collation = coll;
	return typid;
}

/* The discounted-order condition refresh_run() counts, by the column's type category. */
static void
refresh_discount_sql(StringInfo buf, Oid relid, const char *relname, Name discount)
{
	char		category;
	bool		preferred;
	const char *d;

	if (discount == NULL)
	{
		appendStringInfoString(buf, "NULL::pg_catalog.bool");
		return;
	}
	get_type_category_preferred(refresh_column(relid, relname, discount, NULL),
								&category, &preferred);
	d = quote_identifier(NameStr(*discount));
	if (category == TYPCATEGORY_BOOLEAN)
		appendStringInfo(buf, "o.%s", d);
	else if (category == TYPCATEGORY_NUMERIC)
		appendStringInfo(buf, "o.%s > '0'", d);
	else
		appendStringInfo(buf, "o.%s <> ''", d);
}

/*
 * refresh_figures(orders, key, customer, ordered_at, amount, discount,
 * status, exclude_status, as_of, time_zone): one row per customer with kept
 * orders up to as_of (customer_id of key's type, s segment.rfm_summary,
 * discounted bigint), as segment_internal.figures_sql() computes them.  discount and
 * status may be NULL (none configured).  With an eleventh argument,
 * clv_time_unit (day or week, also the purchase period), the columns clv_x,
 * clv_t_x, clv_t_cal and clv_mean_value of refresh_run()'s
 * clv_summary(ordered_at, amount, as_of, clv_time_unit, clv_time_unit,
 * time_zone) FILTER (WHERE amount >= 0) follow.
 */
/*
 * The columns were checked by the relation's OID before the scan was
 * prepared by its name: a relation dropped and made again in between could
 * give the key another type than the result's, which would be misread.
 */
static void
refresh_check_key_type(SPIPlanPtr plan, Oid key_type)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	TupleDesc	desc = sources != NIL ? ((CachedPlanSource *) linitial(sources))->resultDesc : NULL;

	if (desc == NULL || desc->natts < 1 ||
		getBaseType(TupleDescAttr(desc, 0)->atttypid) != getBaseType(key_type))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the orders relation changed while refresh_figures() read it"),
				 errhint("Run the refresh again.")));
}

Datum
segment_refresh_figures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	Oid			key_type;
	Oid			collation;
	Name		customer,
				ordered_at,
				amount;
	Name		discount = NULL;
	Name		status = NULL;
	TimestampTz as_of;
	text	   *zone;
	char	   *relname;
	const char *c,
			   *t,
			   *a;
	Oid			typid;
	char		category;
	bool		preferred;
	StringInfoData where;
	StringInfoData disc;
	StringInfoData scan;
	StringInfoData grouped;
	char	   *zone_literal;
	RefreshState *rs;
	MemoryContext work_cxt;
	MemoryContext old;
	SPIPlanPtr	plan;
	const char *why = NULL;
	bool		clv = (PG_NARGS() > 10);
	bool		fit = (PG_NARGS() > 11);
	double		clv_unit = 0;
	int			natts = fit ? REFRESH_FIT_NATTS : clv ? REFRESH_CLV_NATTS : REFRESH_NATTS;

	segment_check_arg_not_null(fcinfo, 0, "orders");
	segment_check_arg_not_null(fcinfo, 2, "customer");
	segment_check_arg_not_null(fcinfo, 3, "ordered_at");
	segment_check_arg_not_null(fcinfo, 4, "amount");
	segment_check_arg_not_null(fcinfo, 8, "as_of");
	segment_check_arg_not_null(fcinfo, 9, "time_zone");
	if (clv)
	{
		segment_check_arg_not_null(fcinfo, 10, "clv_time_unit");
		clv_unit = clv_summary_days_in(PG_GETARG_TEXT_PP(10), "time unit");
	}
	relid = PG_GETARG_OID(0);
	customer = PG_GETARG_NAME(2);
	ordered_at = PG_GETARG_NAME(3);
	amount = PG_GETARG_NAME(4);
	if (!PG_ARGISNULL(5))
		discount = PG_GETARG_NAME(5);
	if (!PG_ARGISNULL(6))
		status = PG_GETARG_NAME(6);
	as_of = PG_GETARG_TIMESTAMPTZ(8);
	zone = PG_GETARG_TEXT_PP(9);
	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite timestamp")));

	relname = get_rel_name(relid);
	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), relname);

	/* the key: the column's type is the result's (key is its witness) */
	key_type = get_fn_expr_argtype(fcinfo->flinfo, 1);
	typid = refresh_column(relid, relname, customer, &collation);
	if (!OidIsValid(key_type) || getBaseType(typid) != getBaseType(key_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" has type %s, not the key's type %s",
						NameStr(*customer), relname, format_type_be(typid),
						OidIsValid(key_type) ? format_type_be(key_type) : "unknown")));
	typid = getBaseType(refresh_column(relid, relname, ordered_at, NULL));
	if (typid != TIMESTAMPTZOID && typid != TIMESTAMPOID && typid != DATEOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" has type %s, expected a timestamp",
						NameStr(*ordered_at), relname, format_type_be(typid))));
	typid = getBaseType(refresh_column(relid, relname, amount, NULL));
	get_type_category_preferred(typid, &category, &preferred);
	if (typid != CASHOID && category != TYPCATEGORY_NUMERIC)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" has type %s, expected a number",
						NameStr(*amount), relname, format_type_be(typid))));

	c = quote_identifier(NameStr(*customer));
	t = quote_identifier(NameStr(*ordered_at));
	a = quote_identifier(NameStr(*amount));

	/* segment_internal.refresh_run()'s src, then figures_sql()'s as_of */
	initStringInfo(&where);
	appendStringInfo(&where, "FROM %s AS o WHERE o.%s IS NOT NULL AND o.%s IS NOT NULL AND o.%s IS NOT NULL",
					 relname, c, t, a);
	if (status != NULL)
	{
		Datum		exclude;

		(void) refresh_column(relid, relname, status, NULL);
		exclude = PG_ARGISNULL(7) ? (Datum) 0 :
			CStringGetDatum(OidOutputFunctionCall(F_ARRAY_OUT, PG_GETARG_DATUM(7)));
		appendStringInfo(&where, " AND (o.%s IS NULL OR o.%s::text <> ALL (%s::text[]))",
						 quote_identifier(NameStr(*status)), quote_identifier(NameStr(*status)),
						 PG_ARGISNULL(7) ? "NULL" : quote_literal_cstr(DatumGetCString(exclude)));
	}
	appendStringInfo(&where, " AND o.%s <= %s::timestamptz", t,
					 quote_literal_cstr(DatumGetCString(DirectFunctionCall1(timestamptz_out,
																			TimestampTzGetDatum(as_of)))));
	initStringInfo(&disc);
	refresh_discount_sql(&disc, relid, relname, discount);

	initStringInfo(&scan);
	appendStringInfo(&scan, "SELECT o.%s, o.%s::timestamptz, o.%s::numeric, (%s)::bool %s",
					 c, t, a, disc.data, where.data);
	zone_literal = quote_literal_cstr(text_to_cstring(zone));
	initStringInfo(&grouped);
	appendStringInfo(&grouped,
					 "SELECT o.%s, segment.rfm(o.%s::timestamptz, o.%s::numeric, %s::segment.time_zone), "
					 "%s%s%s",
					 c, t, a, zone_literal,
					 discount == NULL ? "NULL::bigint" : "count(*) FILTER (WHERE ",
					 discount == NULL ? "" : disc.data,
					 discount == NULL ? "" : ")");
	if (clv)
	{
		/* refresh_run()'s columns: one aggregate, computed once */
		static const char *const fields[] = {"x", "t_x", "t_cal", "mean_value"};
		const char *unit = clv_unit == 7 ? "'week'" : "'day'";

		for (int i = 0; i < lengthof(fields); i++)
			appendStringInfo(&grouped,
							 ", (segment.clv_summary(o.%s::timestamptz, o.%s::numeric, %s::timestamptz, %s, %s, "
							 "%s::segment.time_zone) FILTER (WHERE o.%s::numeric >= 0)).%s",
							 t, a,
							 quote_literal_cstr(DatumGetCString(DirectFunctionCall1(timestamptz_out,
																					TimestampTzGetDatum(as_of)))),
							 unit, unit, zone_literal, a, fields[i]);
	}
	appendStringInfo(&grouped, " %s GROUP BY o.%s", where.data, c);

	segment_materialized_srf(fcinfo);
	if (rsinfo->setDesc->natts != natts)
		elog(ERROR, "refresh_figures: the result has %d columns, expected %d",
			 rsinfo->setDesc->natts, natts);

	work_cxt = AllocSetContextCreate(CurrentMemoryContext, "refresh_figures",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work_cxt);
	rs = palloc0(sizeof(RefreshState));
	rs->no_discount = (discount == NULL);
	rs->result = rsinfo->setResult;
	rs->result_desc = rsinfo->setDesc;
	rs->summary_desc = BlessTupleDesc(lookup_rowtype_tupdesc_copy(TupleDescAttr(rsinfo->setDesc, 1)->atttypid, -1));
	rs->zone = zone;
	rs->day_cache = segment_day_cache_create(work_cxt);
	rs->day_words = clv ? REFRESH_CLV_DAY_WORDS : REFRESH_DAY_WORDS;
	rs->clv = clv;
	if (clv)
	{
		rs->clv_unit = clv_unit;
		rs->clv_days = clv_unit == 1;
		rs->clv_as_of_day = segment_day_cache_date(rs->day_cache, as_of, zone);
		rs->zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
		if (fit)
			rs->models = refresh_clv_models_create(fcinfo, 11);
	}
	rs->memory_limit = get_hash_memory_limit();
	rs->table_cxt = AllocSetContextCreate(work_cxt, "refresh_figures table", ALLOCSET_DEFAULT_SIZES);
	rs->keys_cxt = AllocSetContextCreate(work_cxt, "refresh_figures keys", ALLOCSET_DEFAULT_SIZES);
	rs->row_cxt = AllocSetContextCreate(work_cxt, "refresh_figures row", ALLOCSET_SMALL_SIZES);
	rs->scan_cxt = AllocSetContextCreate(work_cxt, "refresh_figures scan", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(old);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "refresh_figures: SPI_connect failed");
	plan = SPI_prepare(scan.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "refresh_figures: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	refresh_check_key_type(plan, key_type);

	if (segment_scan_is_remote(plan))
		why = "the scan reads foreign or custom scans";
	else
	{
		List	   *sources = SPI_plan_get_plan_sources(plan);
		TupleDesc	desc = sources != NIL ?
			((CachedPlanSource *) linitial(sources))->resultDesc : NULL;
		bool		hashable;

		if (desc == NULL || desc->natts != REFRESH_SCAN_NATTS)
			elog(ERROR, "refresh_figures: unexpected scan result");
		old = MemoryContextSwitchTo(work_cxt);
		hashable = segment_customer_key_init(&rs->key, TupleDescAttr(desc, 0)->atttypid, collation);
		rs->input_desc = CreateTupleDescCopy(desc);
		MemoryContextSwitchTo(old);
		if (hashable)
		{
			ereport(DEBUG1, (errmsg_internal("refresh_figures: own hash table")));
			refresh_table_create(rs);
			refresh_run_engine(rs, plan);
		}
		else
			why = "the customer key's type has no hash function";
	}
	if (why != NULL)
	{
		ereport(DEBUG1, (errmsg_internal("refresh_figures: GROUP BY with the rfm aggregate: %s", why)));
		refresh_run_group_by(rs, grouped.data);
	}
	if (rs->models != NULL)
		refresh_clv_models_finish(rs->models);
	SPI_finish();
	MemoryContextDelete(work_cxt);
	return (Datum) 0;
}
