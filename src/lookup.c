/*
 * lookup.c
 *	  segment_of(customer_id [, segmentation]) and profile_of(customer_id
 *	  [, segmentation]): one customer's segment or profile row, read from the
 *	  profile table of a segmentation.
 *
 * Everything that does not depend on the key (which segmentation, which
 * profile table and index, the privilege and row-level security checks, the
 * comparison function) is resolved once and kept in fn_extra while the
 * snapshot and user stay the same, i.e. for one query.  Each call then costs
 * one unique-index probe under the query's active snapshot: no SPI, and the
 * answer is the profile row visible to that snapshot (MVCC).
 *
 * A query that calls segment_of() on many rows (a WHERE segment_of(id) = ...
 * over a customers table) would pay one index descent per row, several times
 * the cost of the hash join it replaces.  So once a query has made as many
 * probes as a sixteenth of the profile's rows, the (key, segment) pairs of the
 * whole profile are read once, under the same snapshot, into a hash table,
 * when it fits in the memory a hash join would get (work_mem *
 * hash_mem_multiplier): the rest of the query probes that, as a hash join
 * would.  A single call, or a few, never pays for the table.  Integer keys
 * that are dense (a serial: at most four key values per customer) go one
 * step further, into an array of small label numbers indexed by the key: two
 * bytes a customer instead of a hash entry, and a customers table scanned
 * in key order then reads that array in order, from the cache.
 *
 * Row-level security: when policies apply to the caller on the profile table
 * (check_enable_rls), calls go through a plan prepared once per query with
 * SPI instead, so the policies are applied by the planner exactly as for a
 * SELECT the caller would write; that path costs an SPI round trip per call.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "common/hashfn.h"

#include "compat.h"
#include "lookup_citus.h"
#include "segment.h"

/* Below this many probes in one query, the index is always used. */
#define LOOKUP_HASH_MIN_PROBES 1000
/* Read the whole profile after probes >= profile rows / this. */
#define LOOKUP_HASH_PROBE_DIVISOR 16
/* Dense array for integer keys spanning at most this many values per customer. */
#define LOOKUP_DENSE_SPAN 4
/* Dense array cells: 0 no customer, 1 a NULL segment, 2 + i label i. */
#define LOOKUP_DENSE_NONE 0
#define LOOKUP_DENSE_NULL 1
#define LOOKUP_DENSE_MAX_LABELS (PG_UINT16_MAX - 2)

/* One customer in the in-memory table of the hash path. */
typedef struct LookupEntry
{
	Datum		key;			/* int64 for integer keys, else a copied datum */
	uint32		hash;
	int32		label;			/* index in LookupCache.labels, -1 for NULL */
	char		status;
} LookupEntry;

struct LookupCache;

static inline uint32 lookup_hash_key(struct LookupCache *cache, Datum key);
static inline bool lookup_keys_equal(struct LookupCache *cache, Datum a, Datum b);

