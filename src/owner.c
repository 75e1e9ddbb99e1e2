/*
 * owner.c
 *	  segment.refresh(): run a refresh as the segmentation's owner.
 *
 * A refresh runs SQL text other roles stored (rule predicates, the relations
 * and columns of the configuration).  Like REFRESH MATERIALIZED VIEW, it
 * runs as the owner of the segmentation, whoever calls it (a superuser by
 * hand, a pg_cron job): the caller must have the owner's privileges, and it
 * runs inside a security-restricted operation (SECURITY_LOCAL_USERID_CHANGE:
 * SET ROLE / RESET ROLE cannot switch back; SECURITY_RESTRICTED_OPERATION:
 * the stored SQL cannot leave temporary objects or cursors behind that would
 * run later with the caller's privileges).
 *
 * Temporary tables cannot be created inside a security-restricted operation,
 * and a refresh works in a few: segment_internal.refresh_table() creates one WITH NO
 * DATA (the query is parsed, not run) outside it, as REFRESH MATERIALIZED
 * VIEW CONCURRENTLY does with its diff table, then runs the query inside it
 * into the table through a receiver of its own, as REFRESH MATERIALIZED VIEW
 * fills its new heap: the query may use parallel workers, which an
 * INSERT ... SELECT could not.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "commands/extension.h"
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
PG_FUNCTION_INFO_V1(segment_refresh_table);
PG_FUNCTION_INFO_V1(segment_run_as_owner);

/* The temporary tables of a refresh (segment_internal.drop_refresh_tables() drops them). */
static const char *const refresh_tables[] = {
	"segment_refresh_stage", "segment_refresh_clv", "segment_refresh_scored",
	"segment_refresh_new", "segment_refresh_events", "segment_refresh_contacts",
	"segment_refresh_lines", "segment_refresh_restock", "segment_refresh_old",
	"segment_refresh_customers", "segment_refresh_consumed", "segment_refresh_recompute",
	"segment_refresh_affected", "segment_refresh_impulse", "segment_refresh_impulse_lines",
	"segment_refresh_impulse_views", "segment_refresh_source_consumed", "segment_refresh_source_keys",
	"segment_refresh_source_affected", "segment_refresh_delta", "segment_refresh_appended"
};

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

/* Refuse unless the current user has the privileges of the owner. */
static void
owner_check(Oid owner, text *segmentation, const char *what)
{
	const char *name;

	if (has_privs_of_role(GetUserId(), owner))
		return;
	name = GetUserNameFromId(owner, true);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s segmentation \"%s\"", what,
					segmentation ? text_to_cstring(segmentation) : "(default)"),
			 errdetail("Only roles with the privileges of its owner, role \"%s\", may.",
					   name ? name : "?")));
}

/*
 * The function refresh() runs as the owner: segment_internal.refresh_run, or
 * segment.refresh_run in a database whose extension is still at 0.1 (the
 * library is shared by every version installed; ALTER EXTENSION segment
 * UPDATE moves it).  Only a member of the extension: in a 0.1 database any
 * role that may create schemas could make a segment_internal of its own.
 */
static Oid
refresh_run_function(void)
{
	static const char *const schemas[] = {"segment_internal", "segment"};
	Oid			argtypes[4] = {TEXTOID, TIMESTAMPTZOID, BOOLOID, TEXTOID};
	Oid			extension = get_extension_oid("segment", false);

	for (int i = 0; i < lengthof(schemas); i++)
	{
		List	   *name = list_make2(makeString(pstrdup(schemas[i])),
									  makeString(pstrdup("refresh_run")));
		Oid			oid = LookupFuncName(name, 4, argtypes, true);

		if (OidIsValid(oid) && getExtensionOfObject(ProcedureRelationId, oid) == extension)
			return oid;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_FUNCTION),
			 errmsg("function segment_internal.refresh_run of extension segment does not exist"),
			 errhint("Update the extension: ALTER EXTENSION segment UPDATE.")));
	return InvalidOid;			/* keep the compiler quiet */
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
	LOCAL_FCINFO(call, 4);

	/* No such segmentation: refresh_run says so, as the caller. */
	if (!OidIsValid(owner))
		owner = GetUserId();
	owner_check(owner, segmentation, "refresh");

	runid = refresh_run_function();
	fmgr_info(runid, &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 4, InvalidOid, NULL, NULL);
	call->args[0] = fcinfo->args[0];
	call->args[1] = fcinfo->args[1];
	call->args[2] = fcinfo->args[2];
	call->args[3] = fcinfo->args[3];

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
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

