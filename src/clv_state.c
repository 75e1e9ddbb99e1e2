/*
 * clv_state.c
 *	  The float8[] row-list state shared by the lifetime-value aggregates.
 *
 * The fits have no sufficient statistics (the BG/NBD likelihood needs every
 * customer's (x, t_x, T)), so the state keeps the rows themselves, as the
 * breaks aggregate of quantile.c keeps its values: a concrete SQL type that
 * can be combined, appended to in place in the aggregate context.  Layout in
 * clv.h.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/memutils.h"

#include "clv.h"

static void
clv_rows_corrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid lifetime-value aggregate state"),
			 errdetail("The state must be a float8 array written by the same aggregate.")));
}

static void
clv_rows_corrupt_detail(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid lifetime-value aggregate state"),
			 errdetail_internal("%s", detail)));
}

/* Whether v is a whole number in [lo, hi] (false for NaN and the infinities). */
static bool
clv_whole_in(double v, double lo, double hi)
{
	return v >= lo && v <= hi && v == floor(v);
}

/* Whether the three settings of a state are ones its kind's transition writes. */
static bool
clv_settings_ok(int kind, const float8 *settings)
{
	switch (kind)
	{
		case CLV_KIND_PARETO:
			/* no settings */
			return settings[0] == 0 && settings[1] == 0 && settings[2] == 0;
		case CLV_KIND_BGNBD:
		case CLV_KIND_MBGNBD:
			/* penalizer */
			return settings[0] >= 0 && isfinite(settings[0]) &&
				settings[1] == 0 && settings[2] == 0;
		case CLV_KIND_GG:
			/* penalizer, one-time buyers skipped */
			return settings[0] >= 0 && isfinite(settings[0]) &&
				clv_whole_in(settings[1], 0, 9007199254740992.0) && settings[2] == 0;
		case CLV_KIND_SUMMARY:
			/* as_of day, days per time unit, days per purchase period */
			return clv_whole_in(settings[0], DATETIME_MIN_JULIAN - POSTGRES_EPOCH_JDATE,
								DATE_END_JULIAN - POSTGRES_EPOCH_JDATE - 1) &&
				(settings[1] == 1 || settings[1] == 7) &&
				(settings[2] == 1 || settings[2] == 7);
	}
	return false;
}

/* Validate a state array written by an aggregate of the given kind. */
void
clv_rows_read(ArrayType *state, int kind, int width, ClvRows *rows)
{
	float8	   *data;

	if (ARR_NDIM(state) != 1 || ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID ||
		ARR_DIMS(state)[0] < CLV_STATE_HEADER)
		clv_rows_corrupt();
	data = (float8 *) ARR_DATA_PTR(state);
	rows->state = state;
	rows->width = width;
	rows->kind = kind;
	rows->capacity = (ARR_DIMS(state)[0] - CLV_STATE_HEADER) / width;
	if (data[1] != width || data[2] != kind ||
		!(data[0] >= 0 && data[0] <= rows->capacity && data[0] == floor(data[0])))
		clv_rows_corrupt();
	rows->count = (int64) data[0];
	memcpy(rows->settings, data + 3, sizeof(rows->settings));
	if (!clv_settings_ok(kind, rows->settings))
		clv_rows_corrupt_detail("The settings in the state header are out of range.");
}

/* Whether one row of a state is one its kind's transition function accepts. */
static bool
clv_row_ok(const ClvRows *rows, const float8 *row)
{
	switch (rows->kind)
	{
		case CLV_KIND_BGNBD:
		case CLV_KIND_MBGNBD:
		case CLV_KIND_PARETO:
			/* (x, t_x, T): x whole, 0 <= t_x <= T, t_x > 0 exactly when x > 0 */
			return clv_whole_in(row[0], 0, DBL_MAX) && isfinite(row[1]) &&
				isfinite(row[2]) && row[1] >= 0 && row[2] >= row[1] &&
				(row[0] == 0) == (row[1] == 0);
		case CLV_KIND_GG:
			/* (x, mean value) of a repeat customer */
			return clv_whole_in(row[0], 1, DBL_MAX) && row[1] > 0 && isfinite(row[1]);
		case CLV_KIND_SUMMARY:
			/* (day, amount): a day up to as_of, an amount >= 0 */
			return clv_whole_in(row[0], DATETIME_MIN_JULIAN - POSTGRES_EPOCH_JDATE,
								rows->settings[0]) &&
				row[1] >= 0 && isfinite(row[1]);
	}
	return false;
}