#define SH_PREFIX lookuphash
#define SH_ELEMENT_TYPE LookupEntry
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) lookup_hash_key((struct LookupCache *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) lookup_keys_equal((struct LookupCache *) (tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) a->hash
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

PG_FUNCTION_INFO_V1(segment_segment_of);
PG_FUNCTION_INFO_V1(segment_profile_of);

/* What one query needs to look customers up in one segmentation's profile. */
typedef struct LookupCache
{
	/*
	 * Validity: the transaction, subtransaction, user and snapshot it was
	 * built for.  A snapshot is identified by its contents (xmin, xmax, the
	 * in-progress xids, curcid), not by a few of its fields: two snapshots
	 * with the same xmin and xmax differ when a transaction in between has
	 * committed, a refresh for instance.
	 */
	LocalTransactionId lxid;
	SubTransactionId subxid;
	Oid			userid;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint32		xcnt;
	int32		subxcnt;
	bool		suboverflowed;
	TransactionId *xip;			/* xcnt, then subxcnt ids */
	char	   *segmentation;	/* as asked (NULL: the default one) */
	MemoryContext mcxt;			/* the cache's own context, freed when superseded */

	bool		want_profile;	/* profile_of (else segment_of) */
	Oid			argtype;		/* type of the key argument */
	Oid			keytype;		/* input type of the key's index opclass */
	Oid			profile_relid;
	Oid			index_relid;
	Oid			collation;
	RegProcedure eq_proc;		/* function of the btree = (keytype, keytype) */
	AttrNumber	segment_attno;
	TupleDesc	profile_desc;	/* private copy, not reference counted */
	TupleTableSlot *slot;
	TupleDesc	result_desc;	/* profile_of: segment.customer_profile */

	/* row-level security path; also for a Citus shard not on this node */
	bool		use_spi;
	SPIPlanPtr	plan;

	/*
	 * A profile distributed or replicated by Citus: profile_relid and
	 * index_relid are those of the placement of the current shard, the one
	 * the last key hashed to; the table itself (its "shell") holds no rows.
	 */
	Oid			shell_relid;
	CitusLayout *citus;
	int			shard;			/* current shard, -1 before the first key */
	int64		remote_probes;	/* router queries made for shards elsewhere */
	bool		whole_tried;	/* the whole profile was read, or tried */
	bool		whole;			/* the in-memory table holds the whole profile */

	/* hash path (segment_of without row-level security) */
	int64		probes;			/* index probes made */
	int64		probes_before_hash; /* when to try the hash path */
	bool		hash_tried;
	bool		int_keys;		/* keys are integers, hashed as int64 */
	MemoryContext hash_cxt;
	lookuphash_hash *hash;
	uint16	   *dense;			/* dense integer keys: cells by key - dense_min */
	int64		dense_min;
	uint64		dense_len;
	int			nlabels;
	int			maxlabels;
	text	  **labels;
	FmgrInfo	hash_finfo;		/* the key type's hash function */
	FmgrInfo	eq_finfo;		/* and equality */
} LookupCache;

static LocalTransactionId
lookup_current_lxid(void)
{
	return segment_current_lxid();
}

static bool
lookup_is_integer_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

/* The 64-bit finalizer of MurmurHash3, for integer keys. */
static inline uint32
lookup_mix64(uint64 h)
{
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

/* Hash of a key of the hash path. */
static inline uint32
lookup_hash_key(LookupCache *cache, Datum key)
{
	if (cache->int_keys)
		return lookup_mix64((uint64) DatumGetInt64(key));
	return DatumGetUInt32(FunctionCall1Coll(&cache->hash_finfo, cache->collation, key));
}

/* Equality of two keys of the hash path. */
static inline bool
lookup_keys_equal(LookupCache *cache, Datum a, Datum b)
{
	if (cache->int_keys)
		return DatumGetInt64(a) == DatumGetInt64(b);
	return DatumGetBool(FunctionCall2Coll(&cache->eq_finfo, cache->collation, a, b));
}

/* An integer key of any width as an int64. */
static int64
lookup_int64_key(Oid typid, Datum d)
{
	switch (typid)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

/* Record what identifies the snapshot a cache is built under (in its context). */
static void
lookup_remember_snapshot(LookupCache *cache, Snapshot snapshot)
{
	int32		subxcnt = Max(snapshot->subxcnt, 0);

	cache->lxid = lookup_current_lxid();
	cache->subxid = GetCurrentSubTransactionId();
	cache->xmin = snapshot->xmin;
	cache->xmax = snapshot->xmax;
	cache->curcid = snapshot->curcid;
	cache->xcnt = snapshot->xcnt;
	cache->subxcnt = subxcnt;
	cache->suboverflowed = snapshot->suboverflowed;
	cache->xip = palloc((snapshot->xcnt + subxcnt + 1) * sizeof(TransactionId));
	if (snapshot->xcnt > 0)
		memcpy(cache->xip, snapshot->xip, snapshot->xcnt * sizeof(TransactionId));
	if (subxcnt > 0)
		memcpy(cache->xip + snapshot->xcnt, snapshot->subxip, subxcnt * sizeof(TransactionId));
}

/*
 * Whether the snapshot sees what the cache's snapshot saw: same transaction
 * and subtransaction (a rollback to a savepoint changes what our own
 * changes look like), same command, same xmin, xmax and in-progress xids.
 */
static bool
lookup_same_snapshot(LookupCache *cache, Snapshot snapshot)
{
	int32		subxcnt = Max(snapshot->subxcnt, 0);

	if (cache->lxid != lookup_current_lxid() ||
		cache->subxid != GetCurrentSubTransactionId() ||
		cache->xmin != snapshot->xmin || cache->xmax != snapshot->xmax ||
		cache->curcid != snapshot->curcid || cache->xcnt != snapshot->xcnt ||
		cache->subxcnt != subxcnt || cache->suboverflowed != snapshot->suboverflowed)
		return false;
	if (snapshot->xcnt > 0 &&
		memcmp(cache->xip, snapshot->xip, snapshot->xcnt * sizeof(TransactionId)) != 0)
		return false;
	if (subxcnt > 0 &&
		memcmp(cache->xip + snapshot->xcnt, snapshot->subxip, subxcnt * sizeof(TransactionId)) != 0)
		return false;
	return true;
}

/* Frees what a cache holds outside its memory context: the kept SPI plan. */
static void
lookup_release(void *arg)
{
	LookupCache *cache = (LookupCache *) arg;

	if (cache->plan != NULL)
	{
		SPI_freeplan(cache->plan);
		cache->plan = NULL;
	}
}

/*
 * Whether the user may read what a lookup returns from a profile table: the
 * customer_id and segment columns, or every column for profile_of().
 */
static bool
lookup_may_read(Oid relid, bool want_profile)
{
	Oid			userid = GetUserId();
	AttrNumber	segment_attno;

	if (pg_class_aclcheck(relid, userid, ACL_SELECT) == ACLCHECK_OK)
		return true;
	if (want_profile)
		return pg_attribute_aclcheck_all(relid, userid, ACL_SELECT, ACLMASK_ALL) == ACLCHECK_OK;
	segment_attno = get_attnum(relid, "segment");
	return segment_attno != InvalidAttrNumber &&
		pg_attribute_aclcheck(relid, 1, userid, ACL_SELECT) == ACLCHECK_OK &&
		pg_attribute_aclcheck(relid, segment_attno, userid, ACL_SELECT) == ACLCHECK_OK;
}

/*
 * Scan a table of segmentations (segment.segmentations, or the local copy of
 * segment.segmentation_directory) for the one named, or the default one:
 * true with its name, profile table name and whether it was refreshed.
 */
static bool
lookup_scan_segmentations(Oid confid, const char *segmentation,
						  char **found, char **profile, bool *refreshed)
{
	Relation	conf;
	TableScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	att_name,
				att_default,
				att_profile,
				att_refresh;

	conf = table_open(confid, AccessShareLock);
	att_name = get_attnum(confid, "name");
	att_default = get_attnum(confid, "is_default");
	att_profile = get_attnum(confid, "profile");
	att_refresh = get_attnum(confid, "last_refresh");
	if (att_name == InvalidAttrNumber || att_default == InvalidAttrNumber ||
		att_profile == InvalidAttrNumber || att_refresh == InvalidAttrNumber)
		elog(ERROR, "table \"%s\" lacks a column", get_rel_name(confid));

	slot = table_slot_create(conf, NULL);
	scan = table_beginscan(conf, GetActiveSnapshot(), 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;
		char	   *name;

		CHECK_FOR_INTERRUPTS();
		d = slot_getattr(slot, att_name, &isnull);
		if (isnull)
			continue;
		name = TextDatumGetCString(d);
		d = slot_getattr(slot, att_default, &isnull);
		if (segmentation != NULL ? strcmp(name, segmentation) != 0
			: isnull || !DatumGetBool(d))
		{
			pfree(name);
			continue;
		}
		d = slot_getattr(slot, att_profile, &isnull);
		if (isnull)
		{
			pfree(name);
			continue;
		}
		*found = name;
		*profile = pstrdup(NameStr(*DatumGetName(d)));
		(void) slot_getattr(slot, att_refresh, &isnull);
		*refreshed = !isnull;
		break;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(conf, NoLock);
	return *found != NULL;
}

/*
 * Find the profile table of a segmentation (NULL: the default one) by reading
 * segment.segmentations under the active snapshot, or, on a Citus worker
 * (whose segment.segmentations is empty), the local copy of the reference
 * table segment.segmentation_directory that segment.distribute() fills.
 *
 * A direct SELECT of the profile needs USAGE on schema segment, so a lookup
 * does too.  A user who may neither read segment.segmentations nor the
 * profile learns nothing about which segmentations exist: a segmentation
 * that does not exist and one whose profile the user may not read give the
 * same error.  Others get the errors refresh() gives.
 */
static Oid
lookup_profile_relid(const char *segmentation, Oid nspid, bool want_profile)
{
	Oid			confid;
	Oid			dirid;
	char	   *found = NULL;
	char	   *profile = NULL;
	bool		refreshed = false;
	bool		may_list;
	bool		citus = false;
	Oid			relid = InvalidOid;

	if (segment_namespace_aclcheck(nspid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_SCHEMA, "segment");

	confid = get_relname_relid("segmentations", nspid);
	if (!OidIsValid(confid))
		elog(ERROR, "table segment.segmentations is missing");
	may_list = pg_class_aclcheck(confid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	if (!lookup_scan_segmentations(confid, segmentation, &found, &profile, &refreshed))
	{
		dirid = get_relname_relid("segmentation_directory", nspid);
		if (OidIsValid(dirid))
		{
			Oid			local = segment_citus_local_relation(dirid);

			citus = local != dirid;
			if (OidIsValid(local))
				(void) lookup_scan_segmentations(local, segmentation, &found, &profile, &refreshed);
		}
	}

	if (found != NULL)
		relid = get_relname_relid(profile, nspid);
	if (!may_list && (!OidIsValid(relid) || !lookup_may_read(relid, want_profile)))
	{
		if (segmentation == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("no default segmentation that you may read"),
					 errdetail("A lookup needs SELECT on the customer_id and segment columns of the segmentation's profile table (profile_of: on all its columns)."),
					 errhint("Ask for access to the profile, or name the segmentation.")));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no segmentation \"%s\" that you may read", segmentation),
				 errdetail("A lookup needs SELECT on the customer_id and segment columns of the segmentation's profile table (profile_of: on all its columns).")));
	}
	if (found == NULL && citus)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 segmentation ? errmsg("segmentation \"%s\" is not known on this Citus node", segmentation)
				 : errmsg("no default segmentation is known on this Citus node"),
				 errdetail("Queries over distributed tables call segment_of() and profile_of() on the workers."),
				 errhint("Run SELECT segment.distribute(%s%s%s); on the coordinator.",
						 segmentation ? "'" : "", segmentation ? segmentation : "",
						 segmentation ? "'" : "")));
	if (found == NULL && segmentation == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no segmentation is configured"),
				 errhint("Run segment.configure(orders => ..., customer => ..., ordered_at => ..., amount => ...) first.")));
	if (found == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segmentation \"%s\" does not exist", segmentation),
				 errhint("The configured segmentations are listed in segment.segmentations.")));
	if (!refreshed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("segmentation \"%s\" has not been refreshed yet", found),
				 errhint("Run SELECT segment.refresh(%s%s%s);",
						 segmentation ? "'" : "", segmentation ? segmentation : "",
						 segmentation ? "'" : "")));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("profile table \"segment.%s\" of segmentation \"%s\" does not exist",
						profile, found),
				 errhint("Run segment.configure() again to create it.")));
	return relid;
}

