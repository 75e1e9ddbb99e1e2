/*
 * refresh_clv.h
 *	  Lifetime value fitted and predicted inside refresh_figures()
 *	  (src/refresh_clv.c).
 */
#ifndef REFRESH_CLV_H
#define REFRESH_CLV_H

#include "fmgr.h"

#include "clv.h"

typedef struct RefreshClvModels RefreshClvModels;

extern RefreshClvModels *refresh_clv_models_create(FunctionCallInfo fcinfo, int first_arg);
extern void refresh_clv_models_expect(RefreshClvModels *m, int64 customers);
extern void refresh_clv_models_add(RefreshClvModels *m, const ClvSummary *s);
extern bool refresh_clv_models_fit(RefreshClvModels *m);
extern void refresh_clv_models_predict(RefreshClvModels *m, const ClvSummary *s,
									   Datum *values, bool *nulls);
extern void refresh_clv_models_finish(RefreshClvModels *m);

#endif							/* REFRESH_CLV_H */
