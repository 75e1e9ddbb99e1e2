/*
 * compat.h
 *	  What differs between the PostgreSQL majors segment builds against.
 *
 * Every PG_VERSION_NUM test of the extension lives here, so that supporting
 * a new major means reading one file.  Supported: 15 to 18 (tested on 15, 17
 * and 18; see README "Supported PostgreSQL versions").
 */
#ifndef SEGMENT_COMPAT_H
#define SEGMENT_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "storage/proc.h"
#include "utils/relcache.h"

#if PG_VERSION_NUM < 150000
#error "segment needs PostgreSQL 15 or later"
#endif

/* 16 moved the varlena macros (VARDATA_ANY, VARSIZE_ANY_EXHDR...) to varatt.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * The backend's local transaction id, which tells one statement's caches
 * from the next transaction's: 17 moved it into PGPROC's vxid.
 */
static inline LocalTransactionId
segment_current_lxid(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

/*
 * The primary key's index, never a deferrable one (a deferrable key may hold
 * duplicates until commit): 18 asks which is wanted, earlier majors only
 * ever returned an immediate one.
 */
#if PG_VERSION_NUM >= 180000
#define segment_primary_key_index(rel) RelationGetPrimaryKeyIndex((rel), false)
#else
#define segment_primary_key_index(rel) RelationGetPrimaryKeyIndex(rel)
#endif

/* 18 added an instrumentation argument to index_beginscan (NULL: none). */
#if PG_VERSION_NUM >= 180000
#define segment_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define segment_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

/* 16 replaced pg_namespace_aclcheck() by object_aclcheck(). */
#if PG_VERSION_NUM >= 160000
#define segment_namespace_aclcheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define segment_namespace_aclcheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

#endif							/* SEGMENT_COMPAT_H */
