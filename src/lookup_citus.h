/*
 * lookup_citus.h
 *	  Where the rows of a Citus table are stored on this node: the shards of a
 *	  distributed or reference table and their local placements, so that
 *	  segment_of() can read a profile (and the segmentation directory) on a
 *	  coordinator or a worker without a distributed query.
 */
#ifndef SEGMENT_LOOKUP_CITUS_H
#define SEGMENT_LOOKUP_CITUS_H

#include "fmgr.h"

/* One shard of a Citus table. */
typedef struct CitusShard
{
	int32		min_hash;		/* hash range (hash-distributed tables) */
	int32		max_hash;
	Oid			placement;		/* its placement on this node, or InvalidOid */
} CitusShard;

/* The shards of a Citus table, as the metadata of this node describes them. */
typedef struct CitusLayout
{
	bool		hashed;			/* hash-distributed; else one shard for all */
	int			nshards;
	CitusShard *shards;			/* ascending hash ranges */
	FmgrInfo	hash_finfo;		/* the distribution column type's hash */
	Oid			collation;
} CitusLayout;

extern CitusLayout *segment_citus_layout(Oid relid, Oid keytype, Oid collation,
										 MemoryContext mcxt);
extern int	segment_citus_shard_of(CitusLayout *layout, Datum key);
extern Oid	segment_citus_local_relation(Oid relid);

#endif							/* SEGMENT_LOOKUP_CITUS_H */
