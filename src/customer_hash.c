/*
 * customer_hash.c
 *	  The customer key of the hash-table engines (customer_hash.h).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "customer_hash.h"

/*
 * Key handling for a column of the given type; false when the type has no
 * hash function (a GROUP BY then sorts, and so must the caller).
 */
bool
segment_customer_key_init(SegmentCustomerKey *key, Oid type, Oid collation)
{
	TypeCacheEntry *tce;

	key->type = getBaseType(type);
	key->collation = collation;
	get_typlenbyval(key->type, &key->len, &key->byval);
	key->is_int = (key->type == INT2OID || key->type == INT4OID ||
				   (key->type == INT8OID && key->byval));
	if (key->is_int)
		return true;
	tce = lookup_type_cache(key->type, TYPECACHE_HASH_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO);
	if (!OidIsValid(tce->hash_proc) || !OidIsValid(tce->eq_opr))
		return false;
	fmgr_info_cxt(tce->hash_proc_finfo.fn_oid, &key->hash, CurrentMemoryContext);
	fmgr_info_cxt(tce->eq_opr_finfo.fn_oid, &key->eq, CurrentMemoryContext);
	return true;
}

/*
 * A key that points into the scan's tuple, copied into cxt (detoasted: a
 * compressed or external key would be expanded at every comparison).
 */
Datum
segment_customer_key_copy(const SegmentCustomerKey *key, Datum value, MemoryContext cxt)
{
	MemoryContext old;
	Datum		copy;

	if (key->byval)
		return value;
	old = MemoryContextSwitchTo(cxt);
	if (key->len == -1)
		value = PointerGetDatum(PG_DETOAST_DATUM_PACKED(value));
	copy = datumCopy(value, false, key->len);
	MemoryContextSwitchTo(old);
	return copy;
}
