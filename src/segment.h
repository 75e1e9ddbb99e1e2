/*
 * segment.h
 *	  Declarations shared by the C files of the segment extension.
 */
#ifndef SEGMENT_H
#define SEGMENT_H

#include "postgres.h"
#include "fmgr.h"

/* Quantile scoring accepts 2..10 buckets (scores 1..n). */
#define SEGMENT_MIN_BUCKETS 2
#define SEGMENT_MAX_BUCKETS 10

extern void segment_check_buckets(int32 n);

#endif							/* SEGMENT_H */
