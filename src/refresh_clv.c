/*
 * refresh_clv.c
 *	  Lifetime value inside refresh_figures(): the BG/NBD and Gamma-Gamma
 *	  fits over every buyer's summary, read from the hash table before it is
 *	  written out, and each customer's predictions written with its row.
 *
 * A full refresh with lifetime value used to write its per-customer rows,
 * read them again for the two fits (an aggregate each), then copy every row
 * with its predictions into a second table (one function call and one row
 * per customer) and read that for the high-value cut: about 1.7 s of a 9 s
 * refresh at a million customers.  Here the rows the fits take are
 * gathered from the table in memory, the fits are the aggregates' own
 * (clv_bgnbd_fit_rows(), clv_gg_fit_rows()), and the predictions those of
 * segment_internal.bgnbd_predictions() (clv_bgnbd_predictions()): the same
 * models and the same values to the last bit, which
 * test/refresh_clv_engine.sql checks against the SQL path.
 *
 * Only the ordinary case is done here: a purchase model that is BG/NBD,
 * enough repeat buyers, a Gamma-Gamma fit with rows, no spill to disk.
 * Otherwise nothing is fitted and segment_internal.refresh_run() takes its
 * SQL path, which also says why a fit could not be made.  What was fitted is
 * read once, by segment_internal.refresh_figures_models(), in the same
 * transaction.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "clv.h"
#include "refresh_clv.h"
#include "segment.h"

/* attributes (0-based) of segment.bgnbd_model and segment.gamma_gamma_model */
#define BGNBD_CONVERGED 6
#define GG_Q 1
#define GG_CONVERGED 5
#define REFRESH_MODELS_NATTS 5

/* Past this many buyers a fit's state would not fit in one allocation. */
#define REFRESH_CLV_MAX_BUYERS ((int64) 40 * 1000 * 1000)

PG_FUNCTION_INFO_V1(segment_refresh_figures_models);

struct RefreshClvModels
{
	MemoryContext cxt;			/* the rows, the models, the call site */
	TupleDesc	bg_desc;
	TupleDesc	gg_desc;
	double		penalizer;
	int32		min_repeat_buyers;
	double		t;				/* horizon of the expected purchases */
	int32		months;
	double		rate;
	text	   *time_unit;
	double		high_value_share;

	ClvRows		bg_rows;		/* (x, t_x, T) of every buyer */
	ClvRows		gg_rows;		/* (x, mean value) of repeat buyers who spent */
	int64		buyers;
	int64		repeaters;
	int64		one_time;		/* x = 0: counted by Gamma-Gamma's state */
	int64		expected;		/* rows to make room for at once */
	bool		too_many;

	bool		fitted;
	bool		predicting;		/* the purchase model converged */
	Datum		bg_model;
	Datum		gg_model;		/* 0: none */
	FmgrInfo	flinfo;			/* the predictions' call site */
	FunctionCallInfo call;
	ClvPredictionTerms terms;	/* checked once */
	double	   *clvs;			/* every finite CLV, for the high-value cut */
	int64		nclvs;
	int64		clvs_capacity;
	int64		bad;
};

/* What the last refresh_figures() fitted, until read (in TopMemoryContext). */
typedef struct RefreshClvResult
{
	bool		fitted;
	Datum		model;
	Datum		gamma_gamma;	/* 0: none */
	bool		high_value_null;
	double		high_value_min;
	int64		bad;
} RefreshClvResult;

static RefreshClvResult *last_result = NULL;
static bool xact_callback_registered = false;

static void
refresh_clv_forget(void)
{
	if (last_result == NULL)
		return;
	if (last_result->model != (Datum) 0)
		pfree(DatumGetPointer(last_result->model));
	if (last_result->gamma_gamma != (Datum) 0)
		pfree(DatumGetPointer(last_result->gamma_gamma));
	pfree(last_result);
	last_result = NULL;
}

/* What was fitted lives until read, and never past its transaction. */
static void
refresh_clv_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		refresh_clv_forget();
}

static double
refresh_clv_float_arg(FunctionCallInfo fcinfo, int arg, const char *what)
{
	double		v;

	segment_check_arg_not_null(fcinfo, arg, what);
	v = PG_GETARG_FLOAT8(arg);
	clv_check_finite(v, what);
	return v;
}

/* A composite argument's type, blessed: the models' row types. */
static TupleDesc
refresh_clv_row_type(FunctionCallInfo fcinfo, int arg)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, arg);

	if (!OidIsValid(typid))
		elog(ERROR, "refresh_figures: cannot determine the type of argument %d", arg + 1);
	return BlessTupleDesc(lookup_rowtype_tupdesc_copy(typid, -1));
}

