-- Holdout validation of the purchase models: split an orders relation at a
-- date, fit BG/NBD, Pareto/NBD and MBG/NBD on the calibration period, and
-- compare their predicted purchases in the holdout period with the actual
-- ones, by number of calibration repeat purchases (Fader, Hardie and Lee
-- 2005, figure 4) and in total.

CREATE FUNCTION segment.clv_holdout(orders regclass, customer_column name, ordered_at_column name,
                                    calibration_end date, holdout_end date,
                                    time_unit text DEFAULT 'week')
    RETURNS TABLE (model text, calibration_purchases text, customers bigint,
                   actual_mean double precision, predicted_mean double precision)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    days_per_unit integer;
    ts_type regtype;
BEGIN
    IF orders IS NULL OR customer_column IS NULL OR ordered_at_column IS NULL
       OR calibration_end IS NULL OR holdout_end IS NULL OR time_unit IS NULL THEN
        RAISE EXCEPTION 'clv_holdout arguments must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF holdout_end <= calibration_end THEN
        RAISE EXCEPTION 'holdout_end must be later than calibration_end'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got calibration_end %s and holdout_end %s.',
                                  to_char(calibration_end, 'YYYY-MM-DD'), to_char(holdout_end, 'YYYY-MM-DD'));
    END IF;
    days_per_unit := CASE time_unit WHEN 'day' THEN 1 WHEN 'week' THEN 7 END;
    IF days_per_unit IS NULL THEN
        RAISE EXCEPTION 'invalid time unit "%"', time_unit
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use ''day'' or ''week''.';
    END IF;
    PERFORM segment_internal.column_type(orders, customer_column);
    ts_type := segment_internal.column_type(orders, ordered_at_column);
    IF ts_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a timestamp',
                        ordered_at_column, orders, ts_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a timestamptz, timestamp or date column, or a view that casts it.';
    END IF;
    -- Purchase days are calendar days in the session's TimeZone, as
    -- clv_summary counts them; orders of one day are one purchase.
    RETURN QUERY EXECUTE format(
        $q$WITH o AS (
               SELECT %1$I AS c, (%2$I)::timestamptz AS at FROM %3$s
                WHERE %1$I IS NOT NULL AND %2$I IS NOT NULL),
           cal AS (
               SELECT o.c, (segment.clv_summary(o.at, 0::numeric, $1, $5)).*
                 FROM o WHERE o.at < $2 GROUP BY o.c),
           hold AS (
               SELECT o.c, count(DISTINCT (o.at)::date) AS n
                 FROM o WHERE o.at >= $2 AND o.at < $3 GROUP BY o.c),
           d AS (
               SELECT cal.x, cal.t_x, cal.t_cal, coalesce(hold.n, 0)::double precision AS actual
                 FROM cal LEFT JOIN hold ON hold.c = cal.c),
           m AS (
               SELECT segment.bgnbd_fit(d.x, d.t_x, d.t_cal) AS bg,
                      segment.pareto_nbd_fit(d.x, d.t_x, d.t_cal) AS pn,
                      segment.mbgnbd_fit(d.x, d.t_x, d.t_cal) AS mbg
                 FROM d),
           p AS (
               SELECT d.x, d.actual,
                      segment.bgnbd_expected_purchases(m.bg, $4, d.x, d.t_x, d.t_cal) AS bg,
                      segment.pareto_nbd_expected_purchases(m.pn, $4, d.x, d.t_x, d.t_cal) AS pn,
                      segment.mbgnbd_expected_purchases(m.mbg, $4, d.x, d.t_x, d.t_cal) AS mbg
                 FROM d, m),
           l AS (
               SELECT v.model, CASE WHEN p.x >= 7 THEN '7+' ELSE p.x::text END AS bucket,
                      p.actual, v.predicted
                 FROM p CROSS JOIN LATERAL (VALUES ('bgnbd', p.bg), ('pareto_nbd', p.pn),
                                                   ('mbgnbd', p.mbg)) AS v(model, predicted))
           SELECT l.model, coalesce(l.bucket, 'total'), count(*), avg(l.actual), avg(l.predicted)
             FROM l
            GROUP BY l.model, ROLLUP (l.bucket)
            ORDER BY l.model, l.bucket IS NULL, l.bucket$q$,
        customer_column, ordered_at_column, orders)
        USING calibration_end::timestamptz, (calibration_end + 1)::timestamptz,
              (holdout_end + 1)::timestamptz,
              (holdout_end - calibration_end)::double precision / days_per_unit, time_unit;
END
$$;
COMMENT ON FUNCTION segment.clv_holdout(regclass, name, name, date, date, text) IS
    'Holdout validation: fits BG/NBD, Pareto/NBD and MBG/NBD on the orders up to calibration_end and compares, per model and number of calibration repeat purchases (0..6, 7+, total), the actual and predicted mean number of purchase days in (calibration_end, holdout_end]; reads the relation with the caller''s privileges';

CREATE FUNCTION segment.clv_holdout_errors(orders regclass, customer_column name,
                                           ordered_at_column name, calibration_end date,
                                           holdout_end date, time_unit text DEFAULT 'week')
    RETURNS TABLE (model text, customers bigint, actual_total double precision,
                   predicted_total double precision, total_error double precision,
                   bucket_mae double precision)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.model,
           max(h.customers) FILTER (WHERE h.calibration_purchases = 'total'),
           max(h.customers * h.actual_mean) FILTER (WHERE h.calibration_purchases = 'total'),
           max(h.customers * h.predicted_mean) FILTER (WHERE h.calibration_purchases = 'total'),
           max(h.predicted_mean / nullif(h.actual_mean, 0) - 1)
               FILTER (WHERE h.calibration_purchases = 'total'),
           sum(h.customers * abs(h.predicted_mean - h.actual_mean))
               FILTER (WHERE h.calibration_purchases <> 'total')
             / sum(h.customers) FILTER (WHERE h.calibration_purchases <> 'total')
      FROM segment.clv_holdout(orders, customer_column, ordered_at_column, calibration_end,
                               holdout_end, time_unit) AS h
     GROUP BY h.model
     ORDER BY h.model
$$;
COMMENT ON FUNCTION segment.clv_holdout_errors(regclass, name, name, date, date, text) IS
    'Error figures of clv_holdout per model: customers, actual and predicted total holdout purchases, total_error = predicted / actual - 1, and bucket_mae = the mean absolute error of the per-bucket means weighted by customers';
