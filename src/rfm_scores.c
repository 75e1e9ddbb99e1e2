/*
 * rfm_scores.c
 *	  rfm_figures(): first and last order, number of orders and total amount
 *	  of every customer of an orders relation, for rfm_scores().
 *
 * The same figures as GROUP BY customer with min, max, count and sum, but
 * computed by a hash table of our own fed straight from the scan.  A shop's
 * orders are stored in time order, so consecutive orders belong to unrelated
 * customers and a GROUP BY over a million customers visits several scattered
 * memory blocks per order (the hash bucket, the group's key tuple, the
 * per-group states, the numeric sum's digits): the cost is memory latency.
 * Here a customer is one 64-byte entry, key and figures together, aligned on
 * a cache line, so an order touches one line of the table.
 *
 * Memory is bounded like a hash aggregate's: once the table passes the hash
 * memory limit (work_mem * hash_mem_multiplier), orders of customers not in
 * it go to spill files partitioned by hash, each read back later (and split
 * further if it is still too large).
 *
 * When the scan plan reads foreign or custom scans (postgres_fdw shards,
 * Citus), a plain GROUP BY with the rfm aggregate is run instead, so that the
 * aggregate is pushed down to the shards and only one row per customer comes
 * back.  Before PostgreSQL 14 (no DestReceiver for SPI) too.
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
#include "nodes/plannodes.h"
#include "parser/parse_coerce.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "customer_hash.h"
#include "rfm.h"
#include "segment.h"

#define FIGURES_NATTS 5
#define FIGURES_SPILL_BITS 4	/* 16 spill partitions per level */
#define FIGURES_SPILL_PARTS (1 << FIGURES_SPILL_BITS)
#define FIGURES_MIN_ENTRIES 1024
#define FIGURES_LINE 64
#define FIGURES_BATCH 16		/* orders whose buckets are fetched together */

PG_FUNCTION_INFO_V1(segment_rfm_figures);

/* One customer: key and figures in one cache line. */
typedef struct FiguresEntry
{
	Datum		key;			/* by value, or a copy in the keys context */
	int64		orders;
	TimestampTz first_order;
	TimestampTz last_order;
	SegmentMoney money;
	uint32		hash;
	char		status;			/* simplehash's */
} FiguresEntry;

/* A buffered order (integer key, amount read as units). */
typedef struct FiguresRow
{
	Datum		key;
	uint32		hash;
	TimestampTz ts;
	SegmentAmount amount;
} FiguresRow;

struct FiguresState;

