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
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/memutils.h"

#include "clv.h"

typedef struct ClvModelCache
{
	Size		len[2];			/* 0: BG/NBD, 1: Gamma-Gamma; 0 = empty */
	char	   *bytes[2];
	ClvBgnbd	bg;
	ClvGammaGamma gg;
} ClvModelCache;

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
	ClvModelCache *cache = (ClvModelCache *) fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ClvModelCache));
		fcinfo->flinfo->fn_extra = cache;
	}
	if (bg_arg >= 0)
	{
		Datum		d = PG_GETARG_DATUM(bg_arg);

		if (!clv_cache_same(fcinfo, cache, 0, d))
		{
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
