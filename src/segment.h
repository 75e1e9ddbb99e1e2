/*
 * segment.h
 *	  Declarations shared by the C files of the segment extension.
 */
#ifndef SEGMENT_H
#define SEGMENT_H

#include "postgres.h"
#include "fmgr.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/palloc.h"

/* Quantile scoring accepts 2..10 buckets (scores 1..n). */
#define SEGMENT_MIN_BUCKETS 2
#define SEGMENT_MAX_BUCKETS 10

extern void segment_check_buckets(int32 n);
extern void segment_check_finite(TimestampTz ts, const char *what);
extern void segment_check_arg_not_null(FunctionCallInfo fcinfo, int arg, const char *what);
extern TupleDesc segment_result_tupdesc(FunctionCallInfo fcinfo, int natts,
										const char *type_name);
extern StringInfoData segment_state_reader(bytea *bytes);
extern int64 segment_read_int64(StringInfo buf);
extern int32 segment_read_int32(StringInfo buf);
extern int	segment_read_byte(StringInfo buf);
extern float8 segment_read_float8(StringInfo buf);
extern const char *segment_read_bytes(StringInfo buf, int len);
extern void segment_read_end(StringInfo buf);
extern void segment_corrupt_state(const char *aggregate, const char *detail);
extern MemoryContext segment_aggregate_context(FunctionCallInfo fcinfo);
extern void segment_materialized_srf(FunctionCallInfo fcinfo);
extern void segment_sort_doubles(double *values, size_t n);
extern int64 segment_lower_bound(const double *values, int64 n, double v);
extern double segment_percentile_disc(double *values, int64 count, double fraction,
									  int64 *position);

#endif							/* SEGMENT_H */