/* Refuse unless the user may read the columns the lookup returns. */
static void
lookup_check_privileges(Relation rel, bool want_profile, AttrNumber segment_attno)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			userid = GetUserId();
	bool		ok;

	if (pg_class_aclcheck(relid, userid, ACL_SELECT) == ACLCHECK_OK)
		return;
	if (want_profile)
		ok = pg_attribute_aclcheck_all(relid, userid, ACL_SELECT, ACLMASK_ALL) == ACLCHECK_OK;
	else
		ok = pg_attribute_aclcheck(relid, 1, userid, ACL_SELECT) == ACLCHECK_OK &&
			pg_attribute_aclcheck(relid, segment_attno, userid, ACL_SELECT) == ACLCHECK_OK;
	if (!ok)
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
}

/* Prepare and keep the policy-aware query of the row-level security path. */
static void
lookup_prepare_spi(LookupCache *cache, Relation rel)
{
	StringInfoData sql;
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;
	SPIPlanPtr	plan;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	if (cache->want_profile)
	{
		for (i = 1; i < desc->natts; i++)
			appendStringInfo(&sql, "%s%s", i > 1 ? ", " : "",
							 quote_identifier(NameStr(TupleDescAttr(desc, i)->attname)));
	}
	else
		appendStringInfoString(&sql, "segment");
	appendStringInfo(&sql, " FROM %s WHERE customer_id = $1",
					 quote_qualified_identifier("segment", RelationGetRelationName(rel)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql.data, 1, &cache->keytype);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql.data,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	cache->plan = plan;
	SPI_finish();
	pfree(sql.data);
}

/* Check that a profile table has the layout profile_of() returns. */
static void
lookup_check_layout(Relation rel, TupleDesc result)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;
	bool		ok = desc->natts == result->natts + 1;

	for (i = 0; ok && i < result->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i + 1);
		Form_pg_attribute b = TupleDescAttr(result, i);

		ok = !a->attisdropped && a->atttypid == b->atttypid &&
			strcmp(NameStr(a->attname), NameStr(b->attname)) == 0;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("profile table \"%s\" does not have the columns of segment.customer_profile",
						RelationGetRelationName(rel)),
				 errhint("Run segment.configure() again to recreate it.")));
}