#define SH_PREFIX figures
#define SH_ELEMENT_TYPE FiguresEntry
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) figures_hash_key((struct FiguresState *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) figures_equal_keys((struct FiguresState *) (tb)->private_data, a, b)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DECLARE
#include "lib/simplehash.h"

typedef struct FiguresState
{
	SegmentCustomerKey key;		/* the customer key */

	/* key -> text, as key::text would do it */
	CoercionPathType text_path;
	FmgrInfo	text_fn;

	figures_hash *table;
	Size		memory_limit;
	MemoryContext table_cxt;	/* the table's array */
	MemoryContext keys_cxt;		/* by-reference keys, numeric sums */
	MemoryContext row_cxt;		/* reset per output row */
	MemoryContext scan_cxt;		/* reset per input row */

	/* orders waiting for their prefetched buckets */
	FiguresRow	batch[FIGURES_BATCH];
	int			nbatch;

	/* orders of customers that did not fit, by hash partition */
	TupleDesc	input_desc;
	Tuplestorestate *spill[FIGURES_SPILL_PARTS];
	int			level;			/* spill depth: which hash bits partition */
	bool		full;			/* new customers go to the spill files */
	bool		spilled;		/* the table was full at least once */

	Tuplestorestate *result;
	TupleDesc	result_desc;
} FiguresState;

static inline uint32
figures_hash_key(FiguresState *fs, Datum key)
{
	return segment_customer_key_hash(&fs->key, key);
}

static inline bool
figures_equal_keys(FiguresState *fs, Datum a, Datum b)
{
	return segment_customer_key_equal(&fs->key, a, b);
}

static inline void *
figures_allocate(figures_hash *tb, Size size)
{
	return segment_aligned_alloc(tb->ctx, size, FIGURES_LINE);
}

static inline void
figures_free(figures_hash *tb, void *pointer)
{
	segment_aligned_free(pointer);
}

#define SH_PREFIX figures
#define SH_ELEMENT_TYPE FiguresEntry
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) figures_hash_key((struct FiguresState *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) figures_equal_keys((struct FiguresState *) (tb)->private_data, a, b)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DEFINE
#include "lib/simplehash.h"

StaticAssertDecl(sizeof(FiguresEntry) <= FIGURES_LINE,
				 "a customer's entry must fit in one cache line");

static Size
figures_memory_limit(void)
{
	return get_hash_memory_limit();
}

/*
 * The hash table, up to figures_run_engine() (an SPI query into a
 * DestReceiver of our own).
 */

/* True when the plan reads a foreign or custom scan anywhere. */
static bool
figures_plan_is_remote(Plan *plan)
{
	ListCell   *lc;
	List	   *children = NIL;

	if (plan == NULL)
		return false;
	if (IsA(plan, ForeignScan) || IsA(plan, CustomScan))
		return true;
	if (figures_plan_is_remote(plan->lefttree) || figures_plan_is_remote(plan->righttree))
		return true;
	switch (nodeTag(plan))
	{
		case T_Append:
			children = ((Append *) plan)->appendplans;
			break;
		case T_MergeAppend:
			children = ((MergeAppend *) plan)->mergeplans;
			break;
		case T_BitmapAnd:
			children = ((BitmapAnd *) plan)->bitmapplans;
			break;
		case T_BitmapOr:
			children = ((BitmapOr *) plan)->bitmapplans;
			break;
		case T_SubqueryScan:
			return figures_plan_is_remote(((SubqueryScan *) plan)->subplan);
		default:
			break;
	}
	foreach(lc, children)
		if (figures_plan_is_remote((Plan *) lfirst(lc)))
			return true;
	return false;
}

bool
segment_scan_is_remote(SPIPlanPtr plan)
{
	CachedPlan *cplan = SPI_plan_get_cached_plan(plan);
	bool		remote = false;
	ListCell   *lc;

	if (cplan == NULL)
		return true;			/* cannot tell: the safe path */
	foreach(lc, cplan->stmt_list)
	{
		PlannedStmt *stmt = lfirst_node(PlannedStmt, lc);
		ListCell   *sp;

		remote = remote || figures_plan_is_remote(stmt->planTree);
		foreach(sp, stmt->subplans)
			remote = remote || figures_plan_is_remote((Plan *) lfirst(sp));
	}
	ReleaseCachedPlan(cplan, NULL);
	return remote;
}

/*
 * Key handling from the scan's first column; false when the key's type has
 * no hash function (GROUP BY then sorts, and so do we).
 */
static bool
figures_init_key(FiguresState *fs, Form_pg_attribute att)
{
	Oid			funcid = InvalidOid;

	if (!segment_customer_key_init(&fs->key, att->atttypid, att->attcollation))
		return false;

	fs->text_path = find_coercion_pathway(TEXTOID, fs->key.type, COERCION_EXPLICIT, &funcid);
	if (fs->text_path == COERCION_PATH_FUNC)
		fmgr_info_cxt(funcid, &fs->text_fn, CurrentMemoryContext);
	else if (fs->text_path != COERCION_PATH_RELABELTYPE)
	{
		Oid			outfunc;
		bool		varlena;

		fs->text_path = COERCION_PATH_COERCEVIAIO;
		getTypeOutputInfo(fs->key.type, &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &fs->text_fn, CurrentMemoryContext);
	}
	return true;
}

/* The key as text, as key::text gives it. */
static Datum
figures_key_text(FiguresState *fs, Datum key)
{
	switch (fs->text_path)
	{
		case COERCION_PATH_FUNC:
			return FunctionCall1(&fs->text_fn, key);
		case COERCION_PATH_RELABELTYPE:
			return key;
		default:
			return CStringGetTextDatum(OutputFunctionCall(&fs->text_fn, key));
	}
}

static void
figures_table_create(FiguresState *fs)
{
	MemoryContextReset(fs->table_cxt);
	MemoryContextReset(fs->keys_cxt);
	fs->table = figures_create(fs->table_cxt, FIGURES_MIN_ENTRIES, fs);
	fs->full = false;
}

/*
 * Has the table passed the memory limit?  Checked after each new customer
 * (the table doubles on its own, so it may pass the limit by one doubling, as
 * a hash aggregate's may); it always takes FIGURES_MIN_ENTRIES customers.
 */
static inline bool
figures_over_limit(FiguresState *fs)
{
	figures_hash *tb = fs->table;

	/*
	 * Once every hash bit partitions the spill files, customers whose hashes
	 * collide (chosen keys can) stay in the table past the limit, as a hash
	 * aggregate's last partition does: a deeper spill would not split them.
	 */
	if ((fs->level + 2) * FIGURES_SPILL_BITS > 32)
		return false;
	return tb->members >= FIGURES_MIN_ENTRIES &&
		(Size) tb->size * sizeof(FiguresEntry) +
		MemoryContextMemAllocated(fs->keys_cxt, true) > fs->memory_limit;
}

/* Keep an order of a customer that did not fit, in its hash partition. */
static void
figures_spill(FiguresState *fs, uint32 hash, Datum *values)
{
	/* the high bits: the table's buckets are chosen by the low ones */
	int			part = (hash >> (32 - (fs->level + 1) * FIGURES_SPILL_BITS)) &
		(FIGURES_SPILL_PARTS - 1);
	bool		nulls[3] = {false, false, false};

	if (fs->spill[part] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fs->table_cxt->parent);

		/* a small in-memory budget: partitions go to temporary files */
		fs->spill[part] = tuplestore_begin_heap(false, false, 64);
		MemoryContextSwitchTo(old);
	}
	tuplestore_putvalues(fs->spill[part], fs->input_desc, values, nulls);
}

