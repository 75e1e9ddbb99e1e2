/*
 * rule_inputs.c
 *	  What a rule's result can depend on, for the incremental refresh.
 *
 * An incremental refresh re-evaluates the rules only for the customers whose
 * row of figures changed (segment.refresh_narrow_blocker()).  That is right
 * only if a rule's result depends on nothing but that row: no function
 * whose result may change between two calls with the same arguments (now(),
 * random(), a function that reads a table), and no table read by a
 * subquery.  PostgreSQL's own test for index expressions answers the first
 * (contain_mutable_functions()); a walk over the range tables of the parsed
 * query answers the second.  The query is parsed and analysed, never planned
 * or run: nothing in it executes.
 */
#include "postgres.h"

#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(segment_query_reads_only_row);

typedef struct ReadsContext
{
	Oid			allowed;		/* the relation the outermost query may read */
	int			depth;			/* of the query being walked: 1 outermost */
} ReadsContext;

/*
 * Whether a range table anywhere in the tree names a relation other than
 * allowed, or names allowed below the outermost query: there it is the
 * customer's own row of the customers relation (the scope's join); in a
 * subquery it would be other customers' rows.
 */
static bool
reads_other_relation(Node *node, void *context)
{
	ReadsContext *cxt = (ReadsContext *) context;

	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->rtekind == RTE_RELATION && (rte->relid != cxt->allowed || cxt->depth > 1);
	}
	if (IsA(node, Query))
	{
		bool		result;

		cxt->depth++;
		result = query_tree_walker((Query *) node, reads_other_relation, context,
								   QTW_EXAMINE_RTES_BEFORE);
		cxt->depth--;
		return result;
	}
	return expression_tree_walker(node, reads_other_relation, context);
}

/*
 * segment_internal.query_reads_only_row(query text, allowed regclass) returns boolean:
 * whether query is one plain SELECT that calls only immutable functions and
 * reads no relation but allowed (NULL: none), and that one only in its
 * outermost FROM.  A query that does not parse
 * raises its error, which the caller may catch.
 */
Datum
segment_query_reads_only_row(PG_FUNCTION_ARGS)
{
	char	   *sql;
	ReadsContext cxt = {InvalidOid, 0};
	List	   *parsed;
	Query	   *query;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be null")));
	sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	cxt.allowed = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);

	parsed = pg_parse_query(sql);
	if (list_length(parsed) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("expected one SQL statement, got %d", list_length(parsed))));
	query = parse_analyze_fixedparams(linitial_node(RawStmt, parsed), sql, NULL, 0, NULL);

	if (query->commandType != CMD_SELECT || query->utilityStmt != NULL ||
		query->hasModifyingCTE || query->rowMarks != NIL)
		PG_RETURN_BOOL(false);
	if (contain_mutable_functions((Node *) query))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(!reads_other_relation((Node *) query, &cxt));
}
