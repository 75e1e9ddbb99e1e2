/*
 * events.c
 *	  The per-customer events(event_type, occurred_at, product, as_of, window
 *	  [, kinds]) aggregate, the event kind mapping, and the abandoned-cart
 *	  functions of its summary.
 *
 * A shop's event types are mapped to our kinds (visit, product_view,
 * cart_add, checkout, newsletter_open, subscribe, unsubscribe, or ignore) by
 * a jsonb object {"shop type": "kind"}; without one, the event types must be
 * the kind names themselves.  The mapping is parsed once per query into a
 * small open-addressing hash table, so a row costs one hash of its type.
 *
 * The cart: the aggregate keeps the distinct products of the cart adds after
 * the latest checkout, each with its latest add time, most recent first, at
 * most EVENTS_CART_MAX of them.  Rows arrive in any order, yet the bounded
 * list is exact: an evicted product had EVENTS_CART_MAX more recent ones
 * above it, which only a later checkout can remove, and that checkout then
 * removes the evicted product's adds as well.  The same argument makes the
 * merge of two lists (combine) exact.  Whether the cart was abandoned also
 * depends on the orders, which the aggregate does not see: abandoned_at()
 * and abandoned_products() take the customer's last order as an argument.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "nodes/primnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "activity.h"

#define EVENTS_CART_MAX 10
#define EVENTS_SERIAL_VERSION 1
#define EVENTS_RESULT_NATTS 18

/* Field numbers of segment.event_summary read by the functions below. */
#define EVENTS_ATT_LAST_CART_ADD 10
#define EVENTS_ATT_LAST_CHECKOUT 11
#define EVENTS_ATT_CART_PRODUCTS 15
#define EVENTS_ATT_CART_ADDED_AT 16

typedef enum EventKind
{
	EK_UNKNOWN = -1,
	EK_IGNORE = 0,
	EK_VISIT,
	EK_PRODUCT_VIEW,
	EK_CART_ADD,
	EK_CHECKOUT,
	EK_NEWSLETTER_OPEN,
	EK_SUBSCRIBE,
	EK_UNSUBSCRIBE,
	EK_NKINDS
} EventKind;

static const char *const event_kind_names[EK_NKINDS] = {
	"ignore", "visit", "product_view", "cart_add", "checkout",
	"newsletter_open", "subscribe", "unsubscribe"
};

#define EVENT_KIND_LIST "visit, product_view, cart_add, checkout, newsletter_open, subscribe, unsubscribe, ignore"

/* Subscription state by the latest subscribe/unsubscribe event. */
#define SUB_NONE 0
#define SUB_IN 1
#define SUB_OUT 2

typedef struct KindSlot
{
	uint32		hash;
	int32		len;			/* -1: empty slot */
	int32		kind;
	char	   *name;
} KindSlot;

typedef struct EventKindMap
{
	uint32		mask;			/* slots - 1, slots a power of two */
	KindSlot   *slots;
} EventKindMap;

/* fn_extra of the functions that take a kinds argument. */
typedef struct KindCache
{
	MemoryContext mcxt;			/* holds map and src; reset on a new mapping */
	EventKindMap *map;
	char	   *src;			/* the jsonb the map was built from */
	Size		srclen;
	bool		probed;			/* constant is known */
	bool		constant;		/* kinds is a constant of the query */
} KindCache;

typedef struct CartItem
{
	TimestampTz at;				/* latest add of this product */
	int32		len;
	char	   *product;		/* not terminated */
} CartItem;

typedef struct SegmentEventState
{
	SegmentWindow w;
	int64		visits;			/* window counts */
	int64		views;
	int64		cart_adds;
	int64		checkouts;
	int64		opens;
	int64		unknown;		/* rows of no known kind, any time */
	int64		future;			/* rows after as_of */
	TimestampTz first_visit;	/* site events at or before as_of */
	TimestampTz last_visit;
	TimestampTz last_cart_add;
	TimestampTz last_checkout;
	TimestampTz last_open;
	TimestampTz sub_at;
	int32		sub_state;
	int32		ncart;
	CartItem	cart[EVENTS_CART_MAX];	/* after last_checkout, most recent first */
} SegmentEventState;