/* Orders with a time or an amount the rfm aggregate would refuse. */
static inline void
figures_check(Datum *values)
{
	TimestampTz ts = DatumGetTimestampTz(values[1]);

	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("order timestamp must be finite"),
				 errdetail("Got %s.", TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity")));
	if (!segment_money_is_finite(values[2]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order amount must be a finite number"),
				 errdetail("Got %s.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, values[2])))));
}

/*
 * The customer's entry with this order counted in, except for the amount;
 * NULL when the table is full and the customer is not in it.
 */
static inline FiguresEntry *
figures_count(FiguresState *fs, Datum key, uint32 hash, TimestampTz ts)
{
	FiguresEntry *entry;
	bool		found;

	if (unlikely(fs->full))
	{
		entry = figures_lookup_hash(fs->table, key, hash);
		if (entry == NULL)
			return NULL;
		found = true;
	}
	else
		entry = figures_insert_hash(fs->table, key, hash, &found);

	if (!found)
	{
		/* the key points into the scan's tuple: keep a copy */
		entry->key = segment_customer_key_copy(&fs->key, key, fs->keys_cxt);
		entry->orders = 1;
		entry->first_order = ts;
		entry->last_order = ts;
		segment_money_init(&entry->money);
		if (unlikely(figures_over_limit(fs)))
		{
			if (!fs->spilled && fs->level == 0)
				ereport(DEBUG1,
						(errmsg_internal("rfm_figures: hash memory limit reached, orders of further customers spill to temporary files")));
			fs->full = true;
			fs->spilled = true;
		}
		return entry;
	}
	if (ts < entry->first_order)
		entry->first_order = ts;
	if (ts > entry->last_order)
		entry->last_order = ts;
	entry->orders++;
	return entry;
}

/* Add one checked order (customer key, timestamptz, numeric). */
static void
figures_add(FiguresState *fs, Datum *values)
{
	uint32		hash = figures_hash_key(fs, values[0]);
	FiguresEntry *entry = figures_count(fs, values[0], hash, DatumGetTimestampTz(values[1]));

	if (entry == NULL)
		figures_spill(fs, hash, values);
	else
		segment_money_add(&entry->money, values[2], fs->keys_cxt);
}

/* Add the buffered orders, whose buckets were prefetched. */
static void
figures_flush(FiguresState *fs)
{
	int			i;

	for (i = 0; i < fs->nbatch; i++)
	{
		FiguresRow *row = &fs->batch[i];
		FiguresEntry *entry = figures_count(fs, row->key, row->hash, row->ts);

		if (entry == NULL)
		{
			Datum		values[3];

			values[0] = row->key;
			values[1] = TimestampTzGetDatum(row->ts);
			values[2] = segment_amount_numeric(&row->amount);
			figures_spill(fs, row->hash, values);
		}
		else
			segment_money_add_amount(&entry->money, &row->amount, fs->keys_cxt);
	}
	fs->nbatch = 0;
}

/*
 * Add one checked order.  Orders with an integer key and an amount that
 * reads as an integer count are buffered: their buckets are prefetched, so
 * that the memory fetches of a batch overlap instead of queueing.
 */
static inline void
figures_put(FiguresState *fs, Datum *values)
{
	FiguresRow *row = &fs->batch[fs->nbatch];

	if (fs->key.is_int && segment_amount_decode(values[2], &row->amount))
	{
		row->key = values[0];
		row->hash = figures_hash_key(fs, values[0]);
		row->ts = DatumGetTimestampTz(values[1]);
#if defined(__GNUC__) || defined(__clang__)
		__builtin_prefetch(&fs->table->data[row->hash & fs->table->sizemask], 1);
#endif
		if (++fs->nbatch == FIGURES_BATCH)
			figures_flush(fs);
		return;
	}
	figures_flush(fs);
	figures_add(fs, values);
}

/* Write the table's customers to the result and empty it. */
static void
figures_emit(FiguresState *fs)
{
	figures_iterator it;
	FiguresEntry *entry;
	Datum		values[FIGURES_NATTS];
	bool		nulls[FIGURES_NATTS] = {false, false, false, false, false};

	figures_flush(fs);
	figures_start_iterate(fs->table, &it);
	while ((entry = figures_iterate(fs->table, &it)) != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fs->row_cxt);

		CHECK_FOR_INTERRUPTS();
		values[0] = figures_key_text(fs, entry->key);
		values[1] = TimestampTzGetDatum(entry->first_order);
		values[2] = TimestampTzGetDatum(entry->last_order);
		values[3] = Int64GetDatum(entry->orders);
		values[4] = segment_money_sum(&entry->money, &nulls[4]);
		tuplestore_putvalues(fs->result, fs->result_desc, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(fs->row_cxt);
	}
	figures_table_create(fs);
}

/*
 * Read back the spilled orders, one partition at a time; a partition whose
 * customers do not fit either is split by the next hash bits.
 */
static void
figures_drain_spill(FiguresState *fs)
{
	Tuplestorestate *parts[FIGURES_SPILL_PARTS];
	TupleTableSlot *slot;
	int			p;

	/* cannot happen: past the last level the table takes every customer (figures_over_limit()) */
	if ((fs->level + 2) * FIGURES_SPILL_BITS > 32)
		elog(ERROR, "rfm_figures: too many levels of spill partitions");

	memcpy(parts, fs->spill, sizeof(parts));
	memset(fs->spill, 0, sizeof(fs->spill));
	slot = MakeSingleTupleTableSlot(fs->input_desc, &TTSOpsMinimalTuple);
	fs->level++;
	for (p = 0; p < FIGURES_SPILL_PARTS; p++)
	{
		if (parts[p] == NULL)
			continue;
		while (tuplestore_gettupleslot(parts[p], true, false, slot))
		{
			MemoryContext old;

			CHECK_FOR_INTERRUPTS();
			slot_getallattrs(slot);
			old = MemoryContextSwitchTo(fs->scan_cxt);
			figures_put(fs, slot->tts_values);
			MemoryContextSwitchTo(old);
			MemoryContextReset(fs->scan_cxt);
		}
		tuplestore_end(parts[p]);
		figures_emit(fs);
		/* what did not fit from this partition: split it further now */
		for (int q = 0; q < FIGURES_SPILL_PARTS; q++)
			if (fs->spill[q] != NULL)
			{
				figures_drain_spill(fs);
				break;
			}
	}
	fs->level--;
	ExecDropSingleTupleTableSlot(slot);
}

/* The scan's rows go straight into the table, with no copy. */
typedef struct FiguresReceiver
{
	DestReceiver pub;
	FiguresState *fs;
} FiguresReceiver;

static bool
figures_receive(TupleTableSlot *slot, DestReceiver *self)
{
	FiguresState *fs = ((FiguresReceiver *) self)->fs;
	MemoryContext old;

	slot_getsomeattrs(slot, 3);
	if (slot->tts_isnull[0] || slot->tts_isnull[1] || slot->tts_isnull[2])
		return true;
	/* detoasted amounts and spilled rows' numerics are per-row garbage */
	old = MemoryContextSwitchTo(fs->scan_cxt);
	figures_check(slot->tts_values);
	figures_put(fs, slot->tts_values);
	MemoryContextSwitchTo(old);
	MemoryContextReset(fs->scan_cxt);
	return true;
}

static void
figures_dest_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
figures_dest_shutdown(DestReceiver *self)
{
}

static void
figures_dest_destroy(DestReceiver *self)
{
}

static void
figures_run_engine(FiguresState *fs, SPIPlanPtr plan, Datum as_of)
{
	FiguresReceiver receiver;
	SPIExecuteOptions options;
	ParamListInfo params;
	int			ret;

	memset(&receiver, 0, sizeof(receiver));
	receiver.pub.receiveSlot = figures_receive;
	receiver.pub.rStartup = figures_dest_startup;
	receiver.pub.rShutdown = figures_dest_shutdown;
	receiver.pub.rDestroy = figures_dest_destroy;
	receiver.pub.mydest = DestNone;
	receiver.fs = fs;

	params = makeParamList(1);
	params->params[0].value = as_of;
	params->params[0].isnull = false;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = TIMESTAMPTZOID;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.dest = (DestReceiver *) &receiver;
	/* SPI reports a SELECT into another receiver as SPI_OK_UTILITY */
	ret = SPI_execute_plan_extended(plan, &options);
	if (ret < 0)
		elog(ERROR, "rfm_figures scan failed: %s", SPI_result_code_string(ret));

	figures_emit(fs);
	if (fs->level == 0)
	{
		for (int q = 0; q < FIGURES_SPILL_PARTS; q++)
			if (fs->spill[q] != NULL)
			{
				figures_drain_spill(fs);
				break;
			}
	}
}

/* The pushdown-friendly path: GROUP BY with the rfm aggregate, fetched in batches. */
static void
figures_run_group_by(FiguresState *fs, const char *query, Datum as_of)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1];
	SPIPlanPtr	plan;
	Portal		portal;

	args[0] = as_of;
	plan = SPI_prepare(query, 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "rfm_figures: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			Datum		values[FIGURES_NATTS];
			bool		nulls[FIGURES_NATTS];

			CHECK_FOR_INTERRUPTS();
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, nulls);
			tuplestore_putvalues(fs->result, fs->result_desc, values, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
}

/* The type of a column, or the error rfm_scores() gives for a missing one. */
static Oid
figures_column_type(Oid relid, const char *relname, Name column)
{
	AttrNumber	attnum = get_attnum(relid, NameStr(*column));

	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						NameStr(*column), relname)));
	return getBaseType(get_atttype(relid, attnum));
}