/* Build the per-query cache: resolve, check, and prepare everything but the key. */
static LookupCache *
lookup_build(FunctionCallInfo fcinfo, const char *segmentation, bool want_profile)
{
	MemoryContext mcxt;
	MemoryContext old;
	LookupCache *cache;
	Snapshot	snapshot = GetActiveSnapshot();
	Oid			nspid;
	Relation	rel;
	Relation	idx;
	Oid			opfamily;
	Oid			eq_opr;
	MemoryContextCallback *cb;

	/*
	 * A context of its own, so that a cache superseded within the lifetime of
	 * fn_extra (a PL/pgSQL loop keeps it to the end of the transaction) is
	 * freed, not left behind.
	 */
	mcxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "segment_of cache",
								 ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(mcxt);
	cache = palloc0(sizeof(LookupCache));
	cache->segmentation = segmentation ? pstrdup(segmentation) : NULL;
	cache->mcxt = mcxt;
	lookup_remember_snapshot(cache, snapshot);
	MemoryContextSwitchTo(old);

	cache->userid = GetUserId();
	cache->want_profile = want_profile;

	cache->argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	if (!OidIsValid(cache->argtype))
	{
		Oid		   *argtypes;
		int			nargs;

		get_func_signature(fcinfo->flinfo->fn_oid, &argtypes, &nargs);
		cache->argtype = argtypes[0];
	}

	nspid = get_namespace_oid("segment", false);
	cache->profile_relid = lookup_profile_relid(segmentation, nspid, want_profile);
	rel = table_open(cache->profile_relid, AccessShareLock);

	cache->segment_attno = get_attnum(cache->profile_relid, "segment");
	if (cache->segment_attno == InvalidAttrNumber ||
		TupleDescAttr(RelationGetDescr(rel), cache->segment_attno - 1)->atttypid != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("profile table \"%s\" has no text column \"segment\"",
						RelationGetRelationName(rel)),
				 errhint("Run segment.configure() again to recreate it.")));

	lookup_check_privileges(rel, want_profile, cache->segment_attno);

	if (want_profile)
	{
		TupleDesc	result;

		if (get_call_result_type(fcinfo, NULL, &result) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "profile_of must return a composite type");
		lookup_check_layout(rel, result);
		old = MemoryContextSwitchTo(mcxt);
		cache->result_desc = BlessTupleDesc(CreateTupleDescCopy(result));
		MemoryContextSwitchTo(old);
	}

	cache->index_relid = segment_primary_key_index(rel);
	if (!OidIsValid(cache->index_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("profile table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errhint("Run segment.configure() again to recreate it.")));
	idx = index_open(cache->index_relid, AccessShareLock);
	if (idx->rd_rel->relam != BTREE_AM_OID || IndexRelationGetNumberOfKeyAttributes(idx) != 1 ||
		idx->rd_index->indkey.values[0] != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("primary key of profile table \"%s\" is not a btree on customer_id",
						RelationGetRelationName(rel))));
	cache->keytype = idx->rd_opcintype[0];
	cache->collation = idx->rd_indcollation[0];
	opfamily = idx->rd_opfamily[0];
	index_close(idx, NoLock);

	if (cache->argtype != cache->keytype &&
		!(lookup_is_integer_type(cache->argtype) && lookup_is_integer_type(cache->keytype)))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("customer key of type %s does not match the key type %s of the profile",
						format_type_be(cache->argtype), format_type_be(cache->keytype)),
				 errhint("Cast the key to %s.", format_type_be(cache->keytype))));
	eq_opr = get_opfamily_member(opfamily, cache->keytype, cache->keytype, BTEqualStrategyNumber);
	if (!OidIsValid(eq_opr))
		elog(ERROR, "missing btree equality operator for type %u", cache->keytype);
	cache->eq_proc = get_opcode(eq_opr);

	/* RLS_NONE_ENV: not applied now; the cache is per user and snapshot anyway. */
	cache->use_spi = check_enable_rls(cache->profile_relid, InvalidOid, false) == RLS_ENABLED;
	cache->shell_relid = cache->profile_relid;
	cache->shard = -1;
	if (!cache->use_spi)
		cache->citus = segment_citus_layout(cache->profile_relid, cache->keytype,
											cache->collation, mcxt);

	old = MemoryContextSwitchTo(mcxt);
	cache->profile_desc = CreateTupleDescCopy(RelationGetDescr(rel));
	cache->slot = MakeSingleTupleTableSlot(cache->profile_desc, table_slot_callbacks(rel));
	cb = palloc0(sizeof(MemoryContextCallback));
	MemoryContextSwitchTo(old);
	if (cache->use_spi)
		lookup_prepare_spi(cache, rel);
	cache->hash_tried = cache->use_spi || want_profile || cache->citus != NULL;
	cache->probes_before_hash = Max((int64) (rel->rd_rel->reltuples / LOOKUP_HASH_PROBE_DIVISOR),
									LOOKUP_HASH_MIN_PROBES);
	table_close(rel, NoLock);

	cb->func = lookup_release;
	cb->arg = cache;
	MemoryContextRegisterResetCallback(mcxt, cb);
	return cache;
}

