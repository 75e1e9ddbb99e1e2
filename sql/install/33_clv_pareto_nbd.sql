-- Pareto/NBD: maximum-likelihood fit over the customers' (x, t_x, T) and the
-- predictions of a fitted model (src/clv_pareto_nbd.c).

CREATE TYPE segment.pareto_nbd_model AS (
    r              double precision,
    alpha          double precision,
    s              double precision,
    beta           double precision,
    log_likelihood double precision,
    iterations     integer,
    converged      boolean,
    customers      bigint
);
COMMENT ON TYPE segment.pareto_nbd_model IS
    'A fitted Pareto/NBD model: parameters r, alpha (gamma-distributed purchase rate), s, beta (gamma-distributed dropout rate), the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of customers';

CREATE FUNCTION segment_internal.pareto_nbd_fit_trans(double precision[], double precision,
                                             double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.pareto_nbd_fit_trans(double precision[], double precision,
                                                 double precision, double precision) IS
    'Transition function of the pareto_nbd_fit aggregate';

CREATE FUNCTION segment_internal.pareto_nbd_fit_final(double precision[]) RETURNS segment.pareto_nbd_model
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.pareto_nbd_fit_final(double precision[]) IS
    'Final function of the pareto_nbd_fit aggregate: the maximum-likelihood fit';

CREATE AGGREGATE segment.pareto_nbd_fit(x double precision, t_x double precision,
                                        t_cal double precision) (
    SFUNC = segment_internal.pareto_nbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.pareto_nbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.pareto_nbd_fit(double precision, double precision, double precision) IS
    'Maximum-likelihood Pareto/NBD fit over one row per customer: x repeat purchases, t_x time of the last purchase and t_cal age, both since the first purchase (rows with a NULL are skipped)';

CREATE FUNCTION segment.pareto_nbd_p_alive(model segment.pareto_nbd_model, x double precision,
                                           t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.pareto_nbd_p_alive(segment.pareto_nbd_model, double precision,
                                               double precision, double precision) IS
    'Pareto/NBD probability that a customer with history (x, t_x, t_cal) is still active';

CREATE FUNCTION segment.pareto_nbd_expected_purchases(model segment.pareto_nbd_model,
                                                      t double precision, x double precision,
                                                      t_x double precision,
                                                      t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_expected_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.pareto_nbd_expected_purchases(segment.pareto_nbd_model,
                                                          double precision, double precision,
                                                          double precision, double precision) IS
    'Pareto/NBD expected number of purchases in the next t time units of a customer with history (x, t_x, t_cal)';

CREATE FUNCTION segment.pareto_nbd_log_likelihood(model segment.pareto_nbd_model,
                                                  x double precision, t_x double precision,
                                                  t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_log_likelihood'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.pareto_nbd_log_likelihood(segment.pareto_nbd_model, double precision,
                                                      double precision, double precision) IS
    'Pareto/NBD log-likelihood of one customer''s history (x, t_x, t_cal); its sum over customers is what pareto_nbd_fit maximises';

CREATE FUNCTION segment.pareto_nbd_probability_of_purchases(model segment.pareto_nbd_model,
                                                            t double precision, n double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_probability_of_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.pareto_nbd_probability_of_purchases(segment.pareto_nbd_model, double precision,
                                                                double precision) IS
    'Pareto/NBD probability P(X(t) = n) that a newly acquired customer makes exactly n purchases in t time units (Fader and Hardie, "Deriving an expression for P(X(t) = x) under the Pareto/NBD model"); n at most 100000';