/*
 * The settings of refresh_figures()'s fitting variant, from first_arg on:
 * bgnbd and gamma_gamma (NULLs of the model types), penalizer,
 * min_repeat_buyers, t, months, monthly_discount_rate, high_value_share.
 * In CurrentMemoryContext.
 */
RefreshClvModels *
refresh_clv_models_create(FunctionCallInfo fcinfo, int first_arg)
{
	RefreshClvModels *m = palloc0(sizeof(RefreshClvModels));
	float8		settings[3] = {0, 0, 0};

	refresh_clv_forget();
	m->cxt = CurrentMemoryContext;
	m->expected = 1024;
	m->bg_desc = refresh_clv_row_type(fcinfo, first_arg);
	m->gg_desc = refresh_clv_row_type(fcinfo, first_arg + 1);
	m->penalizer = refresh_clv_float_arg(fcinfo, first_arg + 2, "penalizer");
	if (m->penalizer < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("penalizer must not be negative"),
				 errdetail("Got %g.", m->penalizer)));
	segment_check_arg_not_null(fcinfo, first_arg + 3, "min_repeat_buyers");
	m->min_repeat_buyers = PG_GETARG_INT32(first_arg + 3);
	m->t = refresh_clv_float_arg(fcinfo, first_arg + 4, "horizon t");
	clv_check_horizon(m->t);
	segment_check_arg_not_null(fcinfo, first_arg + 5, "horizon in months");
	m->months = PG_GETARG_INT32(first_arg + 5);
	m->rate = refresh_clv_float_arg(fcinfo, first_arg + 6, "monthly discount rate");
	clv_check_terms(m->months, m->rate);
	m->high_value_share = refresh_clv_float_arg(fcinfo, first_arg + 7, "high_value_share");
	if (!(m->high_value_share >= 0 && m->high_value_share <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("high_value_share must be between 0 and 1"),
				 errdetail("Got %g.", m->high_value_share)));
	/* the time unit of the summaries (argument 10), also CLV's months */
	m->time_unit = PG_GETARG_TEXT_P_COPY(10);

	/* the states the aggregates would have built (bgnbd_fit(..., penalizer)) */
	settings[0] = m->penalizer;
	clv_rows_init(&m->bg_rows, CLV_KIND_BGNBD, BGNBD_WIDTH, settings);
	clv_rows_init(&m->gg_rows, CLV_KIND_GG, GG_WIDTH, settings);
	return m;
}

/* The number of customers to come (an upper bound on the buyers): the states' size. */
void
refresh_clv_models_expect(RefreshClvModels *m, int64 customers)
{
	m->expected = Max(Min(customers, REFRESH_CLV_MAX_BUYERS), 1024);
}