/* The cache of this call site, rebuilt when the query (snapshot, user) or segmentation changed. */
static LookupCache *
lookup_get(FunctionCallInfo fcinfo, const char *segmentation, bool want_profile)
{
	LookupCache *cache = (LookupCache *) fcinfo->flinfo->fn_extra;
	Snapshot	snapshot = GetActiveSnapshot();

	if (cache != NULL &&
		cache->userid == GetUserId() &&
		lookup_same_snapshot(cache, snapshot) &&
		(segmentation == NULL ? cache->segmentation == NULL :
		 cache->segmentation != NULL && strcmp(segmentation, cache->segmentation) == 0))
		return cache;

	if (cache != NULL)
	{
		/* Superseded: free it now (its context's callback releases the plan). */
		fcinfo->flinfo->fn_extra = NULL;
		ExecDropSingleTupleTableSlot(cache->slot);
		MemoryContextDelete(cache->mcxt);
	}
	cache = lookup_build(fcinfo, segmentation, want_profile);
	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

/*
 * Convert an integer key to the profile's integer key type; false when the
 * value is out of that type's range (so no customer can have it).
 */
static bool
lookup_convert_key(LookupCache *cache, Datum arg, Datum *key)
{
	int64		v;

	if (cache->argtype == cache->keytype)
	{
		*key = arg;
		return true;
	}
	switch (cache->argtype)
	{
		case INT2OID:
			v = DatumGetInt16(arg);
			break;
		case INT4OID:
			v = DatumGetInt32(arg);
			break;
		default:
			v = DatumGetInt64(arg);
			break;
	}
	switch (cache->keytype)
	{
		case INT2OID:
			if (v < PG_INT16_MIN || v > PG_INT16_MAX)
				return false;
			*key = Int16GetDatum((int16) v);
			break;
		case INT4OID:
			if (v < PG_INT32_MIN || v > PG_INT32_MAX)
				return false;
			*key = Int32GetDatum((int32) v);
			break;
		default:
			*key = Int64GetDatum(v);
			break;
	}
	return true;
}

/*
 * Probe the unique index with the active snapshot.  On a hit, fill values and
 * nulls (profile row minus the key, or just the segment) and return true.
 */
static bool
lookup_probe(LookupCache *cache, Datum key, Datum *values, bool *nulls)
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	ScanKeyData skey;
	bool		found = false;

	rel = table_open(cache->profile_relid, AccessShareLock);
	idx = index_open(cache->index_relid, AccessShareLock);
	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, cache->keytype,
						   cache->collation, cache->eq_proc, key);
	scan = segment_index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, cache->slot))
	{
		found = true;
		if (cache->want_profile)
		{
			int			i;

			slot_getallattrs(cache->slot);
			for (i = 0; i < cache->result_desc->natts; i++)
			{
				nulls[i] = cache->slot->tts_isnull[i + 1];
				values[i] = nulls[i] ? (Datum) 0 :
					datumCopy(cache->slot->tts_values[i + 1],
							  TupleDescAttr(cache->result_desc, i)->attbyval,
							  TupleDescAttr(cache->result_desc, i)->attlen);
			}
		}
		else
		{
			values[0] = slot_getattr(cache->slot, cache->segment_attno, &nulls[0]);
			if (!nulls[0])
				values[0] = PointerGetDatum(DatumGetTextPCopy(values[0]));
		}
	}
	ExecClearTuple(cache->slot);
	index_endscan(scan);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return found;
}

/* The same through the prepared, policy-aware SPI plan. */
static bool
lookup_probe_spi(LookupCache *cache, Datum key, Datum *values, bool *nulls)
{
	MemoryContext caller = CurrentMemoryContext;
	bool		found = false;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_plan(cache->plan, &key, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(caller);
		int			i;

		found = true;
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);

			values[i] = SPI_getbinval(tuple, desc, i + 1, &nulls[i]);
			if (!nulls[i])
				values[i] = datumCopy(values[i], a->attbyval, a->attlen);
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return found;
}