/*
 * Check every row of a state before a final function uses them: a state may
 * come from a user-written aggregate (say array_cat as the transition), and
 * a NaN would break the sorts and the fits' loops.
 */
void
clv_rows_check(const ClvRows *rows)
{
	const float8 *data;
	int64		i;

	if (rows->state == NULL)
		return;
	data = clv_rows_data(rows);
	for (i = 0; i < rows->count; i++)
	{
		const float8 *row = data + i * rows->width;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (!clv_row_ok(rows, row))
			clv_rows_corrupt_detail(rows->width == 3 ?
									psprintf("Row " INT64_FORMAT ", (%g, %g, %g), is not one the transition function accepts.",
											 i + 1, row[0], row[1], row[2]) :
									psprintf("Row " INT64_FORMAT ", (%g, %g), is not one the transition function accepts.",
											 i + 1, row[0], row[1]));
	}
}

/* An empty row list (no array yet) with the given settings. */
void
clv_rows_init(ClvRows *rows, int kind, int width, const float8 *settings)
{
	rows->state = NULL;
	rows->count = 0;
	rows->capacity = 0;
	rows->width = width;
	rows->kind = kind;
	memcpy(rows->settings, settings, sizeof(rows->settings));
}

/* Raise an error unless the first nsettings settings equal the state's. */
void
clv_rows_check_settings(const ClvRows *rows, const float8 *settings, int nsettings,
						const char *what)
{
	int			i;

	for (i = 0; i < nsettings; i++)
		if (rows->settings[i] != settings[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be the same for all rows", what)));
}

/* The first value of the first row. */
float8 *
clv_rows_data(const ClvRows *rows)
{
	return (float8 *) ARR_DATA_PTR(rows->state) + CLV_STATE_HEADER;
}

/* Lexicographic order of two rows of *(int *) width values. */
static int
clv_row_cmp(const void *pa, const void *pb, void *width)
{
	const float8 *a = pa;
	const float8 *b = pb;
	int			i;

	for (i = 0; i < *(int *) width; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/*
 * Sorts specialised for the rows of the fits, (x, mean value) and (x, t_x, T):
 * a fit over a million customers spent a third of its time in qsort_arg()
 * and its comparison calls.  The order is clv_row_cmp()'s.
 */
typedef struct ClvRow2
{
	double		v[2];
} ClvRow2;

typedef struct ClvRow3
{
	double		v[3];
} ClvRow3;

static inline int
clv_row2_cmp(const ClvRow2 *a, const ClvRow2 *b)
{
	if (a->v[0] != b->v[0])
		return a->v[0] < b->v[0] ? -1 : 1;
	if (a->v[1] != b->v[1])
		return a->v[1] < b->v[1] ? -1 : 1;
	return 0;
}

static inline int
clv_row3_cmp(const ClvRow3 *a, const ClvRow3 *b)
{
	if (a->v[0] != b->v[0])
		return a->v[0] < b->v[0] ? -1 : 1;
	if (a->v[1] != b->v[1])
		return a->v[1] < b->v[1] ? -1 : 1;
	if (a->v[2] != b->v[2])
		return a->v[2] < b->v[2] ? -1 : 1;
	return 0;
}

#define ST_SORT clv_sort_rows2
#define ST_ELEMENT_TYPE ClvRow2
#define ST_COMPARE(a, b) clv_row2_cmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

#define ST_SORT clv_sort_rows3
#define ST_ELEMENT_TYPE ClvRow3
#define ST_COMPARE(a, b) clv_row3_cmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

StaticAssertDecl(sizeof(ClvRow2) == 2 * sizeof(double) && sizeof(ClvRow3) == 3 * sizeof(double),
				 "a row is its values");

/* Below this many rows the comparison sorts above are as fast. */
#define CLV_RADIX_MIN_ROWS 4096

/*
 * An unsigned key that orders finite doubles as < does, -0 and 0 as one
 * value (they compare equal).
 */
static inline uint64
clv_radix_key(double v)
{
	uint64		u;

	if (v == 0)
		v = 0.0;
	memcpy(&u, &v, sizeof(u));
	return (u & UINT64CONST(0x8000000000000000)) ? ~u : (u | UINT64CONST(0x8000000000000000));
}

/*
 * Sort n rows of width 2 or 3 of finite values into clv_row_cmp()'s order,
 * by a least-significant-digit radix sort on the values' keys, a byte at a
 * time, the last column first; a byte that every row shares (the high bytes
 * of counts and whole days) takes no pass.  Equal rows end up next to each
 * other, as clv_rows_distinct() needs.
 */
static void
clv_radix_sort_rows(double *rows, int64 n, int width)
{
	int64	   *hist = palloc0(sizeof(int64) * width * 8 * 256);
	double	   *tmp = palloc(mul_size(n, width * sizeof(double)));
	double	   *src = rows,
			   *dst = tmp;
	int64		i;
	int			col,
				byte;

	/* every byte's counts in one pass: a pass moves rows, not digits */
	for (i = 0; i < n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (col = 0; col < width; col++)
		{
			uint64		k = clv_radix_key(rows[i * width + col]);

			for (byte = 0; byte < 8; byte++)
				hist[(col * 8 + byte) * 256 + ((k >> (8 * byte)) & 0xFF)]++;
		}
	}
	for (col = width - 1; col >= 0; col--)
	{
		for (byte = 0; byte < 8; byte++)
		{
			int64	   *h = hist + (col * 8 + byte) * 256;
			int64		pos = 0;
			int			d;
			double	   *swap;

			for (d = 0; d < 256; d++)
				if (h[d] == n)
					break;
			if (d < 256)
				continue;		/* one digit for every row */
			for (d = 0; d < 256; d++)
			{
				int64		c = h[d];

				h[d] = pos;
				pos += c;
			}
			for (i = 0; i < n; i++)
			{
				uint64		k = clv_radix_key(src[i * width + col]);
				int64		to = h[(k >> (8 * byte)) & 0xFF]++;

				if ((i & 0xFFFF) == 0)
					CHECK_FOR_INTERRUPTS();
				memcpy(dst + to * width, src + i * width, width * sizeof(double));
			}
			swap = src;
			src = dst;
			dst = swap;
		}
	}
	if (src != rows)
		memcpy(rows, src, mul_size(n, width * sizeof(double)));
	pfree(tmp);
	pfree(hist);
}

/*
 * How the rows of a fit are packed into 64-bit keys that sort as the rows do
 * (clv_row_cmp()'s order): each column in its own bits, the first column in
 * the highest.  Rows (x, t_x, T) of whole numbers (days) keep each value as
 * it is, in as many bits as its largest needs; rows (x, mean value) of a
 * whole x and a mean >= 0 keep the mean's bits less the smallest mean's (the
 * bits of doubles >= 0 order as the doubles do).
 */
typedef struct ClvPacking
{
	int			width;
	int			shift[3];		/* the lowest bit of each column */
	uint64		mask[3];		/* its bits, shifted down */
	uint64		offset;			/* width 2: the smallest mean's bits */
} ClvPacking;

/* Bits needed for v. */
static inline int
clv_bits_for(uint64 v)
{
	return v == 0 ? 0 : pg_leftmost_one_pos64(v) + 1;
}

static inline uint64
clv_double_bits(double v)
{
	uint64		u;

	memcpy(&u, &v, sizeof(u));
	return u;
}

/*
 * Pack n rows of width 2 or 3 into keys; false, with keys unspecified, when
 * a value is not one that packs (weeks are sevenths, a negative zero, a mean
 * whose range with x's takes more than 64 bits): the rows are then sorted as
 * they are.
 */
static bool
clv_pack_rows(const double *rows, int64 n, int width, uint64 *keys, ClvPacking *p)
{
	uint64		top[3] = {0, 0, 0};
	uint64		low = PG_UINT64_MAX;
	int			bits[3];
	int64		i;
	int			col;

	memset(p, 0, sizeof(*p));
	p->width = width;
	if (n == 0 || (width != 2 && width != 3))
		return false;
	for (i = 0; i < n; i++)
	{
		const double *row = rows + i * width;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (col = 0; col < width; col++)
		{
			double		v = row[col];

			if (col == 1 && width == 2)
			{
				uint64		u = clv_double_bits(v);

				/* >= 0 and finite, not -0: its bits order as it does */
				if (!(v >= 0 && isfinite(v)) || (u >> 63) != 0)
					return false;
				top[col] = Max(top[col], u);
				low = Min(low, u);
				continue;
			}
			if (!(v >= 0 && v < (double) (1 << 22) && v == floor(v)) || signbit(v))
				return false;
			top[col] = Max(top[col], (uint64) v);
		}
	}
	if (width == 2)
	{
		p->offset = low;
		top[1] -= low;
	}
	for (col = 0; col < width; col++)
		bits[col] = clv_bits_for(top[col]);
	if (bits[0] + bits[1] + (width == 3 ? bits[2] : 0) > 64)
		return false;
	p->shift[width - 1] = 0;
	for (col = width - 2; col >= 0; col--)
		p->shift[col] = p->shift[col + 1] + bits[col + 1];
	for (col = 0; col < width; col++)
		p->mask[col] = bits[col] == 0 ? 0 : PG_UINT64_MAX >> (64 - bits[col]);
	for (i = 0; i < n; i++)
	{
		const double *row = rows + i * width;
		uint64		key = 0;

		for (col = 0; col < width; col++)
		{
			uint64		v = (col == 1 && width == 2) ?
				clv_double_bits(row[col]) - p->offset : (uint64) row[col];

			key |= v << p->shift[col];
		}
		keys[i] = key;
	}
	return true;
}

/* The row of a key clv_pack_rows() made. */
static inline void
clv_unpack_row(const ClvPacking *p, uint64 key, double *row)
{
	int			col;

	for (col = 0; col < p->width; col++)
	{
		uint64		v = (key >> p->shift[col]) & p->mask[col];

		if (col == 1 && p->width == 2)
		{
			v += p->offset;
			memcpy(&row[col], &v, sizeof(double));
		}
		else
			row[col] = (double) v;
	}
}

/* Sort keys by a least-significant-digit radix sort, a byte at a time, skipping bytes all share. */
static void
clv_radix_sort_keys(uint64 *keys, int64 n)
{
	int64	   *hist = palloc0(sizeof(int64) * 8 * 256);
	uint64	   *tmp = palloc(mul_size(n, sizeof(uint64)));
	uint64	   *src = keys,
			   *dst = tmp;
	int64		i;
	int			byte;

	for (i = 0; i < n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (byte = 0; byte < 8; byte++)
			hist[byte * 256 + ((src[i] >> (8 * byte)) & 0xFF)]++;
	}
	for (byte = 0; byte < 8; byte++)
	{
		int64	   *h = hist + byte * 256;
		int64		pos = 0;
		int			d;
		uint64	   *swap;

		for (d = 0; d < 256; d++)
			if (h[d] == n)
				break;
		if (d < 256)
			continue;			/* one digit for every key */
		for (d = 0; d < 256; d++)
		{
			int64		c = h[d];

			h[d] = pos;
			pos += c;
		}
		for (i = 0; i < n; i++)
		{
			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			dst[h[(src[i] >> (8 * byte)) & 0xFF]++] = src[i];
		}
		swap = src;
		src = dst;
		dst = swap;
	}
	if (src != keys)
		memcpy(keys, src, mul_size(n, sizeof(uint64)));
	pfree(tmp);
	pfree(hist);
}

/*
 * clv_rows_distinct() of rows that clv_pack_rows() packs: the keys sorted,
 * and each distinct one unpacked with its count.  -1 when they do not pack.
 */
static int64
clv_rows_distinct_packed(const double *rows, int64 count, int width, double *sorted, double *w)
{
	uint64	   *keys = palloc(mul_size(count, sizeof(uint64)));
	ClvPacking	packing;
	int64		i,
				n = 0;

	if (!clv_pack_rows(rows, count, width, keys, &packing))
	{
		pfree(keys);
		return -1;
	}
	clv_radix_sort_keys(keys, count);
	for (i = 0; i < count; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (n > 0 && keys[i] == keys[i - 1])
		{
			w[n - 1] += 1;
			continue;
		}
		clv_unpack_row(&packing, keys[i], sorted + n * width);
		w[n] = 1;
		n++;
	}
	pfree(keys);
	return n;
}

/*
 * The distinct rows of a state, sorted, and how many times each occurs: a fit
 * evaluates each distinct customer history once, weighted.  Returns their
 * number; *distinct (that many rows of rows->width values) and *weights are
 * palloc'd.
 */
int64
clv_rows_distinct(const ClvRows *rows, double **distinct, double **weights)
{
	int			width = rows->width;
	double	   *sorted = palloc(mul_size(rows->count, width * sizeof(double)));
	double	   *w = palloc(mul_size(Max(rows->count, 1), sizeof(double)));
	int64		i,
				n = 0;

	/* as packed keys: a third (days) or half (means) of the bytes to move */
	if ((width == 2 || width == 3) && rows->count >= CLV_RADIX_MIN_ROWS)
	{
		n = clv_rows_distinct_packed(clv_rows_data(rows), rows->count, width, sorted, w);
		if (n >= 0)
		{
			*distinct = sorted;
			*weights = w;
			return n;
		}
		n = 0;
	}
	if (rows->count > 0)
		memcpy(sorted, clv_rows_data(rows), rows->count * width * sizeof(double));
	if ((width == 2 || width == 3) && rows->count >= CLV_RADIX_MIN_ROWS)
		clv_radix_sort_rows(sorted, rows->count, width);
	else if (width == 2)
		clv_sort_rows2((ClvRow2 *) sorted, rows->count);
	else if (width == 3)
		clv_sort_rows3((ClvRow3 *) sorted, rows->count);
	else
		qsort_arg(sorted, rows->count, width * sizeof(double), clv_row_cmp, &width);
	for (i = 0; i < rows->count; i++)
	{
		double	   *row = sorted + i * width;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (n > 0 && clv_row_cmp(row, sorted + (n - 1) * width, &width) == 0)
		{
			w[n - 1] += 1;
			continue;
		}
		memmove(sorted + n * width, row, width * sizeof(double));
		w[n] = 1;
		n++;
	}
	*distinct = sorted;
	*weights = w;
	return n;
}

/*
 * Make room for nrows more rows and return where they go; the caller fills
 * them.  When the array is full a new one, twice as large, is built in
 * CurrentMemoryContext: the executor copies a changed transition value into
 * the aggregate context and frees the old one.
 */
float8 *
clv_rows_append(ClvRows *rows, int64 nrows, int64 initial_capacity)
{
	float8	   *data;

	if (rows->state == NULL || rows->count + nrows > rows->capacity)
	{
		int64		newcap = Max(Max(rows->capacity * 2, rows->count + nrows), initial_capacity);
		int64		maxcap = (int64) ((MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(float8)
									  - CLV_STATE_HEADER) / rows->width;
		ArrayType  *grown;
		Size		nbytes;

		if (rows->count + nrows > maxcap)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many rows for a lifetime-value aggregate"),
					 errdetail("At most " INT64_FORMAT " rows fit in one state.", maxcap),
					 errhint("Fit the model on a sample of customers, e.g. with TABLESAMPLE.")));
		newcap = Min(newcap, maxcap);
		nbytes = ARR_OVERHEAD_NONULLS(1) + (CLV_STATE_HEADER + newcap * rows->width) * sizeof(float8);
		grown = palloc(nbytes);
		SET_VARSIZE(grown, nbytes);
		grown->ndim = 1;
		grown->dataoffset = 0;
		grown->elemtype = FLOAT8OID;
		ARR_DIMS(grown)[0] = (int) (CLV_STATE_HEADER + newcap * rows->width);
		ARR_LBOUND(grown)[0] = 1;
		data = (float8 *) ARR_DATA_PTR(grown);
		data[1] = rows->width;
		data[2] = rows->kind;
		memcpy(data + 3, rows->settings, sizeof(rows->settings));
		if (rows->state != NULL)
			memcpy(data + CLV_STATE_HEADER, clv_rows_data(rows),
				   rows->count * rows->width * sizeof(float8));
		/* the spare capacity is zeroed: it is part of the array a caller may read */
		memset(data + CLV_STATE_HEADER + rows->count * rows->width, 0,
			   (newcap - rows->count) * rows->width * sizeof(float8));
		rows->state = grown;
		rows->capacity = newcap;
	}
	data = (float8 *) ARR_DATA_PTR(rows->state);
	data[0] = rows->count + nrows;
	rows->count += nrows;
	return data + CLV_STATE_HEADER + (rows->count - nrows) * rows->width;
}
