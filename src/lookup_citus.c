/*
 * lookup_citus.c
 *	  The shards of a Citus table and their placements on this node.
 *
 * Citus ships a query over distributed tables to the workers, segment_of()
 * calls included, and a worker's copy of a distributed table (its "shell")
 * holds no rows: they live in shard placements, ordinary tables named
 * <table>_<shardid>.  So a lookup reads Citus's metadata (pg_dist_partition,
 * pg_dist_shard: on every node since Citus 11) once per query, hashes each
 * key with the distribution column type's hash function as Citus does, and
 * reads the placement of the key's shard when it is on this node.
 *
 * Nothing here links to Citus: its catalogs are read with SPI, and without
 * Citus (no pg_dist_partition) every table is an ordinary one.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "lookup_citus.h"

static const char *const shards_query =
"SELECT p.partmethod::pg_catalog.text, s.shardminvalue, s.shardmaxvalue,"
"       pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid))::pg_catalog.oid"
"  FROM pg_catalog.pg_dist_partition AS p"
"  JOIN pg_catalog.pg_dist_shard AS s ON s.logicalrelid = p.logicalrelid"
" WHERE p.logicalrelid = $1"
" ORDER BY s.shardminvalue::pg_catalog.int4 NULLS FIRST";

static bool
citus_metadata_exists(void)
{
	return OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE));
}

/* An int32 bound of a hash range from pg_dist_shard. */
static int32
citus_hash_bound(HeapTuple tuple, TupleDesc desc, int column, Oid relid)
{
	char	   *text = SPI_getvalue(tuple, desc, column);

	if (text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Citus metadata of table \"%s\" lacks a shard's hash range",
						get_rel_name(relid))));
	return pg_strtoint32(text);
}

/*
 * The shards of a Citus table with their local placements, allocated in
 * mcxt; NULL when the table is not a Citus table (or Citus is not there).
 * keytype and collation describe the distribution column, for its hash.
 */
CitusLayout *
segment_citus_layout(Oid relid, Oid keytype, Oid collation, MemoryContext mcxt)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	CitusLayout *layout = NULL;
	char		method;
	uint64		i;
	int			ret;

	if (!citus_metadata_exists())
		return NULL;
	args[0] = ObjectIdGetDatum(relid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(shards_query, 1, argtypes, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading Citus metadata failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
	{
		SPI_finish();
		return NULL;
	}

	{
		char	   *text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		method = text != NULL ? text[0] : '\0';
	}
	if (method != 'h' && !(method == 'n' && SPI_processed == 1))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" is not distributed by hash or replicated by Citus",
						get_rel_name(relid)),
				 errhint("Distribute it with segment.distribute().")));

	layout = MemoryContextAllocZero(mcxt, sizeof(CitusLayout));
	layout->hashed = method == 'h';
	layout->nshards = (int) SPI_processed;
	layout->shards = MemoryContextAllocZero(mcxt, sizeof(CitusShard) * layout->nshards);
	layout->collation = collation;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		CitusShard *shard = &layout->shards[i];
		bool		isnull;
		Datum		placement;

		CHECK_FOR_INTERRUPTS();
		if (layout->hashed)
		{
			shard->min_hash = citus_hash_bound(tuple, desc, 2, relid);
			shard->max_hash = citus_hash_bound(tuple, desc, 3, relid);
		}
		placement = SPI_getbinval(tuple, desc, 4, &isnull);
		shard->placement = isnull ? InvalidOid : DatumGetObjectId(placement);
	}
	SPI_finish();

	if (layout->hashed)
	{
		TypeCacheEntry *typentry = lookup_type_cache(keytype, TYPECACHE_HASH_PROC_FINFO);

		if (!OidIsValid(typentry->hash_proc_finfo.fn_oid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify a hash function for type %s",
							format_type_be(keytype))));
		fmgr_info_copy(&layout->hash_finfo, &typentry->hash_proc_finfo, mcxt);
	}
	return layout;
}

/* The index in layout->shards of the shard that holds a key; -1 if none. */
int
segment_citus_shard_of(CitusLayout *layout, Datum key)
{
	int32		hash;
	int			lo = 0;
	int			hi = layout->nshards - 1;

	if (!layout->hashed)
		return 0;
	hash = DatumGetInt32(FunctionCall1Coll(&layout->hash_finfo, layout->collation, key));
	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		CitusShard *shard = &layout->shards[mid];

		if (hash < shard->min_hash)
			hi = mid - 1;
		else if (hash > shard->max_hash)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * The relation that holds a table's rows on this node: the table itself
 * unless it is a single-shard Citus table (a reference table), then its
 * local placement, or InvalidOid when this node has none.
 */
Oid
segment_citus_local_relation(Oid relid)
{
	CitusLayout *layout;
	Oid			local;

	layout = segment_citus_layout(relid, InvalidOid, InvalidOid, CurrentMemoryContext);
	if (layout == NULL)
		return relid;
	local = layout->hashed ? InvalidOid : layout->shards[0].placement;
	pfree(layout->shards);
	pfree(layout);
	return local;
}