PG_FUNCTION_INFO_V1(segment_events_trans);
PG_FUNCTION_INFO_V1(segment_events_combine);
PG_FUNCTION_INFO_V1(segment_events_serial);
PG_FUNCTION_INFO_V1(segment_events_deserial);
PG_FUNCTION_INFO_V1(segment_events_final);
PG_FUNCTION_INFO_V1(segment_event_kind);
PG_FUNCTION_INFO_V1(segment_abandoned_at);
PG_FUNCTION_INFO_V1(segment_abandoned_products);

static EventKindMap *default_kind_map = NULL;

static EventKindMap *
kind_map_create(MemoryContext mcxt, int nentries)
{
	EventKindMap *map = MemoryContextAlloc(mcxt, sizeof(EventKindMap));
	uint32		nslots = 8;
	uint32		i;

	while (nslots < (uint32) nentries * 2)
		nslots *= 2;
	map->mask = nslots - 1;
	map->slots = MemoryContextAlloc(mcxt, nslots * sizeof(KindSlot));
	for (i = 0; i < nslots; i++)
		map->slots[i].len = -1;
	return map;
}

static void
kind_map_put(EventKindMap *map, MemoryContext mcxt, const char *name, int len, int kind)
{
	uint32		hash = hash_bytes((const unsigned char *) name, len);
	uint32		i = hash & map->mask;

	while (map->slots[i].len >= 0)
	{
		if (map->slots[i].hash == hash && map->slots[i].len == len &&
			memcmp(map->slots[i].name, name, len) == 0)
		{
			map->slots[i].kind = kind;
			return;
		}
		i = (i + 1) & map->mask;
	}
	map->slots[i].hash = hash;
	map->slots[i].len = len;
	map->slots[i].kind = kind;
	map->slots[i].name = MemoryContextAlloc(mcxt, Max(len, 1));
	memcpy(map->slots[i].name, name, len);
}

static inline int
kind_map_get(const EventKindMap *map, const char *name, int len)
{
	uint32		hash = hash_bytes((const unsigned char *) name, len);
	uint32		i = hash & map->mask;

	while (map->slots[i].len >= 0)
	{
		if (map->slots[i].hash == hash && map->slots[i].len == len &&
			memcmp(map->slots[i].name, name, len) == 0)
			return map->slots[i].kind;
		i = (i + 1) & map->mask;
	}
	return EK_UNKNOWN;
}

static int
kind_by_name(const char *name, int len)
{
	int			k;

	for (k = 0; k < EK_NKINDS; k++)
		if ((int) strlen(event_kind_names[k]) == len &&
			memcmp(event_kind_names[k], name, len) == 0)
			return k;
	return EK_UNKNOWN;
}

/* Without a mapping, the event types are the kind names (not "ignore"). */
static const EventKindMap *
kind_map_default(void)
{
	if (default_kind_map == NULL)
	{
		EventKindMap *map = kind_map_create(TopMemoryContext, EK_NKINDS);
		int			k;

		for (k = EK_VISIT; k < EK_NKINDS; k++)
			kind_map_put(map, TopMemoryContext, event_kind_names[k],
						 strlen(event_kind_names[k]), k);
		default_kind_map = map;
	}
	return default_kind_map;
}

/* Parse a {"shop type": "kind"} object, with a clear error for anything else. */
static EventKindMap *
kind_map_from_jsonb(Jsonb *jb, MemoryContext mcxt)
{
	EventKindMap *map;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	int			keylen = 0;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event kinds must be a JSON object"),
				 errdetail("Got %s.", JsonbToCString(NULL, &jb->root, VARSIZE(jb))),
				 errhint("Map each event type of the shop to a kind, for example {\"page_view\": \"visit\", \"add_to_cart\": \"cart_add\"}.")));

	map = kind_map_create(mcxt, JB_ROOT_COUNT(jb));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = v.val.string.val;
			keylen = v.val.string.len;
		}
		else if (tok == WJB_VALUE)
		{
			int			kind = EK_UNKNOWN;

			if (v.type == jbvString)
				kind = kind_by_name(v.val.string.val, v.val.string.len);
			if (kind == EK_UNKNOWN)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("event type \"%.*s\" is mapped to an unknown event kind", keylen, key),
						 errdetail("Got %s.",
								   v.type == jbvString ?
								   psprintf("\"%.*s\"", v.val.string.len, v.val.string.val) :
								   "a value that is not a string"),
						 errhint("The kinds are: " EVENT_KIND_LIST ".")));
			kind_map_put(map, mcxt, key, keylen, kind);
		}
	}
	return map;
}