/* One buyer's summary, for the fits (in the order the table gives them). */
void
refresh_clv_models_add(RefreshClvModels *m, const ClvSummary *s)
{
	MemoryContext old;
	float8	   *row;

	if (m->too_many || ++m->buyers > REFRESH_CLV_MAX_BUYERS)
	{
		m->too_many = true;
		return;
	}
	old = MemoryContextSwitchTo(m->cxt);
	row = clv_rows_append(&m->bg_rows, 1, m->expected);
	row[0] = s->x;
	row[1] = s->t_x;
	row[2] = s->t_cal;
	if (s->x == 0)
		m->one_time++;
	else
	{
		m->repeaters++;
		/* refresh_fit_clv()'s FILTER (WHERE clv_x = 0 OR clv_mean_value > 0) */
		if (s->mean_value > 0)
		{
			row = clv_rows_append(&m->gg_rows, 1, m->expected);
			row[0] = s->x;
			row[1] = s->mean_value;
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * Fit both models if this is the ordinary case (see the head comment);
 * true when the customers' predictions follow.
 */
bool
refresh_clv_models_fit(RefreshClvModels *m)
{
	HeapTupleHeader t;
	bool		isnull;
	bool		gg_usable;
	MemoryContext old;

	if (m->too_many || m->buyers == 0 || m->repeaters == 0 ||
		m->repeaters < m->min_repeat_buyers || m->gg_rows.count == 0)
		return false;

	old = MemoryContextSwitchTo(m->cxt);
	/* Gamma-Gamma's state counts the one-time buyers it skipped */
	m->gg_rows.settings[1] = (float8) m->one_time;
	((float8 *) ARR_DATA_PTR(m->gg_rows.state))[4] = (float8) m->one_time;
	m->bg_model = clv_bgnbd_fit_rows(&m->bg_rows, m->bg_desc);
	m->gg_model = clv_gg_fit_rows(&m->gg_rows, m->gg_desc);
	pfree(m->bg_rows.state);
	pfree(m->gg_rows.state);
	m->fitted = true;

	/* refresh_fit_clv()'s verdict: the purchase model converged; CLV also needs q > 1 */
	t = DatumGetHeapTupleHeader(m->bg_model);
	m->predicting = DatumGetBool(GetAttributeByNum(t, BGNBD_CONVERGED + 1, &isnull)) && !isnull;
	t = DatumGetHeapTupleHeader(m->gg_model);
	gg_usable = DatumGetBool(GetAttributeByNum(t, GG_CONVERGED + 1, &isnull)) && !isnull &&
		DatumGetFloat8(GetAttributeByNum(t, GG_Q + 1, &isnull)) > 1 && !isnull;

	/* the call site of segment_internal.bgnbd_predictions(bg, gg, ...) */
	m->flinfo.fn_mcxt = m->cxt;
	m->flinfo.fn_oid = InvalidOid;
	m->call = palloc0(SizeForFunctionCallInfo(2));
	InitFunctionCallInfoData(*m->call, &m->flinfo, 2, InvalidOid, NULL, NULL);
	m->call->args[0].value = m->bg_model;
	m->call->args[0].isnull = false;
	m->call->args[1].value = gg_usable ? m->gg_model : (Datum) 0;
	m->call->args[1].isnull = !gg_usable;
	clv_prediction_terms(m->call, m->t, m->months, m->rate, m->time_unit, &m->terms);
	MemoryContextSwitchTo(old);
	return m->predicting;
}

/*
 * The predictions of one customer into values[0..2] (p_alive,
 * expected_purchases, clv) and nulls; s NULL: a customer without purchases.
 */
void
refresh_clv_models_predict(RefreshClvModels *m, const ClvSummary *s, Datum *values, bool *nulls)
{
	ClvPredictions p;

	nulls[0] = nulls[1] = nulls[2] = true;
	if (!m->predicting || s == NULL)
		return;
	clv_bgnbd_predict(m->call, &m->terms, s->x, s->t_x, s->t_cal, false, s->mean_value, &p);
	clv_predictions_datums(&p, values, nulls);
	if (p.bad)
		m->bad++;
	if (!p.clv_null)
	{
		if (m->nclvs == m->clvs_capacity)
		{
			m->clvs_capacity = Max(m->clvs_capacity * 2, 1024);
			if (m->clvs == NULL)
				m->clvs = MemoryContextAllocHuge(m->cxt, m->clvs_capacity * sizeof(double));
			else
				m->clvs = repalloc_huge(m->clvs, m->clvs_capacity * sizeof(double));
		}
		m->clvs[m->nclvs++] = p.clv;
	}
}

/*
 * Keep what was fitted for refresh_figures_models(): the models, the
 * high-value cut (percentile_disc(1 - high_value_share) of the finite CLVs,
 * as refresh_run()'s rank_at()) and the count of values out of range.
 */
void
refresh_clv_models_finish(RefreshClvModels *m)
{
	RefreshClvResult *r;

	refresh_clv_forget();
	if (!xact_callback_registered)
	{
		RegisterXactCallback(refresh_clv_xact_callback, NULL);
		xact_callback_registered = true;
	}
	r = MemoryContextAllocZero(TopMemoryContext, sizeof(RefreshClvResult));
	r->fitted = m->fitted;
	r->high_value_null = true;
	if (m->fitted)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		r->model = datumCopy(m->bg_model, false, -1);
		r->gamma_gamma = datumCopy(m->gg_model, false, -1);
		MemoryContextSwitchTo(old);
		r->bad = m->bad;
		if (m->nclvs > 0)
		{
			int64		position;

			r->high_value_min = segment_percentile_disc(m->clvs, m->nclvs,
														1 - m->high_value_share, &position);
			r->high_value_null = false;
		}
	}
	last_result = r;
}

/*
 * refresh_figures_models(): what the last refresh_figures() with lifetime
 * value fitted in this session, once (fitted false: nothing, the refresh
 * fits them itself): the BG/NBD and Gamma-Gamma models, the high-value cut
 * and how many customers got a value out of range.
 */
Datum
segment_refresh_figures_models(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[REFRESH_MODELS_NATTS];
	bool		nulls[REFRESH_MODELS_NATTS] = {false, true, true, true, true};
	HeapTuple	tuple;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE ||
		tupdesc->natts != REFRESH_MODELS_NATTS)
		elog(ERROR, "refresh_figures_models must return a row of %d columns", REFRESH_MODELS_NATTS);
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = BoolGetDatum(last_result != NULL && last_result->fitted);
	if (last_result != NULL && last_result->fitted)
	{
		values[1] = last_result->model;
		nulls[1] = false;
		values[2] = last_result->gamma_gamma;
		nulls[2] = false;
		values[3] = Float8GetDatum(last_result->high_value_min);
		nulls[3] = last_result->high_value_null;
		values[4] = Int64GetDatum(last_result->bad);
		nulls[4] = false;
	}
	tuple = heap_form_tuple(tupdesc, values, nulls);
	refresh_clv_forget();
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