/* The cache of this call, for the segmentation named by the optional second argument. */
static LookupCache *
lookup_cache(FunctionCallInfo fcinfo, bool want_profile)
{
	char	   *segmentation = NULL;
	LookupCache *cache;

	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
		segmentation = text_to_cstring(PG_GETARG_TEXT_PP(1));
	cache = lookup_get(fcinfo, segmentation, want_profile);
	if (segmentation)
		pfree(segmentation);
	return cache;
}

/* The index of a segment label in the cache's list, added if new. */
static int32
lookup_intern_label(LookupCache *cache, Datum d)
{
	text	   *label = DatumGetTextPP(d);
	int			len = VARSIZE_ANY_EXHDR(label);
	int			i;

	for (i = cache->nlabels - 1; i >= 0; i--)
		if (VARSIZE_ANY_EXHDR(cache->labels[i]) == len &&
			memcmp(VARDATA_ANY(cache->labels[i]), VARDATA_ANY(label), len) == 0)
			return i;
	if (cache->nlabels == cache->maxlabels)
	{
		cache->maxlabels *= 2;
		cache->labels = repalloc(cache->labels, sizeof(text *) * cache->maxlabels);
	}
	cache->labels[cache->nlabels] = cstring_to_text_with_len(VARDATA_ANY(label), len);
	return cache->nlabels++;
}

/*
 * Replace the hash table of integer keys by a dense array when the keys span
 * few values per customer and the array fits the budget beside the table
 * (both exist while it is filled).
 */
