/*
 * segment.c
 *	  Module entry point and helpers shared by several files.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

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

/* Raise a user-facing error unless ts is finite. */
void
segment_check_finite(TimestampTz ts, const char *what)
{
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s must be finite", what),
				 errdetail("Got %s.", TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity")));
}

/* Raise a user-facing error if argument arg (named what) is NULL. */
void
segment_check_arg_not_null(FunctionCallInfo fcinfo, int arg, const char *what)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * The blessed result descriptor of a final function, looked up once per
 * query and checked against the number of fields the C code fills.
 */
TupleDesc
segment_result_tupdesc(FunctionCallInfo fcinfo, int natts, const char *type_name)
{
	TupleDesc	tupdesc = (TupleDesc) fcinfo->flinfo->fn_extra;

	if (tupdesc == NULL)
	{
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "function returning %s called in a context that does not accept a record",
				 type_name);
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = tupdesc;
	}
	if (tupdesc->natts != natts)
		elog(ERROR, "%s has %d attributes, expected %d", type_name, tupdesc->natts, natts);
	return tupdesc;
}

/*
 * A reader over a serialized aggregate state, for the pq_getmsg functions
 * (which check every read against its length).
 */
StringInfoData
segment_state_reader(bytea *bytes)
{
	StringInfoData buf;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	return buf;
}

/* A serialized state shorter than its contents say. */
static void
segment_state_short(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid serialized aggregate state"),
			 errdetail_internal("The state ends before its contents do.")));
}

/*
 * Readers of a serialized state: the pq_getmsg functions with a corrupt
 * state reported as one (XX001), not as a protocol violation (08P01).
 */
int64
segment_read_int64(StringInfo buf)
{
	if (buf->len - buf->cursor < (int) sizeof(int64))
		segment_state_short();
	return pq_getmsgint64(buf);
}

int32
segment_read_int32(StringInfo buf)
{
	if (buf->len - buf->cursor < (int) sizeof(int32))
		segment_state_short();
	return (int32) pq_getmsgint(buf, 4);
}

int
segment_read_byte(StringInfo buf)
{
	if (buf->len - buf->cursor < 1)
		segment_state_short();
	return pq_getmsgbyte(buf);
}

float8
segment_read_float8(StringInfo buf)
{
	if (buf->len - buf->cursor < (int) sizeof(float8))
		segment_state_short();
	return pq_getmsgfloat8(buf);
}

const char *
segment_read_bytes(StringInfo buf, int len)
{
	if (len < 0 || len > buf->len - buf->cursor)
		segment_state_short();
	return pq_getmsgbytes(buf, len);
}

/* The end of a serialized state: nothing may follow. */
void
segment_read_end(StringInfo buf)
{
	if (buf->cursor != buf->len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid serialized aggregate state"),
				 errdetail_internal("%d bytes follow the contents of the state.",
									buf->len - buf->cursor)));
}

/* An error for a serialized state that cannot have been written by us. */
void
segment_corrupt_state(const char *aggregate, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid serialized %s aggregate state", aggregate),
			 errdetail_internal("%s", detail)));
}

/*
 * The aggregate context of a support function; a user-facing error (not
 * XX000) when the function is called outside an aggregate, e.g. in a SELECT.
 */
MemoryContext
segment_aggregate_context(FunctionCallInfo fcinfo)
{
	MemoryContext aggcontext;
	char	   *name = NULL;

	if (AggCheckCallContext(fcinfo, &aggcontext))
		return aggcontext;
	if (fcinfo->flinfo != NULL && OidIsValid(fcinfo->flinfo->fn_oid))
		name = get_func_name(fcinfo->flinfo->fn_oid);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s called in non-aggregate context", name ? name : "aggregate support function"),
			 errdetail("It is a support function of an aggregate of the segment extension."),
			 errhint("Call the aggregate instead.")));
	return NULL;				/* keep the compiler quiet */
}

/* Set up a materialized set-returning call. */
void
segment_materialized_srf(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, 0);
}
