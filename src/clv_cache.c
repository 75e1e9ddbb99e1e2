/*
 * clv_cache.c
 *	  Per-call-site cache of the parsed model arguments of the prediction
 *	  functions.
 *
 * A prediction is usually made for every customer with the same model
 * value (a join with a one-row models table), and reading a composite
 * (GetAttributeByNum looks the row type up and deforms the tuple for each
 * attribute) costs more than the prediction itself.  So the last model
 * seen is kept in fn_extra as raw bytes with its validated parameters; a
 * memcmp tells whether the next call has the same model.
 *
 * The same call site also keeps a memo of the BG/NBD numerators (the part
 * of the expected purchases that depends on the customer through x and T
 * only, the costly hypergeometric series): customers share (x, T) pairs
 * (both are whole numbers of days or sevenths of a week), so a query over a
 * million customers computes a few tens of thousands of series instead of a
 * million.  The memo is bounded, and emptied when the model or the horizon
 * changes.  A call site that makes two kinds of prediction (the refresh's
 * segment_internal.bgnbd_predictions()) keeps one memo for each.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/memutils.h"

#include "clv.h"

/* Memory the numerator memo of one call site may use. */
#define CLV_MEMO_BYTES (16 * 1024 * 1024)
/*
 * From this many entries on, keys of whole x < 256 and T < 4096 (days) are
 * also found by direct address: a query over every customer of a shop looks
 * up a million times, and a hash probe cost more than the arithmetic saved.
 */
#define CLV_MEMO_DIRECT_FROM 4096
#define CLV_MEMO_DIRECT_X 256
#define CLV_MEMO_DIRECT_T 4096
/* After this many changes of horizon, a call site stops memoising. */
#define CLV_MEMO_MAX_RESETS 16
/* Memos per call site. */
#define CLV_MEMO_SLOTS 2

typedef struct ClvMemoKey
{
	double		x;
	double		t_cal;
} ClvMemoKey;

typedef struct ClvMemoEntry
{
	ClvMemoKey	key;
	uint32		hash;
	int32		slot;			/* index of the entry's values in ClvMemo.values */
	char		status;
} ClvMemoEntry;

static inline uint32
clv_memo_hash(ClvMemoKey key)
{
	uint64		bits[2];

	memcpy(&bits[0], &key.x, sizeof(double));
	memcpy(&bits[1], &key.t_cal, sizeof(double));
	return hash_bytes_uint32((uint32) (bits[0] ^ (bits[0] >> 32))) ^
		murmurhash32((uint32) (bits[1] ^ (bits[1] >> 32)));
}

#define SH_PREFIX clvmemo
#define SH_ELEMENT_TYPE ClvMemoEntry
#define SH_KEY_TYPE ClvMemoKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) clv_memo_hash(k)
#define SH_EQUAL(tb, a, b) ((a).x == (b).x && (a).t_cal == (b).t_cal)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) a->hash
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct ClvMemo
{
	MemoryContext cxt;			/* holds the table and the values */
	clvmemo_hash *table;
	double		horizon;		/* the horizon the values are for */
	int			n;				/* values per entry */
	int32		used;			/* entries stored */
	int32		capacity;		/* entries that fit in values */
	int32		max_entries;	/* entries allowed in CLV_MEMO_BYTES */
	double	   *values;
	int32	   *direct;			/* NULL, or slot + 1 (0: none) by clv_memo_direct() */
} ClvMemo;

typedef struct ClvModelCache
{
	Size		len[2];			/* 0: BG/NBD, 1: Gamma-Gamma; 0 = empty */
	char	   *bytes[2];
	ClvBgnbd	bg;
	ClvGammaGamma gg;
	ClvMemo    *memo[CLV_MEMO_SLOTS];	/* NULL until first used or after a reset */
	int			memo_resets[CLV_MEMO_SLOTS];
	void	   *extra;			/* the caller's own (clv_cache_extra()) */
	double	   *discounts;		/* clv_discounts() for disc_rate, disc_months */
	double		disc_rate;
	int32		disc_months;
} ClvModelCache;

/* Drop a memo of a call site (a new horizon makes it stale). */
static void
clv_memo_reset_slot(ClvModelCache *cache, int slot)
{
	if (cache->memo[slot] != NULL)
	{
		MemoryContextDelete(cache->memo[slot]->cxt);
		cache->memo[slot] = NULL;
		cache->memo_resets[slot]++;
	}
}

/* Drop every memo of a call site (a new model makes them stale). */
static void
clv_memo_reset(ClvModelCache *cache)
{
	int			slot;

	for (slot = 0; slot < CLV_MEMO_SLOTS; slot++)
		clv_memo_reset_slot(cache, slot);
}

