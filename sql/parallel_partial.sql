-- Which aggregates can be split into partial states, for parallel workers
-- and for Citus.
--
-- Citus (citusdata/citus, planner/multi_logical_optimizer.c,
-- AggregateEnabledCustom) pushes a custom aggregate down to the shards
-- partially only when it has a combine function, its transition type is not
-- a pseudo-type (internal), and the call has no ORDER BY; otherwise it pulls
-- every row to the coordinator.  The shards then run
-- worker_partial_agg(agg, args...), which applies the transition function
-- and returns the state through the state type's output function; the
-- coordinator runs coord_combine_agg, which reads each state with the type's
-- input function, merges them with the combine function and applies the
-- final function (utils/aggregate_utils.c).  Part 2 does exactly that with
-- plain SQL aggregates, on data split into two "shards", for every
-- aggregate that runs across customers.

-- 1. The catalog.
-- Every aggregate that runs across customers keeps its state in a concrete
-- type with a combine function: Citus's rule, aggregate by aggregate.
SELECT a.aggfnoid::regprocedure AS aggregate, a.aggtranstype::regtype AS state,
       a.aggcombinefn::regproc AS combine, a.aggfinalfn <> 0 AS has_final,
       a.aggcombinefn <> 0 AND t.typtype <> 'p' AS citus_partial_pushdown
  FROM pg_aggregate AS a
  JOIN pg_type AS t ON t.oid = a.aggtranstype
 WHERE a.aggfnoid IN ('segment.breaks(float8)'::regprocedure,
                      'segment.breaks(float8, integer)'::regprocedure,
                      'segment.kmeans_step(float8[], segment.kmeans_model)'::regprocedure,
                      'segment.kmeans_moments(float8[], segment.kmeans_model)'::regprocedure,
                      'segment.bgnbd_fit(float8, float8, float8)'::regprocedure,
                      'segment.bgnbd_fit(float8, float8, float8, float8)'::regprocedure,
                      'segment.gamma_gamma_fit(float8, float8)'::regprocedure,
                      'segment.gamma_gamma_fit(float8, float8, float8)'::regprocedure)
 ORDER BY 1::text;

-- Rules over every aggregate of the extension; each row is a violation.
-- An internal state is allowed only where the aggregate runs per customer
-- (rfm, events, contacts, order_lines, restock, and line_stages, the
-- refresh's pass over the order lines: Citus pushes a GROUP BY on the
-- distribution column down whole).
WITH aggs AS (
    SELECT a.*, p.oid::regprocedure AS agg, p.proparallel, t.typtype, p.proname
      FROM pg_aggregate AS a
      JOIN pg_proc AS p ON p.oid = a.aggfnoid
      JOIN pg_type AS t ON t.oid = a.aggtranstype
      JOIN pg_depend AS d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_extension AS e ON e.oid = d.refobjid AND e.extname = 'segment'
)
SELECT agg, problem FROM (
    SELECT agg, 'no combine function' AS problem FROM aggs WHERE aggcombinefn = 0
    UNION ALL
    SELECT agg, 'internal state without serial/deserial functions' FROM aggs
     WHERE aggtranstype = 'internal'::regtype AND (aggserialfn = 0 OR aggdeserialfn = 0)
    UNION ALL
    SELECT agg, 'internal state in an aggregate that runs across customers' FROM aggs
     WHERE typtype = 'p' AND proname NOT IN ('rfm', 'events', 'contacts', 'order_lines',
                                          'restock', 'line_stages')
    UNION ALL
    SELECT agg, 'not parallel safe' FROM aggs WHERE proparallel <> 's'
    UNION ALL
    SELECT aggs.agg, 'support function ' || f.oid::regprocedure || ' not parallel safe'
      FROM aggs
      JOIN pg_proc AS f ON f.oid IN (aggs.aggtransfn, aggs.aggfinalfn, aggs.aggcombinefn,
                                     aggs.aggserialfn, aggs.aggdeserialfn)
     WHERE f.proparallel <> 's'
) AS v
ORDER BY 1::text, 2;
SELECT count(*) > 10 AS aggregates_checked
  FROM pg_depend AS d
  JOIN pg_proc AS p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND p.prokind = 'a'
  JOIN pg_extension AS e ON e.oid = d.refobjid AND e.extname = 'segment' AND d.deptype = 'e';

