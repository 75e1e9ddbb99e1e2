/*
 * segment.c
 *	  Module entry point and helpers shared by several files.
 */
#include "postgres.h"

#include "fmgr.h"

#include "segment.h"

PG_MODULE_MAGIC;

/* Raise a user-facing error unless n is an allowed number of score buckets. */
void
segment_check_buckets(int32 n)
{
	if (n < SEGMENT_MIN_BUCKETS || n > SEGMENT_MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of score buckets must be between %d and %d",
						SEGMENT_MIN_BUCKETS, SEGMENT_MAX_BUCKETS),
				 errdetail("Got %d.", n)));
}