/* Is argument argno of the aggregate (0-based, without the state) a constant? */
static bool
agg_arg_is_const(FunctionCallInfo fcinfo, int argno)
{
	Aggref	   *aggref = AggGetAggref(fcinfo);
	TargetEntry *tle;

	if (aggref == NULL || list_length(aggref->args) <= argno)
		return false;
	tle = (TargetEntry *) list_nth(aggref->args, argno);
	return tle != NULL && IsA(tle->expr, Const);
}

/*
 * The mapping of argument kinds_arg (default when NULL or absent).  Parsed
 * once when the argument is a constant of the query; otherwise compared byte
 * for byte with the previous one and parsed again only when it changes.
 */
static const EventKindMap *
kind_map_of(FunctionCallInfo fcinfo, int kinds_arg, bool aggregate)
{
	KindCache  *cache = (KindCache *) fcinfo->flinfo->fn_extra;
	Jsonb	   *jb;

	if (PG_NARGS() <= kinds_arg || PG_ARGISNULL(kinds_arg))
		return kind_map_default();
	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(KindCache));
		cache->mcxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "segment event kinds",
											ALLOCSET_SMALL_SIZES);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache->map != NULL && cache->constant)
		return cache->map;

	jb = PG_GETARG_JSONB_P(kinds_arg);
	if (cache->map != NULL && VARSIZE(jb) == cache->srclen &&
		memcmp(jb, cache->src, cache->srclen) == 0)
		return cache->map;

	MemoryContextReset(cache->mcxt);
	cache->map = NULL;
	cache->map = kind_map_from_jsonb(jb, cache->mcxt);
	cache->srclen = VARSIZE(jb);
	cache->src = MemoryContextAlloc(cache->mcxt, cache->srclen);
	memcpy(cache->src, jb, cache->srclen);
	if (!cache->probed)
	{
		cache->constant = aggregate ? agg_arg_is_const(fcinfo, kinds_arg - 1)
			: get_fn_expr_arg_stable(fcinfo->flinfo, kinds_arg);
		cache->probed = true;
	}
	return cache->map;
}

static SegmentEventState *
events_state_create(MemoryContext aggcontext)
{
	SegmentEventState *state = MemoryContextAllocZero(aggcontext, sizeof(SegmentEventState));

	state->first_visit = ACTIVITY_NONE_MIN;
	state->last_visit = ACTIVITY_NONE_MAX;
	state->last_cart_add = ACTIVITY_NONE_MAX;
	state->last_checkout = ACTIVITY_NONE_MAX;
	state->last_open = ACTIVITY_NONE_MAX;
	state->sub_at = ACTIVITY_NONE_MAX;
	state->sub_state = SUB_NONE;
	return state;
}

/* Does cart item (at1, p1) come before (at2, p2): more recent, then smaller product. */
static inline bool
cart_before(TimestampTz at1, const char *p1, int32 l1,
			TimestampTz at2, const char *p2, int32 l2)
{
	int			c;

	if (at1 != at2)
		return at1 > at2;
	c = memcmp(p1, p2, Min(l1, l2));
	return c < 0 || (c == 0 && l1 < l2);
}