/* The checks of rfm_scores(): a timestamp and a number column. */
static void
figures_check_columns(Oid relid, Name customer, Name ordered_at, Name amount)
{
	const char *relname = get_rel_name(relid);
	Oid			typid;
	char		category;
	bool		preferred;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), relname);
	(void) figures_column_type(relid, relname, customer);
	typid = figures_column_type(relid, relname, ordered_at);
	if (typid != TIMESTAMPTZOID && typid != TIMESTAMPOID && typid != DATEOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" has type %s, expected a timestamp",
						NameStr(*ordered_at), relname, format_type_be(typid)),
				 errhint("Use a timestamptz, timestamp or date column, or a view that casts it.")));
	typid = figures_column_type(relid, relname, amount);
	get_type_category_preferred(typid, &category, &preferred);
	if (typid != CASHOID && category != TYPCATEGORY_NUMERIC)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" has type %s, expected a number",
						NameStr(*amount), relname, format_type_be(typid)),
				 errhint("Use a numeric, integer or floating-point column, or a view that casts it.")));
}

/*
 * rfm_figures(orders, customer, ordered_at, amount, as_of): one row per
 * customer with orders up to as_of: (customer_id text, first_order,
 * last_order, frequency, monetary).  Rows with a NULL key, time or amount
 * are skipped.
 */
