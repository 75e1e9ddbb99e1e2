/*
 * quantile.c
 *	  Exact quantile cut points (the breaks aggregate) and scoring against them.
 *
 * breaks(value, n) returns the n-1 cut points b_i = percentile_disc(i/n): the
 * smallest value such that at least i/n of the values are at or below it.
 * score(value, breaks) puts a value in bucket k = 1 + #{b_i < value}, so a
 * value equal to a cut point belongs to the lower bucket and equal values
 * always get equal scores (unlike NTILE, which splits a run of equal values
 * across buckets by row order).
 *
 * The breaks aggregate runs across all customers, so its state is a concrete
 * SQL type (float8[]) rather than "internal": Citus pushes a custom aggregate
 * down to the shards partially only then.  Layout of the state array:
 *   [0] number of values stored, [1] n, [2 ..] values, then spare capacity.
 * The rank_at aggregate (one percentile_disc with its ranks) keeps the same
 * layout with its fraction in [1].
 * The transition function appends in place (the state is ours, in the
 * aggregate context) and doubles the array when full, so adding a value costs
 * O(1) amortised, as in float8_accum.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "segment.h"

#define BREAKS_HEADER 2			/* count and n precede the values */
#define BREAKS_INITIAL_CAPACITY 1024

PG_FUNCTION_INFO_V1(segment_breaks_trans);
PG_FUNCTION_INFO_V1(segment_breaks_combine);
PG_FUNCTION_INFO_V1(segment_breaks_final);
PG_FUNCTION_INFO_V1(segment_breaks_ranked_final);
PG_FUNCTION_INFO_V1(segment_breaks_histogram_final);
PG_FUNCTION_INFO_V1(segment_score);
PG_FUNCTION_INFO_V1(segment_rank_at_trans);
PG_FUNCTION_INFO_V1(segment_rank_at_combine);
PG_FUNCTION_INFO_V1(segment_rank_at_final);

/* A 1-D float8 array with room for capacity values, in CurrentMemoryContext. */
static ArrayType *
breaks_state_alloc(int64 capacity, float8 param)
{
	ArrayType  *state;
	Size		nbytes;
	float8	   *data;

	if (capacity > (int64) ((MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(float8)) - BREAKS_HEADER)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many values for exact quantile breaks"),
				 errhint("Compute the breaks on a sample, e.g. with TABLESAMPLE.")));
	nbytes = ARR_OVERHEAD_NONULLS(1) + (capacity + BREAKS_HEADER) * sizeof(float8);
	/* zeroed: the spare capacity is part of the array a caller may read */
	state = palloc0(nbytes);
	SET_VARSIZE(state, nbytes);
	state->ndim = 1;
	state->dataoffset = 0;
	state->elemtype = FLOAT8OID;
	ARR_DIMS(state)[0] = (int) (capacity + BREAKS_HEADER);
	ARR_LBOUND(state)[0] = 1;
	data = (float8 *) ARR_DATA_PTR(state);
	data[0] = 0;
	data[1] = param;
	return state;
}

static void
breaks_corrupt_state(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid breaks aggregate state"),
			 errdetail("The state must be a float8 array written by the breaks aggregate.")));
}

/*
 * Validate a state array and return its count; the state may come from a
 * user-written aggregate that reuses our functions, so never trust it.
 */
static int64
breaks_state_count(ArrayType *state, int64 *capacity, int32 *n)
{
	float8	   *data;
	int64		count;

	if (ARR_NDIM(state) != 1 || ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID ||
		ARR_DIMS(state)[0] < BREAKS_HEADER)
		breaks_corrupt_state();
	data = (float8 *) ARR_DATA_PTR(state);
	*capacity = ARR_DIMS(state)[0] - BREAKS_HEADER;
	if (!(data[0] >= 0 && data[0] <= *capacity && data[0] == floor(data[0])) ||
		!(data[1] >= SEGMENT_MIN_BUCKETS && data[1] <= SEGMENT_MAX_BUCKETS &&
		  data[1] == floor(data[1])))
		breaks_corrupt_state();
	count = (int64) data[0];
	*n = (int32) data[1];
	return count;
}

static void
breaks_check_same_n(int32 a, int32 b)
{
	if (a != b)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of score buckets must be the same for all rows"),
				 errdetail("Got %d and %d.", a, b)));
}

