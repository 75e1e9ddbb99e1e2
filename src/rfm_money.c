/*
 * rfm_money.c
 *	  The exact sum of order amounts inside the rfm aggregate's state.
 *
 * Order amounts are numeric with a few decimals (numeric(12,2) typically),
 * so the sum is kept as a 128-bit integer count of 10^-scale units, where
 * scale is the largest display scale seen: adding an amount is a few integer
 * operations on the state itself, with no allocation and no second memory
 * block to visit per order (PostgreSQL's numeric accumulator, behind
 * sum(numeric), keeps its digits in separately allocated arrays).  The result
 * is the same numeric, display scale included, as sum(numeric).
 *
 * An amount or a sum beyond about 10^37 units of 10^-scale switches the state,
 * for good, to a numeric sum (numeric_add), so any numeric is still summed
 * exactly.  Without a 128-bit integer type the state starts in that mode.
 *
 * Reading an amount decodes the numeric's on-disk format (the layout defined
 * in PostgreSQL's numeric.c, which pg_upgrade keeps stable across versions)
 * straight from the tuple, without detoasting a short value into a copy.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "compat.h"
#include "segment.h"
#include "rfm.h"

/* numeric's on-disk header (numeric.c): flag bits of the first uint16 */
#define NUM_SIGN_MASK		0xC000
#define NUM_NEG				0x4000
#define NUM_SHORT			0x8000
#define NUM_SPECIAL			0xC000
#define NUM_SHORT_SIGN_MASK	0x2000
#define NUM_SHORT_DSCALE_MASK 0x1F80
#define NUM_SHORT_DSCALE_SHIFT 7
#define NUM_SHORT_WEIGHT_SIGN_MASK 0x0040
#define NUM_SHORT_WEIGHT_MASK 0x003F
#define NUM_DSCALE_MASK		0x3FFF
#define NUM_NBASE			10000
#define NUM_DEC_DIGITS		4

#ifdef HAVE_INT128
/* sums and amounts stay within +-10^37 units, so that adding two never overflows */
#define MONEY_LIMIT_EXP		37

static int128 money_pow10[MONEY_LIMIT_EXP + 1];
static bool money_pow10_ready = false;

static void
money_init_pow10(void)
{
	int			i;

	if (money_pow10_ready)
		return;
	money_pow10[0] = 1;
	for (i = 1; i <= MONEY_LIMIT_EXP; i++)
		money_pow10[i] = money_pow10[i - 1] * 10;
	money_pow10_ready = true;
}

static inline int128
money_abs(int128 v)
{
	return v < 0 ? -v : v;
}

/*
 * The amount as an integer count of 10^-dscale units, from its on-disk bytes;
 * false when it does not fit (the caller then sums it as a numeric).
 * NaN and infinities were rejected before.
 */
static bool
money_decode(const char *data, int len, int128 *units, int *dscale)
{
	uint16		header;
	int			weight;
	int			ndigits;
	bool		negative;
	const char *digits;
	int128		v = 0;
	int			i;
	int			exp10;

	memcpy(&header, data, sizeof(uint16));
	if ((header & NUM_SIGN_MASK) == NUM_SHORT)
	{
		negative = (header & NUM_SHORT_SIGN_MASK) != 0;
		*dscale = (header & NUM_SHORT_DSCALE_MASK) >> NUM_SHORT_DSCALE_SHIFT;
		weight = (header & NUM_SHORT_WEIGHT_SIGN_MASK) ?
			(int) (~NUM_SHORT_WEIGHT_MASK | (header & NUM_SHORT_WEIGHT_MASK)) :
			(int) (header & NUM_SHORT_WEIGHT_MASK);
		digits = data + sizeof(uint16);
	}
	else
	{
		int16		w;

		if ((header & NUM_SIGN_MASK) == NUM_SPECIAL)
			return false;
		negative = (header & NUM_SIGN_MASK) == NUM_NEG;
		*dscale = header & NUM_DSCALE_MASK;
		memcpy(&w, data + sizeof(uint16), sizeof(int16));
		weight = w;
		digits = data + 2 * sizeof(uint16);
	}
	ndigits = (len - (int) (digits - data)) / (int) sizeof(int16);
	if (ndigits == 0)
	{
		*units = 0;
		return *dscale <= MONEY_LIMIT_EXP;
	}

	/* |value| < 10^(4 * (weight + 1)), so the units are below 10^37 */
	if (*dscale > MONEY_LIMIT_EXP || NUM_DEC_DIGITS * (weight + 1) + *dscale > MONEY_LIMIT_EXP)
		return false;

	/* digit i is worth 10^(4 * (weight - i) + dscale) units */
	for (i = 0; i < ndigits; i++)
	{
		int16		d;

		memcpy(&d, digits + i * sizeof(int16), sizeof(int16));
		exp10 = NUM_DEC_DIGITS * (weight - i) + *dscale;
		if (exp10 >= 0)
			v += (int128) d * money_pow10[exp10];
		else if (exp10 > -NUM_DEC_DIGITS)
		{
			/* the last digit straddles the display scale: its low part is zero */
			int			div = (int) money_pow10[-exp10];

			if (d % div != 0)
				return false;
			v += d / div;
		}
		else if (d != 0)
			return false;
	}
	*units = negative ? -v : v;
	return true;
}