static void
lookup_make_dense(LookupCache *cache, int64 min_key, int64 max_key, int64 n, double budget)
{
	uint64		span = (uint64) max_key - (uint64) min_key + 1;
	lookuphash_iterator it;
	LookupEntry *entry;

	if (span == 0 || span > (uint64) n * LOOKUP_DENSE_SPAN ||
		cache->nlabels > LOOKUP_DENSE_MAX_LABELS ||
		(double) span * sizeof(uint16) + MemoryContextMemAllocated(cache->hash_cxt, true) > budget ||
		span * sizeof(uint16) > MaxAllocHugeSize)
		return;
	cache->dense = MemoryContextAllocExtended(cache->hash_cxt, span * sizeof(uint16),
											  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	cache->dense_min = min_key;
	cache->dense_len = span;
	lookuphash_start_iterate(cache->hash, &it);
	while ((entry = lookuphash_iterate(cache->hash, &it)) != NULL)
		cache->dense[(uint64) DatumGetInt64(entry->key) - (uint64) min_key] =
			entry->label < 0 ? LOOKUP_DENSE_NULL : (uint16) (entry->label + 2);
	lookuphash_destroy(cache->hash);
	cache->hash = NULL;
}

/* Filling the in-memory table of the hash path, from any source of rows. */
typedef struct LookupHashFill
{
	double		budget;			/* bytes a hash join would get */
	int16		keylen;
	bool		keybyval;
	int64		n;
	int64		min_key;
	int64		max_key;
} LookupHashFill;

/*
 * Start the in-memory table for about rows profile rows; false (and nothing
 * started) when it would not fit or the key type has no hash function.
 */
static bool
lookup_hash_begin(LookupCache *cache, double rows, LookupHashFill *fill)
{
	TypeCacheEntry *typentry = NULL;
	MemoryContext old;

	fill->budget = (double) work_mem * 1024.0 * hash_mem_multiplier;
	fill->n = 0;
	fill->min_key = PG_INT64_MAX;
	fill->max_key = PG_INT64_MIN;
	/* the table's buckets alone: entries, at most half empty */
	if (rows * sizeof(LookupEntry) * 2 > fill->budget)
	{
		elog(DEBUG1, "segment_of: %.0f profile rows would not fit in %.0f kB, probing its index",
			 rows, fill->budget / 1024);
		return false;
	}
	cache->int_keys = lookup_is_integer_type(cache->keytype);
	if (!cache->int_keys)
	{
		typentry = lookup_type_cache(cache->keytype,
									 TYPECACHE_HASH_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO);
		if (!OidIsValid(typentry->hash_proc_finfo.fn_oid) ||
			!OidIsValid(typentry->eq_opr_finfo.fn_oid))
			return false;
	}
	get_typlenbyval(cache->keytype, &fill->keylen, &fill->keybyval);

	/* a child of the query's context: freed with it, or when superseded */
	if (cache->hash_cxt != NULL)
		MemoryContextDelete(cache->hash_cxt);
	cache->hash_cxt = AllocSetContextCreate(cache->mcxt, "segment_of hash",
											ALLOCSET_DEFAULT_SIZES);
	cache->hash = NULL;
	cache->dense = NULL;
	if (!cache->int_keys)
	{
		fmgr_info_copy(&cache->hash_finfo, &typentry->hash_proc_finfo, cache->hash_cxt);
		fmgr_info_copy(&cache->eq_finfo, &typentry->eq_opr_finfo, cache->hash_cxt);
	}
	old = MemoryContextSwitchTo(cache->hash_cxt);
	cache->maxlabels = 16;
	cache->labels = palloc(sizeof(text *) * cache->maxlabels);
	cache->nlabels = 0;
	cache->hash = lookuphash_create(cache->hash_cxt, (uint32) Min(rows + 1, PG_UINT32_MAX / 2),
									cache);
	MemoryContextSwitchTo(old);
	return true;
}

/* Add one profile row; false once the table outgrows its budget. */
static bool
lookup_hash_add(LookupCache *cache, LookupHashFill *fill, Datum key, Datum seg, bool segnull)
{
	MemoryContext old = MemoryContextSwitchTo(cache->hash_cxt);
	bool		found;
	LookupEntry *entry;

	if (cache->int_keys)
	{
		int64		v = lookup_int64_key(cache->keytype, key);

		fill->min_key = Min(fill->min_key, v);
		fill->max_key = Max(fill->max_key, v);
		key = Int64GetDatum(v);
	}
	else if (!fill->keybyval)
	{
		if (fill->keylen == -1)
			key = PointerGetDatum(PG_DETOAST_DATUM_PACKED(key));
		key = datumCopy(key, fill->keybyval, fill->keylen);
	}
	entry = lookuphash_insert(cache->hash, key, &found);
	entry->label = segnull ? -1 : lookup_intern_label(cache, seg);
	MemoryContextSwitchTo(old);

	if ((++fill->n & 4095) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (MemoryContextMemAllocated(cache->hash_cxt, true) > fill->budget)
			return false;
	}
	return true;
}

/* Finish the table, or drop it when it did not fit (the index is probed then). */
static void
lookup_hash_end(LookupCache *cache, LookupHashFill *fill, bool fits)
{
	if (!fits || MemoryContextMemAllocated(cache->hash_cxt, true) > fill->budget)
	{
		elog(DEBUG1, "segment_of: profile does not fit in %.0f kB, probing its index",
			 fill->budget / 1024);
		MemoryContextDelete(cache->hash_cxt);
		cache->hash_cxt = NULL;
		cache->hash = NULL;
		return;
	}
	if (cache->int_keys && fill->n > 0)
		lookup_make_dense(cache, fill->min_key, fill->max_key, fill->n, fill->budget);
	elog(DEBUG1, "segment_of: read " INT64_FORMAT " profile rows into memory (%s) after " INT64_FORMAT " probes",
		 fill->n, cache->dense ? "dense array" : "hash table", cache->probes + cache->remote_probes);
}

/*
 * Read the (key, segment) pairs of the whole profile, under the active
 * snapshot, into an in-memory hash table; give up (and keep using the index)
 * if it outgrows the memory a hash join would be allowed.
 */
static void
lookup_build_hash(LookupCache *cache)
{
	LookupHashFill fill;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	bool		fits = true;

	cache->hash_tried = true;
	rel = table_open(cache->profile_relid, AccessShareLock);
	if (!lookup_hash_begin(cache, Max(rel->rd_rel->reltuples, 0), &fill))
	{
		table_close(rel, NoLock);
		return;
	}
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while (fits && table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Datum		key;
		Datum		seg;
		bool		isnull;
		bool		segnull;

		key = slot_getattr(slot, 1, &isnull);
		if (isnull)
			continue;
		seg = slot_getattr(slot, cache->segment_attno, &segnull);
		fits = lookup_hash_add(cache, &fill, key, seg, segnull);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	lookup_hash_end(cache, &fill, fits);
}

/*
 * The same for a Citus profile whose shards are on other nodes (a query
 * over a coordinator table): its (key, segment) pairs are read once with
 * one distributed query, in batches, instead of a router query per call.
 */
static void
lookup_build_hash_remote(LookupCache *cache)
{
	LookupHashFill fill;
	StringInfoData sql;
	Portal		portal;
	bool		fits = true;

	cache->whole_tried = true;
	if (!lookup_hash_begin(cache, 0, &fill))
		return;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT customer_id, segment FROM %s",
					 quote_qualified_identifier("segment", get_rel_name(cache->shell_relid)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	while (fits)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (i = 0; fits && i < SPI_processed; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			bool		isnull;
			bool		segnull;
			Datum		key = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull);
			Datum		seg = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &segnull);

			if (!isnull)
				fits = lookup_hash_add(cache, &fill, key, seg, segnull);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	pfree(sql.data);
	lookup_hash_end(cache, &fill, fits);
	cache->whole = cache->hash != NULL || cache->dense != NULL;
}

/* The hash path's answer for a key: false when the profile lacks it. */
static bool
lookup_probe_hash(LookupCache *cache, Datum key, Datum *value, bool *isnull)
{
	LookupEntry *entry;
	int32		label;

	if (cache->dense != NULL)
	{
		uint64		cell = (uint64) lookup_int64_key(cache->keytype, key) - (uint64) cache->dense_min;

		if (cell >= cache->dense_len || cache->dense[cell] == LOOKUP_DENSE_NONE)
			return false;
		label = (int32) cache->dense[cell] - 2;
		*isnull = label < 0;
		if (!*isnull)
			*value = PointerGetDatum(DatumGetTextPCopy(PointerGetDatum(cache->labels[label])));
		return true;
	}
	if (cache->int_keys)
		key = Int64GetDatum(lookup_int64_key(cache->keytype, key));
	entry = lookuphash_lookup(cache->hash, key);
	if (entry == NULL)
		return false;
	*isnull = entry->label < 0;
	if (!*isnull)
		*value = PointerGetDatum(DatumGetTextPCopy(PointerGetDatum(cache->labels[entry->label])));
	return true;
}

/* Whether a shard has the columns of its table (names, types, order). */
static bool
lookup_same_columns(TupleDesc a, TupleDesc b)
{
	int			i;

	if (a->natts != b->natts)
		return false;
	for (i = 0; i < a->natts; i++)
	{
		Form_pg_attribute x = TupleDescAttr(a, i);
		Form_pg_attribute y = TupleDescAttr(b, i);

		if (x->attisdropped != y->attisdropped || x->atttypid != y->atttypid ||
			x->atttypmod != y->atttypmod || strcmp(NameStr(x->attname), NameStr(y->attname)) != 0)
			return false;
	}
	return true;
}

/*
 * Make a shard of a Citus profile the current one: its local placement is
 * then probed (and read into memory after enough probes) as an ordinary
 * profile would be; a shard stored on another node is asked for through
 * SPI, as a query over the distributed profile (on the coordinator; Citus
 * refuses such a query inside a worker's part of a distributed query);
 * after LOOKUP_HASH_MIN_PROBES such calls the whole profile is read once
 * into the in-memory table instead (lookup_build_hash_remote()).
 */
static void
lookup_use_shard(LookupCache *cache, int shard)
{
	Oid			placement = cache->citus->shards[shard].placement;
	Relation	rel;
	Relation	shell;

	cache->shard = shard;
	if (cache->hash_cxt != NULL)
		MemoryContextDelete(cache->hash_cxt);
	cache->hash_cxt = NULL;
	cache->hash = NULL;
	cache->dense = NULL;
	cache->probes = 0;
	cache->hash_tried = true;
	if (!OidIsValid(placement))
	{
		if (cache->plan == NULL)
		{
			shell = table_open(cache->shell_relid, AccessShareLock);
			lookup_prepare_spi(cache, shell);
			table_close(shell, NoLock);
		}
		return;
	}

	rel = table_open(placement, AccessShareLock);
	if (!lookup_same_columns(RelationGetDescr(rel), cache->profile_desc))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("shard \"%s\" does not have the columns of its profile table",
						RelationGetRelationName(rel)),
				 errhint("Run segment.configure() and segment.distribute() again to recreate it.")));
	cache->index_relid = segment_primary_key_index(rel);
	if (!OidIsValid(cache->index_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard \"%s\" of a profile has no primary key", RelationGetRelationName(rel))));
	cache->profile_relid = placement;
	cache->hash_tried = cache->want_profile;
	cache->probes_before_hash = Max((int64) (rel->rd_rel->reltuples / LOOKUP_HASH_PROBE_DIVISOR),
									LOOKUP_HASH_MIN_PROBES);
	table_close(rel, NoLock);
}