/* The cache of a call site, created empty on first use. */
static ClvModelCache *
clv_cache_of(FunctionCallInfo fcinfo)
{
	ClvModelCache *cache = (ClvModelCache *) fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ClvModelCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache;
}

/*
 * A pointer the function of a call site may keep there (in fn_mcxt), next to
 * the cached models: fn_extra itself holds the cache.
 */
void	  **
clv_cache_extra(FunctionCallInfo fcinfo)
{
	return &clv_cache_of(fcinfo)->extra;
}

/* True when the composite in d equals the cached bytes of slot; else caches it. */
static bool
clv_cache_same(FunctionCallInfo fcinfo, ClvModelCache *cache, int slot, Datum d)
{
	struct varlena *v = (struct varlena *) PG_DETOAST_DATUM(d);
	Size		len = VARSIZE(v);

	if (cache->len[slot] == len && memcmp(cache->bytes[slot], v, len) == 0)
		return true;
	if (cache->bytes[slot] != NULL)
		pfree(cache->bytes[slot]);
	cache->bytes[slot] = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, len);
	memcpy(cache->bytes[slot], v, len);
	/* empty until the parameters are validated (an error leaves it empty) */
	cache->len[slot] = 0;
	return false;
}

/*
 * The validated parameters of argument bg_arg (a segment.bgnbd_model) and
 * gg_arg (a segment.gamma_gamma_model); -1 for an argument not there.
 */
void
clv_models_cached(FunctionCallInfo fcinfo, int bg_arg, ClvBgnbd *bg,
				  int gg_arg, ClvGammaGamma *gg)
{
	ClvModelCache *cache = clv_cache_of(fcinfo);

	if (bg_arg >= 0)
	{
		Datum		d = PG_GETARG_DATUM(bg_arg);

		if (!clv_cache_same(fcinfo, cache, 0, d))
		{
			clv_memo_reset(cache);
			clv_bgnbd_from_datum(d, &cache->bg);
			cache->len[0] = VARSIZE(cache->bytes[0]);
		}
		*bg = cache->bg;
	}
	if (gg_arg >= 0)
	{
		Datum		d = PG_GETARG_DATUM(gg_arg);

		if (!clv_cache_same(fcinfo, cache, 1, d))
		{
			clv_gg_from_datum(d, &cache->gg);
			cache->len[1] = VARSIZE(cache->bytes[1]);
		}
		*gg = cache->gg;
	}
}

/*
 * The discount factors of months 1..months at a monthly rate, 1 / (1 +
 * rate)^k as CLV's sum computes them (one division per month, in order),
 * kept for the call site: the same for every customer.
 */
const double *
clv_discounts(FunctionCallInfo fcinfo, double rate, int32 months)
{
	ClvModelCache *cache = clv_cache_of(fcinfo);
	double		discount = 1;
	int32		k;

	if (cache->discounts != NULL && cache->disc_rate == rate && cache->disc_months == months)
		return cache->discounts;
	if (cache->discounts != NULL)
		pfree(cache->discounts);
	cache->discounts = NULL;
	cache->discounts = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(double) * Max(months, 1));
	for (k = 0; k < months; k++)
	{
		discount /= 1 + rate;
		cache->discounts[k] = discount;
	}
	cache->disc_rate = rate;
	cache->disc_months = months;
	return cache->discounts;
}

/* Memo slot of a call site for this horizon, created or emptied as needed; NULL when off. */
static ClvMemo *
clv_memo_for(FunctionCallInfo fcinfo, int slot, double horizon, int n, bool create)
{
	ClvModelCache *cache = (ClvModelCache *) fcinfo->flinfo->fn_extra;
	ClvMemo    *memo;
	MemoryContext cxt;

	if (slot < 0 || slot >= CLV_MEMO_SLOTS)
		elog(ERROR, "invalid memo slot %d", slot);
	if (cache == NULL || n <= 0 || cache->memo_resets[slot] > CLV_MEMO_MAX_RESETS)
		return NULL;
	memo = cache->memo[slot];
	if (memo != NULL && memo->horizon == horizon && memo->n == n)
		return memo;
	if (!create)
		return NULL;
	clv_memo_reset_slot(cache, slot);
	if (cache->memo_resets[slot] > CLV_MEMO_MAX_RESETS)
		return NULL;

	cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "clv memo", ALLOCSET_DEFAULT_SIZES);
	memo = MemoryContextAllocZero(cxt, sizeof(ClvMemo));
	memo->cxt = cxt;
	memo->horizon = horizon;
	memo->n = n;
	memo->max_entries = (int32) Max(1, CLV_MEMO_BYTES / ((Size) n * sizeof(double) +
														 2 * sizeof(ClvMemoEntry)));
	memo->table = clvmemo_create(cxt, 1024, NULL);
	cache->memo[slot] = memo;
	return memo;
}

