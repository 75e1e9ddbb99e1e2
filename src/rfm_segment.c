/*
 * rfm_segment.c
 *	  rfm_segment(r, f, m): the named RFM segment of a score triple, looked up
 *	  in the user-editable table segment.rfm_segment_map.
 *
 * The map is read once per query (per snapshot) with SPI and kept in the
 * function's cache, so scoring a million customers reads the table once,
 * not a million times.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "segment.h"

typedef struct RfmSegmentRule
{
	int32		lo[3];			/* r_min, f_min, m_min */
	int32		hi[3];			/* r_max, f_max, m_max */
	text	   *segment;
} RfmSegmentRule;

typedef struct RfmSegmentCache
{
	/* the snapshot the rules were read under */
	LocalTransactionId lxid;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	int			nrules;
	RfmSegmentRule *rules;
} RfmSegmentCache;

PG_FUNCTION_INFO_V1(segment_rfm_segment);

static LocalTransactionId
rfm_current_lxid(void)
{
	return segment_current_lxid();
}

/* Read the map, ordered by priority, into a cache allocated in mcxt. */
static RfmSegmentCache *
rfm_segment_load(MemoryContext mcxt, Snapshot snapshot)
{
	RfmSegmentCache *cache;
	MemoryContext old;
	uint64		i;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT r_min, r_max, f_min, f_max, m_min, m_max, segment "
					  "FROM segment.rfm_segment_map ORDER BY priority, segment",
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read segment.rfm_segment_map: %s",
			 SPI_result_code_string(ret));

	old = MemoryContextSwitchTo(mcxt);
	cache = palloc0(sizeof(RfmSegmentCache));
	cache->nrules = (int) SPI_processed;
	cache->rules = palloc0(sizeof(RfmSegmentRule) * Max(cache->nrules, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RfmSegmentRule *rule = &cache->rules[i];
		int			k;
		bool		isnull;

		for (k = 0; k < 3; k++)
		{
			rule->lo[k] = DatumGetInt32(SPI_getbinval(tuple, desc, 2 * k + 1, &isnull));
			rule->hi[k] = DatumGetInt32(SPI_getbinval(tuple, desc, 2 * k + 2, &isnull));
		}
		rule->segment = DatumGetTextPCopy(SPI_getbinval(tuple, desc, 7, &isnull));
	}
	MemoryContextSwitchTo(old);
	SPI_finish();

	cache->lxid = rfm_current_lxid();
	cache->xmin = snapshot->xmin;
	cache->xmax = snapshot->xmax;
	cache->curcid = snapshot->curcid;
	return cache;
}

/* rfm_segment(r, f, m): first rule by priority whose ranges hold the scores, else NULL. */
Datum
segment_rfm_segment(PG_FUNCTION_ARGS)
{
	int32		score[3];
	RfmSegmentCache *cache = (RfmSegmentCache *) fcinfo->flinfo->fn_extra;
	Snapshot	snapshot = GetActiveSnapshot();
	int			i,
				k;

	score[0] = PG_GETARG_INT32(0);
	score[1] = PG_GETARG_INT32(1);
	score[2] = PG_GETARG_INT32(2);

	if (cache == NULL || cache->lxid != rfm_current_lxid() ||
		cache->xmin != snapshot->xmin || cache->xmax != snapshot->xmax ||
		cache->curcid != snapshot->curcid)
	{
		if (cache != NULL)
		{
			for (i = 0; i < cache->nrules; i++)
				pfree(cache->rules[i].segment);
			pfree(cache->rules);
			pfree(cache);
		}
		cache = rfm_segment_load(fcinfo->flinfo->fn_mcxt, snapshot);
		fcinfo->flinfo->fn_extra = cache;
	}

	for (i = 0; i < cache->nrules; i++)
	{
		RfmSegmentRule *rule = &cache->rules[i];

		for (k = 0; k < 3; k++)
			if (score[k] < rule->lo[k] || score[k] > rule->hi[k])
				break;
		if (k == 3)
			PG_RETURN_TEXT_P(DatumGetTextPCopy(PointerGetDatum(rule->segment)));
	}
	PG_RETURN_NULL();
}