/* Look the first argument up: true and the values when the profile has it. */
static bool
lookup_row(FunctionCallInfo fcinfo, LookupCache *cache, Datum *values, bool *nulls)
{
	Datum		key;

	if (!lookup_convert_key(cache, PG_GETARG_DATUM(0), &key))
		return false;
	if (cache->citus != NULL)
	{
		int			shard;

		if (cache->whole)
			return lookup_probe_hash(cache, key, values, nulls);
		shard = segment_citus_shard_of(cache->citus, key);

		if (shard < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no shard of profile table \"%s\" holds the customer's hash value",
							get_rel_name(cache->shell_relid))));
		if (shard != cache->shard)
			lookup_use_shard(cache, shard);
		if (!OidIsValid(cache->citus->shards[shard].placement))
		{
			/* many calls: read the whole profile once, as the hash path does */
			if (!cache->want_profile && !cache->whole_tried &&
				++cache->remote_probes >= LOOKUP_HASH_MIN_PROBES)
			{
				lookup_build_hash_remote(cache);
				if (cache->whole)
					return lookup_probe_hash(cache, key, values, nulls);
			}
			return lookup_probe_spi(cache, key, values, nulls);
		}
	}
	if (cache->use_spi)
		return lookup_probe_spi(cache, key, values, nulls);
	if (cache->hash != NULL || cache->dense != NULL)
		return lookup_probe_hash(cache, key, values, nulls);
	if (!cache->hash_tried && ++cache->probes >= cache->probes_before_hash)
	{
		lookup_build_hash(cache);
		if (cache->hash != NULL || cache->dense != NULL)
			return lookup_probe_hash(cache, key, values, nulls);
	}
	return lookup_probe(cache, key, values, nulls);
}

/* segment_of(customer_id [, segmentation]): the customer's final segment, NULL if unknown. */
Datum
segment_segment_of(PG_FUNCTION_ARGS)
{
	LookupCache *cache;
	Datum		value;
	bool		isnull;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	cache = lookup_cache(fcinfo, false);
	if (!lookup_row(fcinfo, cache, &value, &isnull) || isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(value);
}

/* profile_of(customer_id [, segmentation]): the customer's profile row, NULL if unknown. */
Datum
segment_profile_of(PG_FUNCTION_ARGS)
{
	LookupCache *cache;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tuple;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	cache = lookup_cache(fcinfo, true);
	values = palloc(sizeof(Datum) * cache->result_desc->natts);
	nulls = palloc(sizeof(bool) * cache->result_desc->natts);
	if (!lookup_row(fcinfo, cache, values, nulls))
		PG_RETURN_NULL();
	tuple = heap_form_tuple(cache->result_desc, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