/* -0 and 0 are one key. */
static ClvMemoKey
clv_memo_key(double x, double t_cal)
{
	ClvMemoKey	key;

	key.x = x + 0.0;
	key.t_cal = t_cal + 0.0;
	return key;
}

/* The direct address of a key, or -1 when it has none. */
static inline int32
clv_memo_direct(ClvMemoKey key)
{
	if (key.x >= 0 && key.x < CLV_MEMO_DIRECT_X && key.t_cal >= 0 && key.t_cal < CLV_MEMO_DIRECT_T &&
		key.x == (int32) key.x && key.t_cal == (int32) key.t_cal)
		return (int32) key.x * CLV_MEMO_DIRECT_T + (int32) key.t_cal;
	return -1;
}

/* Give a memo grown large its direct addresses, of the entries it has. */
static void
clv_memo_make_direct(ClvMemo *memo)
{
	clvmemo_iterator it;
	ClvMemoEntry *entry;

	memo->direct = MemoryContextAllocZero(memo->cxt,
										  sizeof(int32) * CLV_MEMO_DIRECT_X * CLV_MEMO_DIRECT_T);
	clvmemo_start_iterate(memo->table, &it);
	while ((entry = clvmemo_iterate(memo->table, &it)) != NULL)
	{
		int32		d = clv_memo_direct(entry->key);

		if (d >= 0)
			memo->direct[d] = entry->slot + 1;
	}
}

/*
 * The n numerators memoised for customer (x, T) at a horizon (the horizon t,
 * or the time units in a month for CLV's months), or NULL.  Call after
 * clv_models_cached(), with the model of this call.
 */
const double *
clv_memo_get(FunctionCallInfo fcinfo, double x, double t_cal, double horizon, int n)
{
	return clv_memo_get_slot(fcinfo, 0, x, t_cal, horizon, n);
}

/* The same, from memo slot (0 or 1) of the call site. */
const double *
clv_memo_get_slot(FunctionCallInfo fcinfo, int slot, double x, double t_cal, double horizon, int n)
{
	ClvMemo    *memo = clv_memo_for(fcinfo, slot, horizon, n, false);
	ClvMemoKey	key = clv_memo_key(x, t_cal);
	ClvMemoEntry *entry;

	if (memo == NULL)
		return NULL;
	if (memo->direct != NULL)
	{
		int32		d = clv_memo_direct(key);

		if (d >= 0)
			return memo->direct[d] == 0 ? NULL : memo->values + (Size) (memo->direct[d] - 1) * n;
	}
	entry = clvmemo_lookup(memo->table, key);
	return entry == NULL ? NULL : memo->values + (Size) entry->slot * n;
}

/* Memoise the n numerators of customer (x, T) at a horizon, unless the memo is full. */
void
clv_memo_put(FunctionCallInfo fcinfo, double x, double t_cal, double horizon, int n,
			 const double *values)
{
	clv_memo_put_slot(fcinfo, 0, x, t_cal, horizon, n, values);
}

/* The same, into memo slot (0 or 1) of the call site. */
void
clv_memo_put_slot(FunctionCallInfo fcinfo, int slot, double x, double t_cal, double horizon,
				  int n, const double *values)
{
	ClvMemo    *memo = clv_memo_for(fcinfo, slot, horizon, n, true);
	ClvMemoEntry *entry;
	bool		found;

	if (memo == NULL || memo->used >= memo->max_entries)
		return;
	if (memo->used == memo->capacity)
	{
		int32		newcap = Min(Max(memo->capacity * 2, 1024), memo->max_entries);

		if (memo->values == NULL)
			memo->values = MemoryContextAlloc(memo->cxt, (Size) newcap * n * sizeof(double));
		else
			memo->values = repalloc(memo->values, (Size) newcap * n * sizeof(double));
		memo->capacity = newcap;
	}
	entry = clvmemo_insert(memo->table, clv_memo_key(x, t_cal), &found);
	if (!found)
		entry->slot = memo->used++;
	memcpy(memo->values + (Size) entry->slot * n, values, n * sizeof(double));
	if (memo->direct != NULL)
	{
		int32		d = clv_memo_direct(entry->key);

		if (d >= 0)
			memo->direct[d] = entry->slot + 1;
	}
	else if (memo->used >= CLV_MEMO_DIRECT_FROM)
		clv_memo_make_direct(memo);
}
