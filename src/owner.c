/*
 * owner.c
 *	  segment.refresh(): run a refresh as the segmentation's owner.
 *
 * A refresh runs SQL text other roles stored (rule predicates, the relations
 * and columns of the configuration).  Like REFRESH MATERIALIZED VIEW, it
 * runs as the owner of the segmentation, whoever calls it (a superuser by
 * hand, a pg_cron job): the caller must have the owner's privileges, and the
 * switch is SECURITY_LOCAL_USERID_CHANGE, so that SET ROLE / RESET ROLE in
 * the stored SQL cannot switch back.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include "compat.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(segment_refresh_as_owner);

/* The owner of a segmentation (NULL: the default one); InvalidOid if none. */
static Oid
owner_of_segmentation(text *segmentation)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1];
	Oid			owner = InvalidOid;
	int			ret;

	values[0] = PointerGetDatum(segmentation);
	nulls[0] = segmentation ? ' ' : 'n';
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args("SELECT s.owner::pg_catalog.oid FROM segment.segmentations AS s"
								" WHERE CASE WHEN $1 IS NULL THEN s.is_default"
								" ELSE s.name OPERATOR(pg_catalog.=) $1 END",
								1, argtypes, values, nulls, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			owner = DatumGetObjectId(d);
	}
	SPI_finish();
	return owner;
}

Datum
segment_refresh_as_owner(PG_FUNCTION_ARGS)
{
	text	   *segmentation = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	Oid			owner = owner_of_segmentation(segmentation);
	Oid			runid;
	Oid			save_userid;
	int			save_sec_context;
	FmgrInfo	flinfo;
	Datum		result;
	bool		isnull;
	LOCAL_FCINFO(call, 3);

	/* No such segmentation: refresh_run says so, as the caller. */
	if (!OidIsValid(owner))
		owner = GetUserId();
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to refresh segmentation \"%s\"",
						segmentation ? text_to_cstring(segmentation) : "(default)"),
				 errdetail("Only roles with the privileges of its owner, role \"%s\", may refresh it.",
						   GetUserNameFromId(owner, true) ? GetUserNameFromId(owner, true) : "?")));

	runid = DatumGetObjectId(DirectFunctionCall1(to_regprocedure,
												 CStringGetTextDatum("segment.refresh_run(text,timestamptz,boolean)")));
	if (!OidIsValid(runid))
		elog(ERROR, "function segment.refresh_run is missing");
	fmgr_info(runid, &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 3, InvalidOid, NULL, NULL);
	call->args[0] = fcinfo->args[0];
	call->args[1] = fcinfo->args[1];
	call->args[2] = fcinfo->args[2];

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		result = FunctionCallInvoke(call);
		isnull = call->isnull;
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
