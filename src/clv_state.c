/*
 * clv_state.c
 *	  The float8[] row-list state shared by the lifetime-value aggregates.
 *
 * The fits have no sufficient statistics (the BG/NBD likelihood needs every
 * customer's (x, t_x, T)), so the state keeps the rows themselves, as the
 * breaks aggregate of quantile.c keeps its values: a concrete SQL type that
 * can be combined, appended to in place in the aggregate context.  Layout in
 * clv.h.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "clv.h"

static void
clv_rows_corrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid lifetime-value aggregate state"),
			 errdetail("The state must be a float8 array written by the same aggregate.")));
}

/* Validate a state array written by an aggregate of the given kind. */
void
clv_rows_read(ArrayType *state, int kind, int width, ClvRows *rows)
{
	float8	   *data;

	if (ARR_NDIM(state) != 1 || ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID ||
		ARR_DIMS(state)[0] < CLV_STATE_HEADER)
		clv_rows_corrupt();
	data = (float8 *) ARR_DATA_PTR(state);
	rows->state = state;
	rows->width = width;
	rows->kind = kind;
	rows->capacity = (ARR_DIMS(state)[0] - CLV_STATE_HEADER) / width;
	if (data[1] != width || data[2] != kind ||
		!(data[0] >= 0 && data[0] <= rows->capacity && data[0] == floor(data[0])))
		clv_rows_corrupt();
	rows->count = (int64) data[0];
	memcpy(rows->settings, data + 3, sizeof(rows->settings));
}

/* An empty row list (no array yet) with the given settings. */
void
clv_rows_init(ClvRows *rows, int kind, int width, const float8 *settings)
{
	rows->state = NULL;
	rows->count = 0;
	rows->capacity = 0;
	rows->width = width;
	rows->kind = kind;
	memcpy(rows->settings, settings, sizeof(rows->settings));
}

/* Raise an error unless the first nsettings settings equal the state's. */
void
clv_rows_check_settings(const ClvRows *rows, const float8 *settings, int nsettings,
						const char *what)
{
	int			i;

	for (i = 0; i < nsettings; i++)
		if (rows->settings[i] != settings[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be the same for all rows", what)));
}

/* The first value of the first row. */
float8 *
clv_rows_data(const ClvRows *rows)
{
	return (float8 *) ARR_DATA_PTR(rows->state) + CLV_STATE_HEADER;
}

/*
 * Make room for nrows more rows and return where they go; the caller fills
 * them.  When the array is full a new one, twice as large, is built in
 * CurrentMemoryContext: the executor copies a changed transition value into
 * the aggregate context and frees the old one.
 */
float8 *
clv_rows_append(ClvRows *rows, int64 nrows, int64 initial_capacity)
{
	float8	   *data;

	if (rows->state == NULL || rows->count + nrows > rows->capacity)
	{
		int64		newcap = Max(Max(rows->capacity * 2, rows->count + nrows), initial_capacity);
		int64		maxcap = (int64) ((MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(float8)
									  - CLV_STATE_HEADER) / rows->width;
		ArrayType  *grown;
		Size		nbytes;

		if (rows->count + nrows > maxcap)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many rows for a lifetime-value aggregate"),
					 errdetail("At most " INT64_FORMAT " rows fit in one state.", maxcap),
					 errhint("Fit the model on a sample of customers, e.g. with TABLESAMPLE.")));
		newcap = Min(newcap, maxcap);
		nbytes = ARR_OVERHEAD_NONULLS(1) + (CLV_STATE_HEADER + newcap * rows->width) * sizeof(float8);
		grown = palloc(nbytes);
		SET_VARSIZE(grown, nbytes);
		grown->ndim = 1;
		grown->dataoffset = 0;
		grown->elemtype = FLOAT8OID;
		ARR_DIMS(grown)[0] = (int) (CLV_STATE_HEADER + newcap * rows->width);
		ARR_LBOUND(grown)[0] = 1;
		data = (float8 *) ARR_DATA_PTR(grown);
		data[1] = rows->width;
		data[2] = rows->kind;
		memcpy(data + 3, rows->settings, sizeof(rows->settings));
		if (rows->state != NULL)
			memcpy(data + CLV_STATE_HEADER, clv_rows_data(rows),
				   rows->count * rows->width * sizeof(float8));
		rows->state = grown;
		rows->capacity = newcap;
	}
	data = (float8 *) ARR_DATA_PTR(rows->state);
	data[0] = rows->count + nrows;
	rows->count += nrows;
	return data + CLV_STATE_HEADER + (rows->count - nrows) * rows->width;
}