-- 2. Citus's two-phase execution, emulated: "worker" aggregates (the
-- transition function, no final function) on two halves of the customers,
-- states shipped as text, a "coordinator" aggregate (the combine function as
-- transition function, then the final function) over them; the results
-- equal the aggregate over all rows.
SET timezone = 'UTC';
-- 4,000 customers with a personal pace, chance of leaving after each order
-- and basket (seeded), as in sql/clv_example.sql.
SELECT setseed(0.375);
CREATE TABLE pp_people AS
SELECT id AS customer_id, timestamptz '2023-01-01' + random() * interval '400 days' AS first_order,
       4 + 90 * random() ^ 2 AS pace_days, 0.05 + 0.5 * random() AS churn,
       15 + 150 * random() ^ 3 AS basket
  FROM generate_series(1, 4000) AS id;
CREATE TABLE pp_orders AS
WITH RECURSIVE o(customer_id, ordered_at, pace_days, churn, basket, alive) AS (
    SELECT customer_id, first_order, pace_days, churn, basket, true FROM pp_people
  UNION ALL
    SELECT customer_id, ordered_at - ln(1 - random()) * pace_days * interval '1 day',
           pace_days, churn, basket, random() >= churn
      FROM o WHERE alive AND ordered_at < timestamptz '2024-09-01'
)
SELECT customer_id, ordered_at, round((basket * (0.5 + random()))::numeric, 2) AS amount
  FROM o WHERE ordered_at < timestamptz '2024-09-01';
CREATE TABLE pp_customers AS
SELECT customer_id, customer_id % 2 AS shard, s,
       ARRAY[(date '2024-09-01' - (r).last_order::date)::float8, ln(1 + (r).orders),
             ln(1 + (r).monetary::float8)] AS f
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r,
               segment.clv_summary(ordered_at, amount, '2024-09-01') AS s
          FROM pp_orders GROUP BY customer_id) AS q;
CREATE TABLE pp_model AS
SELECT segment.kmeans(f, 4, '{"standardize": true, "max_iter": 0,
                              "init": [[30, 1, 4], [150, 1.5, 5], [300, 2, 6], [500, 2.5, 7]]}') AS m
  FROM pp_customers;

-- worker_partial_agg: the transition function alone.
CREATE AGGREGATE pp_worker_breaks(float8, integer) (SFUNC = segment_internal.breaks_trans, STYPE = float8[]);
CREATE AGGREGATE pp_worker_bgnbd(float8, float8, float8) (SFUNC = segment_internal.bgnbd_fit_trans, STYPE = float8[]);
CREATE AGGREGATE pp_worker_gamma(float8, float8) (SFUNC = segment_internal.gamma_gamma_fit_trans, STYPE = float8[]);
-- kmeans_step and kmeans_moments have no final function: their result is the state.
-- coord_combine_agg: the combine function over the states, then the final function.
CREATE AGGREGATE pp_coord_breaks(float8[]) (SFUNC = segment_internal.breaks_combine, STYPE = float8[],
                                            FINALFUNC = segment_internal.breaks_final);
CREATE AGGREGATE pp_coord_bgnbd(float8[]) (SFUNC = segment_internal.clv_fit_combine, STYPE = float8[],
                                           FINALFUNC = segment_internal.bgnbd_fit_final);
CREATE AGGREGATE pp_coord_gamma(float8[]) (SFUNC = segment_internal.clv_fit_combine, STYPE = float8[],
                                           FINALFUNC = segment_internal.gamma_gamma_fit_final);
CREATE AGGREGATE pp_coord_step(float8[]) (SFUNC = segment_internal.kmeans_step_combine, STYPE = float8[]);
CREATE AGGREGATE pp_coord_moments(float8[]) (SFUNC = segment_internal.kmeans_moments_combine, STYPE = float8[]);