/* Add a product put in the cart at "at" (after the latest checkout so far). */
static void
cart_add(SegmentEventState *state, TimestampTz at, const char *product, int32 len,
		 MemoryContext aggcontext)
{
	CartItem   *cart = state->cart;
	CartItem	item;
	int			i;

	if (at <= state->last_checkout)
		return;
	for (i = 0; i < state->ncart; i++)
	{
		if (cart[i].len == len && memcmp(cart[i].product, product, len) == 0)
		{
			if (at > cart[i].at)
			{
				cart[i].at = at;
				for (; i > 0 && cart_before(cart[i].at, cart[i].product, cart[i].len,
											cart[i - 1].at, cart[i - 1].product, cart[i - 1].len); i--)
				{
					item = cart[i];
					cart[i] = cart[i - 1];
					cart[i - 1] = item;
				}
			}
			return;
		}
	}
	if (state->ncart == EVENTS_CART_MAX)
	{
		CartItem   *last = &cart[EVENTS_CART_MAX - 1];

		if (!cart_before(at, product, len, last->at, last->product, last->len))
			return;
		pfree(last->product);
		state->ncart--;
	}
	item.at = at;
	item.len = len;
	item.product = MemoryContextAlloc(aggcontext, Max(len, 1));
	memcpy(item.product, product, len);
	for (i = state->ncart;
		 i > 0 && cart_before(at, product, len, cart[i - 1].at, cart[i - 1].product, cart[i - 1].len);
		 i--)
		cart[i] = cart[i - 1];
	cart[i] = item;
	state->ncart++;
}

/* A checkout at "at": the cart adds before it were bought (or given up). */
static void
cart_checkout(SegmentEventState *state, TimestampTz at)
{
	if (at <= state->last_checkout)
		return;
	state->last_checkout = at;
	while (state->ncart > 0 && state->cart[state->ncart - 1].at <= at)
		pfree(state->cart[--state->ncart].product);
}

/* A subscription change; at equal times, unsubscribing wins. */
static inline void
subscription_set(SegmentEventState *state, TimestampTz at, int32 sub)
{
	if (at > state->sub_at || (at == state->sub_at && sub == SUB_OUT))
	{
		state->sub_at = at;
		state->sub_state = sub;
	}
}

/*
 * events transition: arguments event_type, occurred_at, product, as_of,
 * window [, kinds].  Rows with a NULL occurred_at are skipped.
 */
Datum
segment_events_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentEventState *state;
	TimestampTz ts;
	int			kind;

	aggcontext = segment_aggregate_context(fcinfo);

	state = PG_ARGISNULL(0) ? NULL : (SegmentEventState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(2))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	ts = PG_GETARG_TIMESTAMPTZ(2);
	segment_check_finite(ts, "event timestamp");

	if (state == NULL)
	{
		state = events_state_create(aggcontext);
		segment_window_init(&state->w, fcinfo, 4, 5);
	}
	else
		segment_window_check(&state->w, fcinfo, 4, 5);

	if (PG_ARGISNULL(1))
		kind = EK_UNKNOWN;
	else
	{
		text	   *type = PG_GETARG_TEXT_PP(1);

		kind = kind_map_get(kind_map_of(fcinfo, 6, true),
							VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type));
	}
	if (kind == EK_UNKNOWN)
	{
		state->unknown++;
		PG_RETURN_POINTER(state);
	}
	if (kind == EK_IGNORE)
		PG_RETURN_POINTER(state);
	if (ts > state->w.as_of)
	{
		state->future++;
		PG_RETURN_POINTER(state);
	}

	if (kind >= EK_VISIT && kind <= EK_CHECKOUT)
	{
		if (ts < state->first_visit)
			state->first_visit = ts;
		if (ts > state->last_visit)
			state->last_visit = ts;
	}
	switch (kind)
	{
		case EK_VISIT:
			state->visits += ts > state->w.start;
			break;
		case EK_PRODUCT_VIEW:
			state->views += ts > state->w.start;
			break;
		case EK_CART_ADD:
			state->cart_adds += ts > state->w.start;
			if (ts > state->last_cart_add)
				state->last_cart_add = ts;
			if (!PG_ARGISNULL(3))
			{
				text	   *product = PG_GETARG_TEXT_PP(3);

				cart_add(state, ts, VARDATA_ANY(product), VARSIZE_ANY_EXHDR(product),
						 aggcontext);
			}
			break;
		case EK_CHECKOUT:
			state->checkouts += ts > state->w.start;
			cart_checkout(state, ts);
			break;
		case EK_NEWSLETTER_OPEN:
			state->opens += ts > state->w.start;
			if (ts > state->last_open)
				state->last_open = ts;
			break;
		case EK_SUBSCRIBE:
			subscription_set(state, ts, SUB_IN);
			break;
		case EK_UNSUBSCRIBE:
			subscription_set(state, ts, SUB_OUT);
			break;
		default:
			break;
	}
	PG_RETURN_POINTER(state);
}