/* The decimal text of units * 10^-scale, for numeric_in. */
static char *
money_units_text(int128 units, int scale)
{
	char		digits[48];
	char	   *out;
	char	   *p;
	int			n = 0;
	int			i;
	bool		negative = units < 0;
	int128		v = money_abs(units);

	do
	{
		digits[n++] = '0' + (int) (v % 10);
		v /= 10;
	} while (v > 0);
	while (n <= scale)
		digits[n++] = '0';

	out = palloc(n + 3);
	p = out;
	if (negative)
		*p++ = '-';
	for (i = n - 1; i >= 0; i--)
	{
		*p++ = digits[i];
		if (i == scale && scale > 0)
			*p++ = '.';
	}
	*p = '\0';
	return out;
}

/* units * 10^-scale as a numeric of display scale scale. */
static Datum
money_units_numeric(int128 units, int scale)
{
	/* the fast path of numeric's own extract(epoch): exact, no parsing */
	if (money_abs(units) < money_pow10[15])
		return NumericGetDatum(int64_div_fast_to_numeric((int64) units, scale));
	return DirectFunctionCall3(numeric_in, CStringGetDatum(money_units_text(units, scale)),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}
#endif							/* HAVE_INT128 */

/* sum := sum + amount, the new sum in mcxt (numeric mode). */
static void
money_add_numeric(SegmentMoney *money, Datum amount, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	Datum		sum;

	if (!money->any)
		sum = PointerGetDatum(DatumGetNumericCopy(amount));
	else
	{
		sum = DirectFunctionCall2(numeric_add, money->u.sum, amount);
		pfree(DatumGetPointer(money->u.sum));
	}
	MemoryContextSwitchTo(old);
	money->u.sum = sum;
	money->any = true;
}

#ifdef HAVE_INT128
/* Leave the integer mode: from now on the sum is a numeric. */
static void
money_to_numeric(SegmentMoney *money, MemoryContext mcxt)
{
	bool		any = money->any;

	if (money->is_numeric)
		return;
	money->is_numeric = true;
	money->any = false;
	if (any)
		money_add_numeric(money, money_units_numeric(money->u.units, money->scale), mcxt);
}

/* Add units at a scale to the integer sum; false (sum unchanged) when it would not fit. */
static bool
money_add_units(SegmentMoney *money, int128 units, int scale)
{
	int128		limit = money_pow10[MONEY_LIMIT_EXP];
	int128		sum = money->u.units;
	int128		result;

	if (scale > money->scale)
	{
		int			up = scale - money->scale;

		if (money_abs(sum) > limit / money_pow10[up])
			return false;
		sum *= money_pow10[up];
	}
	else if (scale < money->scale)
	{
		int			up = money->scale - scale;

		if (money_abs(units) > limit / money_pow10[up])
			return false;
		units *= money_pow10[up];
	}
	result = sum + units;		/* both within 10^37: no overflow */
	if (money_abs(result) > limit)
		return false;
	money->u.units = result;
	money->scale = Max(money->scale, scale);
	return true;
}
#endif

/*
 * Read an amount as a count of 10^-scale units, for segment_money_add_amount;
 * false when it does not fit (sum such an amount with segment_money_add).
 */
bool
segment_amount_decode(Datum amount, SegmentAmount *out)
{
#ifdef HAVE_INT128
	struct varlena *packed = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(amount));
	int			dscale;

	money_init_pow10();
	if (!money_decode(VARDATA_ANY(packed), VARSIZE_ANY_EXHDR(packed), &out->units, &dscale))
		return false;
	out->scale = dscale;
	return true;
#else
	return false;
#endif
}

/* A decoded amount as a numeric again (same value, same display scale). */
Datum
segment_amount_numeric(const SegmentAmount *amount)
{
#ifdef HAVE_INT128
	return money_units_numeric(amount->units, amount->scale);
#else
	elog(ERROR, "decoded amounts need a 128-bit integer type");
	return (Datum) 0;
#endif
}

/* Add a decoded amount; a numeric sum, once there is one, lives in mcxt. */
void
segment_money_add_amount(SegmentMoney *money, const SegmentAmount *amount, MemoryContext mcxt)
{
#ifdef HAVE_INT128
	if (!money->is_numeric)
	{
		if (money_add_units(money, amount->units, amount->scale))
		{
			money->any = true;
			return;
		}
		money_to_numeric(money, mcxt);
	}
#endif
	money_add_numeric(money, segment_amount_numeric(amount), mcxt);
}

/* false for NaN and the infinities; the Datum may be packed or toasted. */
bool
segment_money_is_finite(Datum amount)
{
	struct varlena *packed = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(amount));
	uint16		header;

	memcpy(&header, VARDATA_ANY(packed), sizeof(uint16));
	return (header & NUM_SIGN_MASK) != NUM_SPECIAL;
}