/*
 * Return a state holding count + extra values, reusing the given one when it
 * has room.  A new state is built in CurrentMemoryContext: the executor copies
 * a changed transition value into the aggregate context and frees the old one.
 */
static ArrayType *
breaks_state_reserve(ArrayType *state, int64 count, int64 capacity, float8 param, int64 extra)
{
	ArrayType  *grown;
	int64		newcap;

	if (state != NULL && count + extra <= capacity)
		return state;
	newcap = Max(Max(capacity * 2, count + extra), BREAKS_INITIAL_CAPACITY);
	grown = breaks_state_alloc(newcap, param);
	if (state != NULL)
	{
		memcpy(ARR_DATA_PTR(grown) + BREAKS_HEADER * sizeof(float8),
			   ARR_DATA_PTR(state) + BREAKS_HEADER * sizeof(float8),
			   count * sizeof(float8));
		((float8 *) ARR_DATA_PTR(grown))[0] = count;
	}
	return grown;
}

/* Append one value to a state (reserved as needed); param is header [1]. */
static ArrayType *
breaks_state_append(ArrayType *state, int64 count, int64 capacity, float8 param, float8 value)
{
	float8	   *data;

	state = breaks_state_reserve(state, count, capacity, param, 1);
	data = (float8 *) ARR_DATA_PTR(state);
	data[BREAKS_HEADER + count] = value;
	data[0] = count + 1;
	return state;
}

/*
 * Append the right state's values to the left one (NULL: a new state); the
 * right state is never adopted, it belongs to someone else.
 */
static ArrayType *
breaks_state_concat(ArrayType *left, int64 lcount, int64 lcap, float8 param,
					ArrayType *right, int64 rcount)
{
	left = breaks_state_reserve(left, lcount, lcap, param, Max(rcount, 1));
	memcpy(ARR_DATA_PTR(left) + (BREAKS_HEADER + lcount) * sizeof(float8),
		   ARR_DATA_PTR(right) + BREAKS_HEADER * sizeof(float8),
		   rcount * sizeof(float8));
	((float8 *) ARR_DATA_PTR(left))[0] = lcount + rcount;
	return left;
}

/*
 * A copy of a state's count values, checked finite (the transitions store
 * finite values only; NaN would also break the selection): the final
 * functions may run more than once on one state, so it is not reordered.
 */
static float8 *
breaks_values_copy(ArrayType *state, int64 count, void (*corrupt) (void))
{
	float8	   *values = palloc(count * sizeof(float8));
	int64		i;

	memcpy(values, ARR_DATA_PTR(state) + BREAKS_HEADER * sizeof(float8), count * sizeof(float8));
	for (i = 0; i < count; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (!isfinite(values[i]))
			corrupt();
	}
	return values;
}

/* Twice the depth of a balanced partition of count values: breaks_select()'s limit. */
static int
breaks_select_depth(int64 count)
{
	int			depth = 2;

	for (; count > 1; count >>= 1)
		depth += 2;
	return depth;
}

/* breaks transition: remember one value; NULL values are skipped. */
Datum
segment_breaks_trans(PG_FUNCTION_ARGS)
{
	ArrayType  *state = NULL;
	int64		count = 0;
	int64		capacity = 0;
	int32		n;
	float8		value;

	(void) segment_aggregate_context(fcinfo);
	/* breaks(value) means five buckets */
	if (PG_NARGS() < 3)
		n = 5;
	else if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("number of score buckets must not be null")));
	else
		n = PG_GETARG_INT32(2);
	segment_check_buckets(n);

	if (!PG_ARGISNULL(0))
	{
		int32		state_n;

		state = PG_GETARG_ARRAYTYPE_P(0);
		count = breaks_state_count(state, &capacity, &state_n);
		breaks_check_same_n(state_n, n);
	}
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(state);
	}

	value = PG_GETARG_FLOAT8(1);
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value to compute breaks on must be finite"),
				 errdetail("Got %s.", isnan(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity"))));

	PG_RETURN_ARRAYTYPE_P(breaks_state_append(state, count, capacity, n, value));
}

/* breaks combine: append the right state's values to the left one. */
Datum
segment_breaks_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *left;
	ArrayType  *right;
	int64		lcount = 0,
				lcap = 0,
				rcount,
				rcap;
	int32		ln,
				rn;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	right = PG_GETARG_ARRAYTYPE_P(1);
	rcount = breaks_state_count(right, &rcap, &rn);

	if (PG_ARGISNULL(0))
	{
		left = NULL;
		ln = rn;
	}
	else
	{
		left = PG_GETARG_ARRAYTYPE_P(0);
		lcount = breaks_state_count(left, &lcap, &ln);
		breaks_check_same_n(ln, rn);
	}

	PG_RETURN_ARRAYTYPE_P(breaks_state_concat(left, lcount, lcap, ln, right, rcount));
}