Datum
segment_rfm_figures(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Name		customer = PG_GETARG_NAME(1);
	Name		ordered_at = PG_GETARG_NAME(2);
	Name		amount = PG_GETARG_NAME(3);
	TimestampTz as_of = PG_GETARG_TIMESTAMPTZ(4);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *relname;
	const char *c,
			   *t,
			   *a;
	StringInfoData where;
	StringInfoData scan;
	StringInfoData grouped;
	FiguresState *fs;
	MemoryContext work_cxt;
	MemoryContext old;
	SPIPlanPtr	plan;
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	const char *why = NULL;		/* why not our own hash table */

	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite timestamp"),
				 errhint("Leave it out to score as of now().")));

	figures_check_columns(relid, customer, ordered_at, amount);
	segment_materialized_srf(fcinfo);

	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	c = quote_identifier(NameStr(*customer));
	t = quote_identifier(NameStr(*ordered_at));
	a = quote_identifier(NameStr(*amount));

	/* everything qualified: the caller's search_path stays in force */
	initStringInfo(&where);
	appendStringInfo(&where,
					 "FROM %s AS o WHERE o.%s IS NOT NULL AND o.%s IS NOT NULL "
					 "AND o.%s OPERATOR(pg_catalog.<=) $1",
					 relname, c, a, t);
	initStringInfo(&scan);
	appendStringInfo(&scan,
					 "SELECT o.%s, o.%s::pg_catalog.timestamptz, o.%s::pg_catalog.numeric %s",
					 c, t, a, where.data);
	initStringInfo(&grouped);
	appendStringInfo(&grouped,
					 "SELECT g.k::pg_catalog.text, (g.s).first_order, (g.s).last_order, "
					 "(g.s).orders, (g.s).monetary FROM (SELECT o.%s AS k, "
					 "segment.rfm(o.%s::pg_catalog.timestamptz, o.%s::pg_catalog.numeric) AS s "
					 "%s GROUP BY o.%s) AS g",
					 c, t, a, where.data, c);

	work_cxt = AllocSetContextCreate(CurrentMemoryContext, "rfm_figures",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work_cxt);
	fs = palloc0(sizeof(FiguresState));
	fs->result = rsinfo->setResult;
	fs->result_desc = rsinfo->setDesc;
	fs->memory_limit = figures_memory_limit();
	fs->table_cxt = AllocSetContextCreate(work_cxt, "rfm_figures table", ALLOCSET_DEFAULT_SIZES);
	fs->keys_cxt = AllocSetContextCreate(work_cxt, "rfm_figures keys", ALLOCSET_DEFAULT_SIZES);
	fs->row_cxt = AllocSetContextCreate(work_cxt, "rfm_figures row", ALLOCSET_SMALL_SIZES);
	fs->scan_cxt = AllocSetContextCreate(work_cxt, "rfm_figures scan", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(old);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "rfm_figures: SPI_connect failed");
	plan = SPI_prepare(scan.data, 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "rfm_figures: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));

	if (segment_scan_is_remote(plan))
		why = "the scan reads foreign or custom scans";
	else
	{
		List	   *sources = SPI_plan_get_plan_sources(plan);
		TupleDesc	desc = sources != NIL ?
			((CachedPlanSource *) linitial(sources))->resultDesc : NULL;
		bool		hashable;

		if (desc == NULL || desc->natts != 3)
			elog(ERROR, "rfm_figures: unexpected scan result");
		old = MemoryContextSwitchTo(work_cxt);
		hashable = figures_init_key(fs, TupleDescAttr(desc, 0));
		fs->input_desc = CreateTupleDescCopy(desc);
		MemoryContextSwitchTo(old);
		if (hashable)
		{
			ereport(DEBUG1, (errmsg_internal("rfm_figures: own hash table")));
			figures_table_create(fs);
			figures_run_engine(fs, plan, TimestampTzGetDatum(as_of));
		}
		else
			why = "the customer key's type has no hash function";
	}
	if (why != NULL)
	{
		ereport(DEBUG1, (errmsg_internal("rfm_figures: GROUP BY with the rfm aggregate: %s", why)));
		figures_run_group_by(fs, grouped.data, TimestampTzGetDatum(as_of));
	}
	SPI_finish();
	MemoryContextDelete(work_cxt);
	return (Datum) 0;
}