CREATE FUNCTION pp_close(a float8[], b float8[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT array_length(a, 1) = array_length(b, 1)
           AND (SELECT bool_and(abs(a[i] - b[i]) <= 1e-9 * greatest(abs(a[i]), abs(b[i]), 1))
                  FROM generate_series(1, array_length(a, 1)) AS i)
$$;

-- The states of each "shard"; the coordinator reads them back from their
-- text form (what a worker sends).
CREATE TABLE pp_states AS
SELECT shard,
       pp_worker_breaks(((s).t_x)::float8, 10) AS breaks,
       pp_worker_bgnbd((s).x, (s).t_x, (s).t_cal) AS bgnbd,
       pp_worker_gamma((s).x, (s).mean_value) AS gamma,
       segment.kmeans_step(f, (SELECT m FROM pp_model)) AS step,
       segment.kmeans_moments(f, (SELECT m FROM pp_model)) AS moments
  FROM pp_customers GROUP BY shard;

-- Tolerances: breaks are data values, equal exactly; the fits sort their
-- rows, so they are equal up to a relative 1e-9 (identical in practice); the
-- step and moments are float8 sums in another order (relative 1e-9).
SELECT (SELECT pp_coord_breaks(breaks::text::float8[]) FROM pp_states)
       = (SELECT segment.breaks(((s).t_x)::float8, 10) FROM pp_customers) AS breaks_equal,
       (SELECT pp_close(ARRAY[(b).r, (b).alpha, (b).a, (b).b, (b).log_likelihood, (b).customers],
                        ARRAY[(l).r, (l).alpha, (l).a, (l).b, (l).log_likelihood, (l).customers])
          FROM (SELECT pp_coord_bgnbd(bgnbd::text::float8[]) AS b FROM pp_states) AS x,
               (SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal) AS l FROM pp_customers) AS y)
       AS bgnbd_equal,
       (SELECT pp_close(ARRAY[(g).p, (g).q, (g).v, (g).log_likelihood, (g).customers],
                        ARRAY[(l).p, (l).q, (l).v, (l).log_likelihood, (l).customers])
          FROM (SELECT pp_coord_gamma(gamma::text::float8[]) AS g FROM pp_states) AS x,
               (SELECT segment.gamma_gamma_fit((s).x, (s).mean_value) AS l FROM pp_customers) AS y)
       AS gamma_gamma_equal,
       pp_close((SELECT pp_coord_step(step::text::float8[]) FROM pp_states),
                (SELECT segment.kmeans_step(f, m) FROM pp_customers, pp_model)) AS step_equal,
       pp_close((SELECT pp_coord_moments(moments::text::float8[]) FROM pp_states),
                (SELECT segment.kmeans_moments(f, m) FROM pp_customers, pp_model)) AS moments_equal;
-- the fits converged on these data, so equal fits are a real check
SELECT (bg).converged AS bgnbd_converged, (gg).converged AS gamma_gamma_converged
  FROM (SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal) AS bg,
               segment.gamma_gamma_fit((s).x, (s).mean_value) AS gg FROM pp_customers) AS q;

-- The states cross as text without loss at the default extra_float_digits
-- (1: shortest exact representation); at 0, float8 output rounds to 15
-- digits and a state would not survive the trip.
SELECT bool_and(step::text::float8[] = step AND moments::text::float8[] = moments
                AND bgnbd::text::float8[] = bgnbd AND gamma::text::float8[] = gamma
                AND breaks::text::float8[] = breaks) AS states_survive_text
  FROM pp_states;
SET extra_float_digits = 0;
SELECT bool_and(step::text::float8[] = step) AS step_survives_text_at_0_digits FROM pp_states;
RESET extra_float_digits;

DROP TABLE pp_people, pp_orders, pp_customers, pp_model, pp_states;
DROP AGGREGATE pp_worker_breaks(float8, integer), pp_worker_bgnbd(float8, float8, float8),
               pp_worker_gamma(float8, float8), pp_coord_breaks(float8[]), pp_coord_bgnbd(float8[]),
               pp_coord_gamma(float8[]), pp_coord_step(float8[]), pp_coord_moments(float8[]);
DROP FUNCTION pp_close(float8[], float8[]);