/* An empty sum: integer mode where available. */
void
segment_money_init(SegmentMoney *money)
{
	memset(money, 0, sizeof(SegmentMoney));
#ifdef HAVE_INT128
	money_init_pow10();
#else
	money->is_numeric = true;
#endif
}

/*
 * Add one amount.  The Datum may be a short-header (packed) or toasted
 * numeric; it must not be NaN or infinite (the caller checks that first).
 * A numeric sum, once there is one, lives in mcxt.
 */
void
segment_money_add(SegmentMoney *money, Datum amount, MemoryContext mcxt)
{
#ifdef HAVE_INT128
	if (!money->is_numeric)
	{
		struct varlena *packed = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(amount));
		int128		units;
		int			dscale;

		if (money_decode(VARDATA_ANY(packed), VARSIZE_ANY_EXHDR(packed), &units, &dscale) &&
			money_add_units(money, units, dscale))
		{
			money->any = true;
			return;
		}
		money_to_numeric(money, mcxt);
	}
#endif
	money_add_numeric(money, amount, mcxt);
}

/* Add another sum to this one; the other one is left unchanged. */
void
segment_money_combine(SegmentMoney *money, const SegmentMoney *other, MemoryContext mcxt)
{
	if (!other->any)
		return;
#ifdef HAVE_INT128
	if (!money->is_numeric && !other->is_numeric)
	{
		if (money_add_units(money, other->u.units, other->scale))
		{
			money->any = true;
			return;
		}
	}
	money_to_numeric(money, mcxt);
	if (!other->is_numeric)
	{
		money_add_numeric(money, money_units_numeric(other->u.units, other->scale), mcxt);
		return;
	}
#endif
	money_add_numeric(money, other->u.sum, mcxt);
}

/*
 * The sum as a numeric, in CurrentMemoryContext, of display scale the
 * largest of the amounts' (as sum(numeric) gives it); NULL when empty.
 */
Datum
segment_money_sum(const SegmentMoney *money, bool *isnull)
{
	*isnull = !money->any;
	if (!money->any)
		return (Datum) 0;
#ifdef HAVE_INT128
	if (!money->is_numeric)
		return money_units_numeric(money->u.units, money->scale);
#endif
	return PointerGetDatum(DatumGetNumericCopy(money->u.sum));
}

/* Append the sum to a message: a mode byte, then the integer sum or the numeric's binary form. */
void
segment_money_serialize(StringInfo buf, const SegmentMoney *money)
{
	if (!money->any)
	{
		pq_sendbyte(buf, 0);
		return;
	}
#ifdef HAVE_INT128
	if (!money->is_numeric)
	{
		uint128		u = (uint128) money->u.units;

		pq_sendbyte(buf, 1);
		pq_sendint32(buf, money->scale);
		pq_sendint64(buf, (uint64) (u >> 64));
		pq_sendint64(buf, (uint64) u);
		return;
	}
#endif
	{
		bytea	   *bytes = DatumGetByteaPP(DirectFunctionCall1(numeric_send, money->u.sum));

		pq_sendbyte(buf, 2);
		pq_sendint32(buf, VARSIZE_ANY_EXHDR(bytes));
		pq_sendbytes(buf, VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
	}
}

/*
 * Read what segment_money_serialize wrote (a numeric sum into mcxt); false
 * when the bytes are invalid.
 */
bool
segment_money_deserialize(StringInfo buf, SegmentMoney *money, MemoryContext mcxt)
{
	int			mode;

	segment_money_init(money);
	if (buf->cursor >= buf->len)
		return false;
	mode = segment_read_byte(buf);
	if (mode == 0)
		return true;
	if (mode == 1)
	{
#ifdef HAVE_INT128
		int32		scale;
		uint64		hi,
					lo;
		int128		units;

		if (buf->len - buf->cursor < 20)
			return false;
		scale = segment_read_int32(buf);
		hi = segment_read_int64(buf);
		lo = segment_read_int64(buf);
		units = (int128) (((uint128) hi << 64) | lo);
		if (scale < 0 || scale > MONEY_LIMIT_EXP ||
			money_abs(units) > money_pow10[MONEY_LIMIT_EXP])
			return false;
		money->u.units = units;
		money->scale = scale;
		money->any = true;
		return true;
#else
		return false;
#endif
	}
	if (mode == 2)
	{
		int32		len;
		StringInfoData sub;
		MemoryContext old;

		if (buf->len - buf->cursor < 4)
			return false;
		len = segment_read_int32(buf);
		if (len < 0 || len > buf->len - buf->cursor)
			return false;
		/* numeric_recv validates the digits and reports bad ones itself */
		sub.data = (char *) segment_read_bytes(buf, len);
		sub.len = len;
		sub.maxlen = len;
		sub.cursor = 0;
		old = MemoryContextSwitchTo(mcxt);
		money->u.sum = DirectFunctionCall3(numeric_recv, PointerGetDatum(&sub),
										 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		MemoryContextSwitchTo(old);
		money->is_numeric = true;
		money->any = true;
		return sub.cursor == sub.len;
	}
	return false;
}
