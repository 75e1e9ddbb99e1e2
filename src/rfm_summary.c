/*
 * rfm_summary.c
 *	  The stored segment.rfm_summary of a refresh's stage: appended to, and
 *	  read in plain form.
 *
 * An incremental refresh whose change log holds only new orders of a
 * customer, all on the day of the customer's last stored order or later,
 * need not read the customer's older orders again: the rfm_summary of the
 * new orders appends to the stored one.  Only the stored last day can also
 * be a new purchase day (the caller says whether it is: days are the
 * session's time zone's), so the distinct days add up, less that one; the
 * money sums add exactly (numeric); the mean amount and mean gap are
 * computed as the rfm aggregate's final function computes them (src/rfm.c),
 * so the result equals rfm() over all the orders to the bit.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/int.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "clv.h"
#include "segment.h"

#define RFM_SUMMARY_NATTS 7

PG_FUNCTION_INFO_V1(segment_rfm_append);

typedef struct RfmFigures
{
	TimestampTz first_order;
	TimestampTz last_order;
	int64		orders;
	int32		purchase_days;
	Datum		monetary;
} RfmFigures;

static void
rfm_append_invalid(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid rfm_summary to append"),
			 errdetail("%s", detail)));
}

/* The figures of an rfm_summary, checked to be ones rfm() can return. */
static void
rfm_append_read(HeapTupleHeader summary, RfmFigures *f)
{
	Datum		values[RFM_SUMMARY_NATTS];
	bool		nulls[RFM_SUMMARY_NATTS];
	int			i;
	TupleDesc	tupdesc;
	HeapTupleData tuple;

	tupdesc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(summary),
									 HeapTupleHeaderGetTypMod(summary));
	if (tupdesc->natts != RFM_SUMMARY_NATTS)
		elog(ERROR, "segment.rfm_summary has %d attributes, expected %d",
			 tupdesc->natts, RFM_SUMMARY_NATTS);
	tuple.t_len = HeapTupleHeaderGetDatumLength(summary);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = summary;
	heap_deform_tuple(&tuple, tupdesc, values, nulls);
	ReleaseTupleDesc(tupdesc);

	for (i = 0; i < 5; i++)
		if (nulls[i])
			rfm_append_invalid("Its first_order, last_order, orders, purchase_days and monetary must not be null.");
	f->first_order = DatumGetTimestampTz(values[0]);
	f->last_order = DatumGetTimestampTz(values[1]);
	f->orders = DatumGetInt64(values[2]);
	f->purchase_days = DatumGetInt32(values[3]);
	f->monetary = values[4];
	if (TIMESTAMP_NOT_FINITE(f->first_order) || TIMESTAMP_NOT_FINITE(f->last_order) ||
		f->first_order > f->last_order)
		rfm_append_invalid("Its first_order and last_order must be finite, in that order.");
	if (f->orders < 1 || f->purchase_days < 1 || f->purchase_days > f->orders)
		rfm_append_invalid("It must have at least one order, and between one purchase day and one per order.");
	if (numeric_is_nan(DatumGetNumeric(f->monetary)) || numeric_is_inf(DatumGetNumeric(f->monetary)))
		rfm_append_invalid("Its monetary must be a finite number.");
}

/*
 * rfm_append(stored, appended, same_day): the figures of a customer whose
 * orders are those of stored and those of appended, appended's on stored's
 * last day (same_day: its first one is) or later days.
 */
Datum
segment_rfm_append(PG_FUNCTION_ARGS)
{
	RfmFigures	a,
				b;
	TupleDesc	tupdesc;
	Datum		values[RFM_SUMMARY_NATTS];
	bool		nulls[RFM_SUMMARY_NATTS] = {0};
	bool		same_day = PG_GETARG_BOOL(2);
	int64		orders;
	int64		ndays;

	rfm_append_read(PG_GETARG_HEAPTUPLEHEADER(0), &a);
	rfm_append_read(PG_GETARG_HEAPTUPLEHEADER(1), &b);
	if (!same_day && b.first_order <= a.last_order)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("appended orders must come after the stored ones"),
				 errhint("Pass same_day => true when the first appended order is on the stored last order's day.")));
	if (pg_add_s64_overflow(a.orders, b.orders, &orders))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("order count out of range")));
	ndays = (int64) a.purchase_days + b.purchase_days - (same_day ? 1 : 0);
	if (ndays > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("purchase day count out of range")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE ||
		tupdesc->natts != RFM_SUMMARY_NATTS)
		elog(ERROR, "rfm_append must return segment.rfm_summary");
	tupdesc = BlessTupleDesc(tupdesc);

	/* as segment_rfm_summary() (src/rfm.c) computes them */
	values[0] = TimestampTzGetDatum(Min(a.first_order, b.first_order));
	values[1] = TimestampTzGetDatum(Max(a.last_order, b.last_order));
	values[2] = Int64GetDatum(orders);
	values[3] = Int32GetDatum((int32) ndays);
	values[4] = DirectFunctionCall2(numeric_add, a.monetary, b.monetary);
	values[5] = DirectFunctionCall2(numeric_div, values[4],
									DirectFunctionCall1(int8_numeric, Int64GetDatum(orders)));
	if (ndays > 1)
		values[6] = Float8GetDatum((double) (Max(a.last_order, b.last_order) -
											 Min(a.first_order, b.first_order)) /
								   USECS_PER_DAY / (ndays - 1));
	else
		nulls[6] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * segment_internal.unpacked(s segment.rfm_summary) returns s in plain form.
 *
 * A refresh reads a customer's figures as fields of the composite the stage
 * stores, (st.s).orders and so on.  Stored, a composite this small has a
 * one-byte header, and every field read copies it into a 4-byte-header copy
 * first (ExecEvalFieldSelect's detoast): ten copies per customer.  Read
 * through this function once, below an OFFSET 0, the fields are read from
 * one plain copy.  Any value of the type is its own plain form: nothing to
 * validate.
 */
PG_FUNCTION_INFO_V1(segment_unpacked);

Datum
segment_unpacked(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(PointerGetDatum(PG_DETOAST_DATUM(PG_GETARG_DATUM(0))));
}

/*
 * segment_internal.numeric_double(numeric): the cast to double precision,
 * whose numeric_float8() prints the numeric and reads the text back with
 * strtod(), about 0.6 microseconds a value.  An amount of at most 2^53 units
 * of 10^-scale (scale <= 22) is one exact division by an exact power of ten,
 * correctly rounded as strtod() rounds: the same double
 * (clv_summary_amount(), which lifetime value's summaries read amounts
 * with).  Any other numeric, NaN and infinities included, goes through the
 * cast.
 */
PG_FUNCTION_INFO_V1(segment_numeric_double);

Datum
segment_numeric_double(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(clv_summary_amount(PG_GETARG_DATUM(0)));
}