/*
 * Doubles in ascending order (NaN-free; -0 and 0 equal): an inlined
 * comparison sorts a million values about twice as fast as qsort().  The
 * cut points here, the fits' distinct times (src/clv_bgnbd.c).
 */
#define ST_SORT segment_sort_doubles
#define ST_ELEMENT_TYPE float8
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE extern
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * The first index of n ascending values whose value is not below v (n when
 * none is: numpy's searchsorted, side left).
 */
int64
segment_lower_bound(const double *values, int64 n, double v)
{
	int64		lo = 0,
				hi = n;

	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (values[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline void
breaks_swap(float8 *a, int64 i, int64 j)
{
	float8		t = a[i];

	a[i] = a[j];
	a[j] = t;
}

/*
 * Hoare partition of a[lo..hi] (lo < hi) around the median of its first,
 * middle and last values, moved to a[lo] first: returns j, lo <= j < hi,
 * with every value of a[lo..j] <= every value of a[j+1..hi].  Runs of equal
 * values are split evenly, so many ties (order counts) cost nothing extra.
 */
static int64
breaks_partition(float8 *a, int64 lo, int64 hi)
{
	int64		mid = lo + (hi - lo) / 2;
	float8		pivot;
	int64		i = lo - 1;
	int64		j = hi + 1;

	/* a[lo] becomes the median of a[lo], a[mid], a[hi] */
	if (a[mid] < a[lo])
		breaks_swap(a, mid, lo);
	if (a[hi] < a[mid])
		breaks_swap(a, hi, mid);
	if (a[mid] < a[lo])
		breaks_swap(a, mid, lo);
	breaks_swap(a, lo, mid);
	pivot = a[lo];
	for (;;)
	{
		do
			i++;
		while (a[i] < pivot);
		do
			j--;
		while (a[j] > pivot);
		if (i >= j)
			return j;
		breaks_swap(a, i, j);
	}
}

/*
 * Puts the ranks[0..nranks) smallest values of a[lo..hi] (ranks ascending,
 * 0-based, within lo..hi) in their sorted places, as a full sort would: a
 * quickselect for several ranks at once, O(count * log(nranks)) expected
 * instead of a sort's O(count * log(count)).  Below depth 0 (a pivot choice
 * that keeps failing, as crafted values could make it) the range is sorted.
 */
static void
breaks_select(float8 *a, int64 lo, int64 hi, const int64 *ranks, int nranks, int depth)
{
	while (nranks > 0 && lo < hi)
	{
		int64		j;
		int			left;

		CHECK_FOR_INTERRUPTS();
		if (depth-- <= 0)
		{
			segment_sort_doubles(a + lo, hi - lo + 1);
			return;
		}
		j = breaks_partition(a, lo, hi);
		/* the ranks at or below j are in a[lo..j], the others in a[j+1..hi] */
		for (left = 0; left < nranks && ranks[left] <= j; left++)
			;
		if (left > 0 && left < nranks)
			breaks_select(a, lo, j, ranks, left, depth);
		if (left < nranks)
		{
			ranks += left;
			nranks -= left;
			lo = j + 1;
		}
		else
		{
			nranks = left;
			hi = j;
		}
	}
}

/* breaks final: the n-1 cut points, ascending; NULL when there were no values. */
/*
 * A copy of the state's values, with the n-1 cut points b_i found by
 * selection (the copy is left partitioned around them); NULL when there were
 * no values.  The final functions may run more than once on one state, so
 * the state itself is not reordered.
 */
static float8 *
breaks_cut_values(ArrayType *state, int64 *count, int32 *n, float8 *cuts)
{
	int64		capacity,
				i;
	float8	   *values;
	int64		ranks[SEGMENT_MAX_BUCKETS];

	*count = breaks_state_count(state, &capacity, n);
	if (*count == 0)
		return NULL;

	values = breaks_values_copy(state, *count, breaks_corrupt_state);
	/* b_i is the ceil(i * count / n)-th smallest value */
	for (i = 1; i < *n; i++)
		ranks[i - 1] = (i * *count + *n - 1) / *n - 1;
	breaks_select(values, 0, *count - 1, ranks, *n - 1, breaks_select_depth(*count));
	for (i = 1; i < *n; i++)
		cuts[i - 1] = values[ranks[i - 1]];
	return values;
}

/* breaks final: the n-1 cut points, ascending; NULL when there were no values. */
Datum
segment_breaks_final(PG_FUNCTION_ARGS)
{
	int64		count,
				i;
	int32		n;
	float8	   *values;
	float8		cuts[SEGMENT_MAX_BUCKETS];
	Datum		out[SEGMENT_MAX_BUCKETS];

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	values = breaks_cut_values(PG_GETARG_ARRAYTYPE_P(0), &count, &n, cuts);
	if (values == NULL)
		PG_RETURN_NULL();
	pfree(values);
	for (i = 1; i < n; i++)
		out[i - 1] = Float8GetDatum(cuts[i - 1]);

	PG_RETURN_ARRAYTYPE_P(construct_array(out, n - 1, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Validate user-given or computed breaks; returns their number. */
static int
score_check_breaks(ArrayType *breaks, const float8 **values)
{
	int			nb;
	int			i;
	const float8 *b;

	if (ARR_NDIM(breaks) != 1 || ARR_HASNULL(breaks) || ARR_ELEMTYPE(breaks) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("breaks must be a one-dimensional float8 array without nulls")));
	nb = ARR_DIMS(breaks)[0];
	if (nb + 1 < SEGMENT_MIN_BUCKETS || nb + 1 > SEGMENT_MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("breaks must have between %d and %d elements",
						SEGMENT_MIN_BUCKETS - 1, SEGMENT_MAX_BUCKETS - 1),
				 errdetail("Got %d.", nb)));
	b = (const float8 *) ARR_DATA_PTR(breaks);
	for (i = 0; i < nb; i++)
	{
		if (isnan(b[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("breaks must not contain NaN")));
		if (i > 0 && b[i] < b[i - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("breaks must be in ascending order"),
					 errdetail("Element %d (%g) is less than element %d (%g).",
							   i + 1, b[i], i, b[i - 1])));
	}
	*values = b;
	return nb;
}

/*
 * score(value, breaks, higher_is_better): the bucket 1..n of value, where
 * n = number of breaks + 1.  With higher_is_better = false (recency) the
 * scale is reversed, so the smallest values score n.
 */
Datum
segment_score(PG_FUNCTION_ARGS)
{
	float8		value = PG_GETARG_FLOAT8(0);
	ArrayType  *breaks = PG_GETARG_ARRAYTYPE_P(1);
	bool		higher_is_better = PG_GETARG_BOOL(2);
	const float8 *b;
	int			nb;
	int			lo,
				hi;

	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value to score must not be NaN")));
	nb = score_check_breaks(breaks, &b);

	/* lo = number of breaks strictly below value */
	lo = 0;
	hi = nb;
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (b[mid] < value)
			lo = mid + 1;
		else
			hi = mid;
	}
	PG_RETURN_INT32(higher_is_better ? lo + 1 : nb + 1 - lo);
}

/*
 * breaks_ranked final: the n-1 cut points of breaks(), then for each the
 * number of values below it, then the number at or below it (3(n-1)
 * elements).  An incremental refresh keeps these ranks to move the cut
 * points by what changed instead of sorting every value again.
 */
Datum
segment_breaks_ranked_final(PG_FUNCTION_ARGS)
{
	int64		count,
				i;
	int32		n,
				j;
	float8	   *values;
	float8		cuts[SEGMENT_MAX_BUCKETS];
	int64		below[SEGMENT_MAX_BUCKETS] = {0};
	int64		through[SEGMENT_MAX_BUCKETS] = {0};
	Datum		out[3 * (SEGMENT_MAX_BUCKETS - 1)];

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	values = breaks_cut_values(PG_GETARG_ARRAYTYPE_P(0), &count, &n, cuts);
	if (values == NULL)
		PG_RETURN_NULL();
	for (i = 0; i < count; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (j = 0; j < n - 1; j++)
		{
			below[j] += values[i] < cuts[j];
			through[j] += values[i] <= cuts[j];
		}
	}
	pfree(values);
	for (j = 0; j < n - 1; j++)
	{
		out[j] = Float8GetDatum(cuts[j]);
		out[n - 1 + j] = Float8GetDatum((float8) below[j]);
		out[2 * (n - 1) + j] = Float8GetDatum((float8) through[j]);
	}

	PG_RETURN_ARRAYTYPE_P(construct_array(out, 3 * (n - 1), FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * breaks_histogram final: the n-1 cut points of breaks(), then the distinct
 * values ascending and then how many times each occurs (n-1 + 2k elements),
 * for figures with few distinct values (whole days, orders): counted in an
 * array when the values are whole numbers in a span of at most
 * BREAKS_HISTOGRAM_MAX, else sorted.  Past BREAKS_HISTOGRAM_MAX distinct
 * values only the cut points.
 */
#define BREAKS_HISTOGRAM_MAX 100000

Datum
segment_breaks_histogram_final(PG_FUNCTION_ARGS)
{
	int64		count,
				i,
				k = 0;
	int32		n;
	float8	   *values;
	float8		cuts[SEGMENT_MAX_BUCKETS];
	float8		lo,
				hi;
	bool		whole = true;
	Datum	   *out;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	values = breaks_cut_values(PG_GETARG_ARRAYTYPE_P(0), &count, &n, cuts);
	if (values == NULL)
		PG_RETURN_NULL();

	lo = hi = values[0];
	for (i = 0; i < count; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		whole = whole && values[i] == floor(values[i]);
		lo = Min(lo, values[i]);
		hi = Max(hi, values[i]);
	}
	if (whole && hi - lo < BREAKS_HISTOGRAM_MAX)
	{
		int64		span = (int64) (hi - lo) + 1;
		int64	   *tally = palloc0(span * sizeof(int64));

		for (i = 0; i < count; i++)
			tally[(int64) (values[i] - lo)]++;
		for (i = 0; i < span; i++)
			k += tally[i] > 0;
		out = palloc((n - 1 + 2 * k) * sizeof(Datum));
		{
			int64		j = 0;

			for (i = 0; i < span; i++)
				if (tally[i] > 0)
				{
					out[n - 1 + j] = Float8GetDatum(lo + (float8) i);
					out[n - 1 + k + j] = Float8GetDatum((float8) tally[i]);
					j++;
				}
		}
		pfree(tally);
	}
	else
	{
		segment_sort_doubles(values, count);
		k = 1;
		for (i = 1; i < count && k <= BREAKS_HISTOGRAM_MAX; i++)
			k += values[i] != values[i - 1];
		if (k > BREAKS_HISTOGRAM_MAX)
			k = 0;
		out = palloc((n - 1 + 2 * k) * sizeof(Datum));
		if (k > 0)
		{
			int64		j = -1;

			for (i = 0; i < count; i++)
			{
				if (i == 0 || values[i] != values[i - 1])
				{
					j++;
					out[n - 1 + j] = Float8GetDatum(values[i]);
					out[n - 1 + k + j] = Float8GetDatum(0.0);
				}
				out[n - 1 + k + j] = Float8GetDatum(DatumGetFloat8(out[n - 1 + k + j]) + 1.0);
			}
		}
	}
	pfree(values);
	for (i = 1; i < n; i++)
		out[i - 1] = Float8GetDatum(cuts[i - 1]);

	PG_RETURN_ARRAYTYPE_P(construct_array(out, (int) (n - 1 + 2 * k), FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}


/*
 * percentile_disc(fraction) of count > 0 finite values, found by selection
 * (the values are reordered); its 0-based position in sorted order in
 * *position.  rank_at() and refresh_figures()'s high-value cut.
 */
double
segment_percentile_disc(double *values, int64 count, double fraction, int64 *position)
{
	/* the row percentile_disc() returns (src/backend/utils/adt/orderedsetaggs.c) */
	int64		rownum = (int64) ceil(fraction * count);

	*position = rownum <= 1 ? 0 : Min(rownum, count) - 1;
	breaks_select(values, 0, count - 1, position, 1, breaks_select_depth(count));
	return values[*position];
}

/*
 * rank_at(value, fraction): percentile_disc(fraction) of the values, found
 * by selection rather than a sort, with its ranks: {value, number of values
 * below it, number at or below it, number of values, its 0-based position}.
 * A refresh finds the top-spender cut with it in double precision and then
 * the exact numeric among the few figures with that double (the conversion
 * keeps the order), where percentile_disc over numeric sorted every figure.
 */
static void
rank_corrupt_state(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid rank_at aggregate state"),
			 errdetail("The state must be a float8 array written by the rank_at aggregate.")));
}

static int64
rank_state_count(ArrayType *state, int64 *capacity, float8 *fraction)
{
	float8	   *data;

	if (ARR_NDIM(state) != 1 || ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID ||
		ARR_DIMS(state)[0] < BREAKS_HEADER)
		rank_corrupt_state();
	data = (float8 *) ARR_DATA_PTR(state);
	*capacity = ARR_DIMS(state)[0] - BREAKS_HEADER;
	if (!(data[0] >= 0 && data[0] <= *capacity && data[0] == floor(data[0])) ||
		!(data[1] >= 0 && data[1] <= 1))
		rank_corrupt_state();
	*fraction = data[1];
	return (int64) data[0];
}

static void
rank_check_same_fraction(float8 a, float8 b)
{
	if (a != b)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fraction must be the same for all rows"),
				 errdetail("Got %g and %g.", a, b)));
}

/* rank_at transition: remember one value; NULL values are skipped. */
Datum
segment_rank_at_trans(PG_FUNCTION_ARGS)
{
	ArrayType  *state = NULL;
	int64		count = 0;
	int64		capacity = 0;
	float8		fraction;
	float8		value;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("fraction must not be null")));
	fraction = PG_GETARG_FLOAT8(2);
	if (!(fraction >= 0 && fraction <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("fraction %g is not between 0 and 1", fraction)));
	if (!PG_ARGISNULL(0))
	{
		float8		state_fraction;

		state = PG_GETARG_ARRAYTYPE_P(0);
		count = rank_state_count(state, &capacity, &state_fraction);
		rank_check_same_fraction(state_fraction, fraction);
	}
	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(state);
	}

	value = PG_GETARG_FLOAT8(1);
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value to rank must be finite"),
				 errdetail("Got %s.", isnan(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity"))));

	PG_RETURN_ARRAYTYPE_P(breaks_state_append(state, count, capacity, fraction, value));
}

/* rank_at combine: append the right state's values to the left one. */
Datum
segment_rank_at_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *left = NULL;
	ArrayType  *right;
	int64		lcount = 0,
				lcap = 0,
				rcount,
				rcap;
	float8		lf,
				rf;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	right = PG_GETARG_ARRAYTYPE_P(1);
	rcount = rank_state_count(right, &rcap, &rf);
	lf = rf;
	if (!PG_ARGISNULL(0))
	{
		left = PG_GETARG_ARRAYTYPE_P(0);
		lcount = rank_state_count(left, &lcap, &lf);
		rank_check_same_fraction(lf, rf);
	}

	PG_RETURN_ARRAYTYPE_P(breaks_state_concat(left, lcount, lcap, lf, right, rcount));
}

/* rank_at final: {value, below, at or below, count, position}; NULL without values. */
Datum
segment_rank_at_final(PG_FUNCTION_ARGS)
{
	ArrayType  *state;
	int64		count,
				capacity,
				position,
				below = 0,
				through = 0,
				i;
	float8		fraction;
	float8	   *values;
	float8		cut;
	Datum		out[5];

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = PG_GETARG_ARRAYTYPE_P(0);
	count = rank_state_count(state, &capacity, &fraction);
	if (count == 0)
		PG_RETURN_NULL();

	values = breaks_values_copy(state, count, rank_corrupt_state);
	cut = segment_percentile_disc(values, count, fraction, &position);
	for (i = 0; i < count; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		below += values[i] < cut;
		through += values[i] <= cut;
	}
	pfree(values);

	out[0] = Float8GetDatum(cut);
	out[1] = Float8GetDatum((float8) below);
	out[2] = Float8GetDatum((float8) through);
	out[3] = Float8GetDatum((float8) count);
	out[4] = Float8GetDatum((float8) position);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, 5, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