/* Merge the cart of "from" into "into" (copying its products). */
static void
cart_merge(SegmentEventState *into, const SegmentEventState *from, MemoryContext aggcontext)
{
	int			i;

	cart_checkout(into, from->last_checkout);
	for (i = 0; i < from->ncart; i++)
		cart_add(into, from->cart[i].at, from->cart[i].product, from->cart[i].len, aggcontext);
}

/* events combine: merge two partial states (parallel query). */
Datum
segment_events_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SegmentEventState *left;
	SegmentEventState *right;

	aggcontext = segment_aggregate_context(fcinfo);

	left = PG_ARGISNULL(0) ? NULL : (SegmentEventState *) PG_GETARG_POINTER(0);
	right = PG_ARGISNULL(1) ? NULL : (SegmentEventState *) PG_GETARG_POINTER(1);
	if (right == NULL)
	{
		if (left == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(left);
	}
	if (left == NULL)
	{
		/* copy, never adopt: the right state belongs to someone else */
		left = events_state_create(aggcontext);
		left->w = right->w;
	}
	else
		segment_window_check_same(&left->w, &right->w);

	left->visits += right->visits;
	left->views += right->views;
	left->cart_adds += right->cart_adds;
	left->checkouts += right->checkouts;
	left->opens += right->opens;
	left->unknown += right->unknown;
	left->future += right->future;
	left->first_visit = Min(left->first_visit, right->first_visit);
	left->last_visit = Max(left->last_visit, right->last_visit);
	left->last_cart_add = Max(left->last_cart_add, right->last_cart_add);
	left->last_open = Max(left->last_open, right->last_open);
	if (right->sub_state != SUB_NONE)
		subscription_set(left, right->sub_at, right->sub_state);
	cart_merge(left, right, aggcontext);
	PG_RETURN_POINTER(left);
}

/*
 * events serial: version, window, the seven counts, the six timestamps,
 * subscription state, then the cart items (time, length, bytes).
 */
