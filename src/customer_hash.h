/*
 * customer_hash.h
 *	  What the hash-table engines of rfm_figures() (rfm_scores.c) and
 *	  refresh_figures() (refresh_figures.c) share: the customer key, hashed
 *	  and compared as an integer when it is one (a by-value integer's Datum
 *	  is its value) and through its type's hash and equality functions
 *	  otherwise, kept in an entry when the scan's tuple goes away; and the
 *	  table's array, aligned on a cache line so that no entry straddles two,
 *	  and backed by huge pages where the kernel offers them.
 */
#ifndef SEGMENT_CUSTOMER_HASH_H
#define SEGMENT_CUSTOMER_HASH_H

#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/memutils.h"

typedef struct SegmentCustomerKey
{
	bool		is_int;			/* int2, int4, by-value int8 */
	Oid			type;			/* base type */
	Oid			collation;
	int16		len;
	bool		byval;
	FmgrInfo	hash;
	FmgrInfo	eq;
} SegmentCustomerKey;

extern bool segment_customer_key_init(SegmentCustomerKey *key, Oid type, Oid collation);
extern Datum segment_customer_key_copy(const SegmentCustomerKey *key, Datum value,
									   MemoryContext cxt);

static inline uint32
segment_customer_key_hash(const SegmentCustomerKey *key, Datum value)
{
	if (key->is_int)
	{
		uint64		k = (uint64) value;

		return murmurhash32((uint32) k ^ (uint32) (k >> 32));
	}
	return DatumGetUInt32(FunctionCall1Coll((FmgrInfo *) &key->hash, key->collation, value));
}

static inline bool
segment_customer_key_equal(const SegmentCustomerKey *key, Datum a, Datum b)
{
	if (key->is_int)
		return a == b;
	return DatumGetBool(FunctionCall2Coll((FmgrInfo *) &key->eq, key->collation, a, b));
}

extern void *segment_aligned_alloc(MemoryContext cxt, Size size, Size line);

static inline void
segment_aligned_free(void *pointer)
{
	pfree(((void **) pointer)[-1]);
}

#endif							/* SEGMENT_CUSTOMER_HASH_H */
