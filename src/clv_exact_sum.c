/*
 * clv_exact_sum.c
 *	  The exact sum of non-negative doubles, rounded once: the repeat total
 *	  behind clv_summary's mean value.
 *
 * A float sum depends on the order of its terms.  clv_summary (an
 * aggregate, src/clv_summary.c) and the refresh's pass over the orders
 * (src/refresh_figures.c) see a customer's purchases in different orders,
 * and the refresh keeps no list of them, so both sum exactly and round the
 * exact sum to the nearest double (ties to even): the same floats whatever
 * the order, with no sort.
 *
 * Every double is a multiple of 2^-1074, so a sum is an integer count of
 * 2^-1074 units.  Most sums (amounts of a shop) span fewer than 127 bits
 * and are kept as a 128-bit integer with the position of its lowest bit;
 * wider ones move to a fixed array of 64-bit limbs that holds any sum of up
 * to 2^63 doubles.
 */
#include "postgres.h"

#include <math.h>

#include "port/pg_bitutils.h"

#include "clv.h"

/* positions 0 .. 2303: a double's top bit is at most 2098, plus 63 bits of carries */
#define EXACT_LIMBS 36
/* bits kept in the fast form: the sum of two such stays below 2^127 */
#define EXACT_FAST_BITS 126

struct ClvBigSum
{
	uint64		limbs[EXACT_LIMBS];
};

void
clv_exact_init(ClvExactSum *s)
{
	memset(s, 0, sizeof(*s));
}

/* Zero; a wide sum keeps its limbs (zeroed) for reuse, and spare its value. */
void
clv_exact_reset(ClvExactSum *s)
{
	struct ClvBigSum *big = s->big;
	int32		spare = s->spare;

	clv_exact_init(s);
	s->spare = spare;
	if (big != NULL)
	{
		memset(big, 0, sizeof(*big));
		s->big = big;
	}
}

/* Free a wide sum's limbs. */
void
clv_exact_free(ClvExactSum *s)
{
	if (s->big != NULL)
		pfree(s->big);
	s->big = NULL;
}

/* Add value * 2^pos (value's bits as hi, lo words) to the limbs, carrying. */
static void
big_add(struct ClvBigSum *big, uint64 hi, uint64 lo, int pos)
{
	int			i = pos / 64;
	int			shift = pos % 64;
	uint64		words[3];
	uint64		carry = 0;
	int			k;

	words[0] = lo << shift;
	words[1] = shift == 0 ? hi : (hi << shift) | (lo >> (64 - shift));
	words[2] = shift == 0 ? 0 : hi >> (64 - shift);
	for (k = 0; k < 3 || carry != 0; k++)
	{
		uint64		add = k < 3 ? words[k] : 0;
		uint64		before;
		uint64		sum;

		if (i + k >= EXACT_LIMBS)
		{
			/* more than 2^63 doubles: cannot happen */
			if (add != 0 || carry != 0)
				elog(ERROR, "clv exact sum out of range");
			break;
		}
		before = big->limbs[i + k];
		sum = before + add;
		big->limbs[i + k] = sum + carry;
		carry = (sum < before) || (sum + carry < sum);
	}
}

#ifdef HAVE_INT128
static inline int
bits128(uint128 v)
{
	uint64		hi = (uint64) (v >> 64);
	uint64		lo = (uint64) v;

	if (hi != 0)
		return 65 + pg_leftmost_one_pos64(hi);
	return lo != 0 ? 1 + pg_leftmost_one_pos64(lo) : 0;
}
#endif

/* Move a sum to the limbs (once it no longer fits the fast form). */
static void
exact_widen(ClvExactSum *s, MemoryContext cxt)
{
	s->big = MemoryContextAllocZero(cxt, sizeof(struct ClvBigSum));
#ifdef HAVE_INT128
	if (s->m != 0)
		big_add(s->big, (uint64) (s->m >> 64), (uint64) s->m, s->pos);
	s->m = 0;
#endif
	s->pos = 0;
}