Datum
segment_events_serial(PG_FUNCTION_ARGS)
{
	SegmentEventState *state;
	StringInfoData buf;
	int			i;

	(void) segment_aggregate_context(fcinfo);
	state = (SegmentEventState *) PG_GETARG_POINTER(0);

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, EVENTS_SERIAL_VERSION);
	segment_window_send(&buf, &state->w);
	pq_sendint64(&buf, state->visits);
	pq_sendint64(&buf, state->views);
	pq_sendint64(&buf, state->cart_adds);
	pq_sendint64(&buf, state->checkouts);
	pq_sendint64(&buf, state->opens);
	pq_sendint64(&buf, state->unknown);
	pq_sendint64(&buf, state->future);
	pq_sendint64(&buf, state->first_visit);
	pq_sendint64(&buf, state->last_visit);
	pq_sendint64(&buf, state->last_cart_add);
	pq_sendint64(&buf, state->last_checkout);
	pq_sendint64(&buf, state->last_open);
	pq_sendint64(&buf, state->sub_at);
	pq_sendbyte(&buf, state->sub_state);
	pq_sendint32(&buf, state->ncart);
	for (i = 0; i < state->ncart; i++)
	{
		pq_sendint64(&buf, state->cart[i].at);
		pq_sendint32(&buf, state->cart[i].len);
		pq_sendbytes(&buf, state->cart[i].product, state->cart[i].len);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* events deserial: read what segment_events_serial wrote, validating it. */
Datum
segment_events_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	StringInfoData buf;
	SegmentEventState *state;
	int32		ncart;
	int			i;

	aggcontext = segment_aggregate_context(fcinfo);
	buf = segment_state_reader(PG_GETARG_BYTEA_PP(0));

	if (segment_read_byte(&buf) != EVENTS_SERIAL_VERSION)
		segment_corrupt_state("events", "Unknown format version.");
	state = events_state_create(aggcontext);
	segment_window_recv(&buf, &state->w);
	state->visits = segment_read_int64(&buf);
	state->views = segment_read_int64(&buf);
	state->cart_adds = segment_read_int64(&buf);
	state->checkouts = segment_read_int64(&buf);
	state->opens = segment_read_int64(&buf);
	state->unknown = segment_read_int64(&buf);
	state->future = segment_read_int64(&buf);
	state->first_visit = segment_read_int64(&buf);
	state->last_visit = segment_read_int64(&buf);
	state->last_cart_add = segment_read_int64(&buf);
	state->last_checkout = segment_read_int64(&buf);
	state->last_open = segment_read_int64(&buf);
	state->sub_at = segment_read_int64(&buf);
	state->sub_state = segment_read_byte(&buf);
	ncart = segment_read_int32(&buf);
	if (state->visits < 0 || state->views < 0 || state->cart_adds < 0 ||
		state->checkouts < 0 || state->opens < 0 || state->unknown < 0 || state->future < 0 ||
		state->sub_state < SUB_NONE || state->sub_state > SUB_OUT ||
		(state->sub_state == SUB_NONE) != (state->sub_at == ACTIVITY_NONE_MAX) ||
		ncart < 0 || ncart > EVENTS_CART_MAX)
		segment_corrupt_state("events", "Counts out of range.");
	for (i = 0; i < ncart; i++)
	{
		TimestampTz at = segment_read_int64(&buf);
		int32		len = segment_read_int32(&buf);

		if (len < 0 || len > buf.len - buf.cursor || at <= state->last_checkout ||
			TIMESTAMP_NOT_FINITE(at))
			segment_corrupt_state("events", "Cart item out of range.");
		cart_add(state, at, segment_read_bytes(&buf, len), len, aggcontext);
	}
	if (state->ncart != ncart)
		segment_corrupt_state("events", "Repeated cart items.");
	segment_read_end(&buf);
	PG_RETURN_POINTER(state);
}

static inline void
set_time(Datum *values, bool *nulls, int i, TimestampTz ts)
{
	values[i] = TimestampTzGetDatum(ts);
	nulls[i] = TIMESTAMP_NOT_FINITE(ts);
}

/*
 * events final: the segment.event_summary composite.  Reads the state
 * without changing it, so it may be called more than once on the same state.
 */
Datum
segment_events_final(PG_FUNCTION_ARGS)
{
	SegmentEventState *state;
	TupleDesc	tupdesc;
	Datum		values[EVENTS_RESULT_NATTS];
	bool		nulls[EVENTS_RESULT_NATTS] = {0};
	Datum		products[EVENTS_CART_MAX];
	Datum		times[EVENTS_CART_MAX];
	int			i;

	(void) segment_aggregate_context(fcinfo);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SegmentEventState *) PG_GETARG_POINTER(0);
	tupdesc = segment_result_tupdesc(fcinfo, EVENTS_RESULT_NATTS, "segment.event_summary");

	segment_window_datums(&state->w, values, nulls);
	values[2] = Int64GetDatum(state->visits);
	values[3] = Int64GetDatum(state->views);
	values[4] = Int64GetDatum(state->cart_adds);
	values[5] = Int64GetDatum(state->checkouts);
	values[6] = Int64GetDatum(state->opens);
	set_time(values, nulls, 7, state->first_visit);
	set_time(values, nulls, 8, state->last_visit);
	set_time(values, nulls, 9, state->last_cart_add);
	set_time(values, nulls, 10, state->last_checkout);
	set_time(values, nulls, 11, state->last_open);
	values[12] = BoolGetDatum(state->sub_state == SUB_IN);
	nulls[12] = state->sub_state == SUB_NONE;
	set_time(values, nulls, 13, state->sub_at);
	for (i = 0; i < state->ncart; i++)
	{
		products[i] = PointerGetDatum(cstring_to_text_with_len(state->cart[i].product,
															   state->cart[i].len));
		times[i] = TimestampTzGetDatum(state->cart[i].at);
	}
	values[14] = PointerGetDatum(construct_array(products, state->ncart, TEXTOID,
												 -1, false, TYPALIGN_INT));
	values[15] = PointerGetDatum(construct_array(times, state->ncart, TIMESTAMPTZOID,
												 sizeof(TimestampTz), FLOAT8PASSBYVAL,
												 TYPALIGN_DOUBLE));
	values[16] = Int64GetDatum(state->unknown);
	values[17] = Int64GetDatum(state->future);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* event_kind(event_type, kinds): the kind of an event type, NULL if unknown. */