/* Receives the rows of a refresh_table() query into the table. */
typedef struct FillReceiver
{
	DestReceiver pub;
	Relation	rel;
	BulkInsertState bistate;
	CommandId	cid;
} FillReceiver;

static void
fill_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	FillReceiver *fill = (FillReceiver *) self;

	fill->cid = GetCurrentCommandId(true);
	fill->bistate = GetBulkInsertState();
}

static bool
fill_receive(TupleTableSlot *slot, DestReceiver *self)
{
	FillReceiver *fill = (FillReceiver *) self;

	table_tuple_insert(fill->rel, slot, fill->cid, 0, fill->bistate);
	return true;
}

static void
fill_shutdown(DestReceiver *self)
{
	FillReceiver *fill = (FillReceiver *) self;

	if (fill->bistate != NULL)
	{
		FreeBulkInsertState(fill->bistate);
		fill->bistate = NULL;
	}
	table_finish_bulk_insert(fill->rel, 0);
}

static void
fill_destroy(DestReceiver *self)
{
}

/* Run query into the table relid (created from it, so of its row type). */
static void
owner_fill(Oid relid, const char *query)
{
	FillReceiver fill;
	SPIExecuteOptions options;
	int			ret;

	memset(&fill, 0, sizeof(fill));
	fill.pub.receiveSlot = fill_receive;
	fill.pub.rStartup = fill_startup;
	fill.pub.rShutdown = fill_shutdown;
	fill.pub.rDestroy = fill_destroy;
	fill.pub.mydest = DestNone;
	fill.rel = table_open(relid, RowExclusiveLock);

	memset(&options, 0, sizeof(options));
	options.dest = &fill.pub;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_extended(query, &options);
	if (ret < 0)
		elog(ERROR, "SPI_execute_extended failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	table_close(fill.rel, NoLock);
	CommandCounterIncrement();
}

/* Run one statement through SPI; the error is the statement's own. */
static void
owner_execute(const char *sql, int expected)
{
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute(sql, false, 0);
	if (ret != expected)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	SPI_finish();
}

Datum
segment_refresh_table(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *query;
	StringInfoData sql;
	bool		known = false;
	Oid			userid;
	int			sec_context;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table name and query must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	for (i = 0; i < lengthof(refresh_tables); i++)
		known = known || strcmp(name, refresh_tables[i]) == 0;
	if (!known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a table of a refresh", name),
				 errdetail("segment_internal.refresh_table() only creates the temporary tables a refresh works in.")));

	/* WITH NO DATA: the query is parsed, never planned nor run, here. */
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TEMP TABLE %s ON COMMIT DROP AS %s\nWITH NO DATA",
					 quote_identifier(name), query);
	GetUserIdAndSecContext(&userid, &sec_context);
	SetUserIdAndSecContext(userid, sec_context & ~SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		owner_execute(sql.data, SPI_OK_UTILITY);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(userid, sec_context);
	}
	PG_END_TRY();

	owner_fill(RangeVarGetRelid(makeRangeVar("pg_temp", name, -1), RowExclusiveLock, false),
			   query);
	PG_RETURN_VOID();
}

/*
 * segment_internal.run_as_owner(segmentation, statement): runs a statement as the
 * owner of a segmentation inside a security-restricted operation, for the
 * checks that plan stored SQL (the planner may run functions it folds).
 * Callable by anyone: the caller must already have the owner's privileges,
 * so it can only lose privileges.
 */
Datum
segment_run_as_owner(PG_FUNCTION_ARGS)
{
	text	   *segmentation;
	char	   *statement;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("segmentation and statement must not be null")));
	segmentation = PG_GETARG_TEXT_PP(0);
	statement = text_to_cstring(PG_GETARG_TEXT_PP(1));
	owner = owner_of_segmentation(segmentation);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segmentation \"%s\" does not exist", text_to_cstring(segmentation))));
	owner_check(owner, segmentation, "use");

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(statement, false, 0) < 0)
			elog(ERROR, "SPI_execute failed");
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}