/* Add value * 2^(pos - 1074), value (below 2^127) in hi, lo words. */
static void
exact_add(ClvExactSum *s, uint64 hi, uint64 lo, int pos, MemoryContext cxt)
{
#ifdef HAVE_INT128
	if (s->big == NULL)
	{
		uint128		v = ((uint128) hi << 64) | lo;

		if (s->m == 0)
		{
			s->m = v;
			s->pos = pos;
			return;
		}
		if (pos >= s->pos)
		{
			int			shift = pos - s->pos;

			if (shift + bits128(v) <= EXACT_FAST_BITS && bits128(s->m) <= EXACT_FAST_BITS)
			{
				s->m += v << shift;
				return;
			}
		}
		else
		{
			int			shift = s->pos - pos;

			if (shift + bits128(s->m) <= EXACT_FAST_BITS && bits128(v) <= EXACT_FAST_BITS)
			{
				s->m = (s->m << shift) + v;
				s->pos = pos;
				return;
			}
		}
	}
#endif
	if (s->big == NULL)
		exact_widen(s, cxt);
	big_add(s->big, hi, lo, pos);
}

/* Add a double >= 0 (finite: the callers check). */
void
clv_exact_add(ClvExactSum *s, double value, MemoryContext cxt)
{
	uint64		bits;
	uint64		mantissa;
	int			exponent;
	int			pos;

	if (!(value >= 0) || isinf(value))
		elog(ERROR, "clv exact sum of %g", value);
	memcpy(&bits, &value, sizeof(bits));
	exponent = (int) ((bits >> 52) & 0x7FF);
	mantissa = bits & ((UINT64CONST(1) << 52) - 1);
	if (exponent == 0)
		pos = 0;				/* a subnormal: mantissa * 2^-1074 */
	else
	{
		mantissa |= UINT64CONST(1) << 52;
		pos = exponent - 1;
	}
	if (mantissa == 0)
		return;
	/* the lowest bit set: the fast form then spans only the bits in use */
	pos += pg_rightmost_one_pos64(mantissa);
	mantissa >>= pg_rightmost_one_pos64(mantissa);
	exact_add(s, 0, mantissa, pos, cxt);
}

/* Add the sum from into s. */
void
clv_exact_merge(ClvExactSum *s, const ClvExactSum *from, MemoryContext cxt)
{
	if (from->big != NULL)
	{
		int			i;

		if (s->big == NULL)
			exact_widen(s, cxt);
		for (i = 0; i < EXACT_LIMBS; i++)
			if (from->big->limbs[i] != 0)
				big_add(s->big, 0, from->big->limbs[i], i * 64);
		return;
	}
#ifdef HAVE_INT128
	if (from->m != 0)
		exact_add(s, (uint64) (from->m >> 64), (uint64) from->m, from->pos, cxt);
#endif
}

/*
 * The nearest double (ties to even) of the sum whose highest bit is at
 * position top_pos, with top its 64 highest bits (bit 63 set: position
 * top_pos) and sticky whether any bit below them is set.
 */
static double
exact_round(uint64 top, int top_pos, bool sticky)
{
	uint64		q;
	uint64		rest;

	/* below 2^53 units: exact (a subnormal or the smallest normals) */
	if (top_pos < 53)
		return ldexp((double) (top >> (63 - top_pos)), -1074);
	q = top >> 11;
	rest = top & 0x7FF;
	if (rest > 0x400 || (rest == 0x400 && (sticky || (q & 1))))
		q++;
	/* beyond the largest double: ldexp gives infinity */
	return ldexp((double) q, top_pos - 52 - 1074);
}

/* The sum rounded to the nearest double. */
double
clv_exact_value(const ClvExactSum *s)
{
	if (s->big != NULL)
	{
		const uint64 *l = s->big->limbs;
		int			i = EXACT_LIMBS - 1;
		int			b;
		uint64		top;
		bool		sticky = false;
		int			j;

		while (i >= 0 && l[i] == 0)
			i--;
		if (i < 0)
			return 0;
		b = pg_leftmost_one_pos64(l[i]);
		top = l[i] << (63 - b);
		if (i > 0)
		{
			if (b < 63)
			{
				top |= l[i - 1] >> (b + 1);
				sticky = (l[i - 1] << (63 - b)) != 0;
			}
			else
				sticky = l[i - 1] != 0;
		}
		for (j = i - 2; j >= 0 && !sticky; j--)
			sticky = l[j] != 0;
		return exact_round(top, i * 64 + b, sticky);
	}
#ifdef HAVE_INT128
	if (s->m != 0)
	{
		int			n = bits128(s->m);
		uint64		top;
		bool		sticky = false;

		if (n > 64)
		{
			top = (uint64) (s->m >> (n - 64));
			sticky = (s->m & (((uint128) 1 << (n - 64)) - 1)) != 0;
		}
		else
			top = (uint64) s->m << (64 - n);
		return exact_round(top, s->pos + n - 1, sticky);
	}
#endif
	return 0;
}