Datum
segment_event_kind(PG_FUNCTION_ARGS)
{
	const EventKindMap *map = kind_map_of(fcinfo, 1, false);
	text	   *type;
	int			kind;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	type = PG_GETARG_TEXT_PP(0);
	kind = kind_map_get(map, VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type));
	if (kind == EK_UNKNOWN)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(event_kind_names[kind]));
}

/* A timestamptz field of a summary, or "none" (ACTIVITY_NONE_MAX) when NULL. */
static TimestampTz
summary_time(HeapTupleHeader summary, int attno)
{
	bool		isnull;
	Datum		d = GetAttributeByNum(summary, attno, &isnull);

	return isnull ? ACTIVITY_NONE_MAX : DatumGetTimestampTz(d);
}

/* The time after which a cart add counts as abandoned: last checkout or order. */
static TimestampTz
abandoned_after(HeapTupleHeader summary, FunctionCallInfo fcinfo)
{
	TimestampTz after = summary_time(summary, EVENTS_ATT_LAST_CHECKOUT);

	if (!PG_ARGISNULL(1))
		after = Max(after, PG_GETARG_TIMESTAMPTZ(1));
	return after;
}

/*
 * abandoned_at(summary, last_order): the latest cart add when it came after
 * the latest checkout event and after the last order, else NULL.
 */
Datum
segment_abandoned_at(PG_FUNCTION_ARGS)
{
	HeapTupleHeader summary;
	TimestampTz last_add;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	summary = PG_GETARG_HEAPTUPLEHEADER(0);
	last_add = summary_time(summary, EVENTS_ATT_LAST_CART_ADD);
	if (last_add == ACTIVITY_NONE_MAX || last_add <= abandoned_after(summary, fcinfo))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(last_add);
}

/*
 * abandoned_products(summary, last_order): the cart's products added after
 * the latest checkout event and after the last order, most recent first.
 */
Datum
segment_abandoned_products(PG_FUNCTION_ARGS)
{
	HeapTupleHeader summary;
	TimestampTz after;
	bool		pnull,
				tnull;
	Datum		pdatum,
				tdatum;
	ArrayType  *parr,
			   *tarr;
	Datum	   *pelems,
			   *telems;
	bool	   *pnulls,
			   *tnulls;
	int			np,
				nt,
				i,
				n = 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	summary = PG_GETARG_HEAPTUPLEHEADER(0);
	after = abandoned_after(summary, fcinfo);
	pdatum = GetAttributeByNum(summary, EVENTS_ATT_CART_PRODUCTS, &pnull);
	tdatum = GetAttributeByNum(summary, EVENTS_ATT_CART_ADDED_AT, &tnull);
	/* a NULL field has no array to detoast: no cart known */
	if (pnull || tnull)
		PG_RETURN_NULL();
	parr = DatumGetArrayTypeP(pdatum);
	tarr = DatumGetArrayTypeP(tdatum);
	if (ARR_NDIM(parr) > 1 || ARR_NDIM(tarr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("cart_products and cart_added_at must be one-dimensional arrays")));
	deconstruct_array(parr, TEXTOID, -1, false, TYPALIGN_INT, &pelems, &pnulls, &np);
	deconstruct_array(tarr, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &telems, &tnulls, &nt);
	if (np != nt)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cart_products and cart_added_at must have the same length"),
				 errdetail("Got %d products and %d times.", np, nt)));
	for (i = 0; i < np; i++)
	{
		if (pnulls[i] || tnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("cart_products and cart_added_at must not contain nulls")));
		if (DatumGetTimestampTz(telems[i]) > after)
			pelems[n++] = pelems[i];
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(pelems, n, TEXTOID, -1, false, TYPALIGN_INT));
}
