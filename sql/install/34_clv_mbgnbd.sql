-- MBG/NBD (modified BG/NBD: a customer may also drop out right after the
-- first purchase): fit and predictions (src/clv_mbgnbd.c, src/clv_bgnbd.c),
-- and P(X(t) = n) for BG/NBD and MBG/NBD (src/clv_probability.c).

CREATE TYPE segment.mbgnbd_model AS (
    r              double precision,
    alpha          double precision,
    a              double precision,
    b              double precision,
    log_likelihood double precision,
    iterations     integer,
    converged      boolean,
    customers      bigint
);
COMMENT ON TYPE segment.mbgnbd_model IS
    'A fitted MBG/NBD model: parameters r, alpha (purchase rate), a, b (dropout, also possible at the first purchase), the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of customers';

CREATE FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision, double precision,
                                         double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision,
                                             double precision, double precision) IS
    'Transition function of the mbgnbd_fit aggregate';

CREATE FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision, double precision,
                                         double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision,
                                             double precision, double precision,
                                             double precision) IS
    'Transition function of the mbgnbd_fit aggregate with an L2 penalizer';

CREATE FUNCTION segment_internal.mbgnbd_fit_final(double precision[]) RETURNS segment.mbgnbd_model
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.mbgnbd_fit_final(double precision[]) IS
    'Final function of the mbgnbd_fit aggregate: the maximum-likelihood fit';

CREATE AGGREGATE segment.mbgnbd_fit(x double precision, t_x double precision,
                                    t_cal double precision) (
    SFUNC = segment_internal.mbgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.mbgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.mbgnbd_fit(double precision, double precision, double precision) IS
    'Maximum-likelihood MBG/NBD fit over one row per customer: x repeat purchases, t_x time of the last purchase and t_cal age, both since the first purchase (rows with a NULL are skipped)';

CREATE AGGREGATE segment.mbgnbd_fit(x double precision, t_x double precision,
                                    t_cal double precision, penalizer double precision) (
    SFUNC = segment_internal.mbgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.mbgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.mbgnbd_fit(double precision, double precision, double precision,
                                        double precision) IS
    'MBG/NBD fit with an L2 penalty penalizer * (r^2 + alpha^2 + a^2 + b^2) on the mean log-likelihood, time measured in units of the longest T while fitting, as bgnbd_fit''s';

CREATE FUNCTION segment.mbgnbd_p_alive(model segment.mbgnbd_model, x double precision,
                                       t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.mbgnbd_p_alive(segment.mbgnbd_model, double precision,
                                           double precision, double precision) IS
    'MBG/NBD probability that a customer with history (x, t_x, t_cal) is still active (below 1 also when x = 0)';

CREATE FUNCTION segment.mbgnbd_expected_purchases(model segment.mbgnbd_model, t double precision,
                                                  x double precision, t_x double precision,
                                                  t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_expected_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.mbgnbd_expected_purchases(segment.mbgnbd_model, double precision,
                                                      double precision, double precision,
                                                      double precision) IS
    'MBG/NBD expected number of purchases in the next t time units of a customer with history (x, t_x, t_cal)';

CREATE FUNCTION segment.mbgnbd_log_likelihood(model segment.mbgnbd_model, x double precision,
                                              t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_log_likelihood'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.mbgnbd_log_likelihood(segment.mbgnbd_model, double precision,
                                                  double precision, double precision) IS
    'MBG/NBD log-likelihood of one customer''s history (x, t_x, t_cal); its sum over customers is what mbgnbd_fit maximises';

CREATE FUNCTION segment.bgnbd_probability_of_purchases(model segment.bgnbd_model,
                                                       t double precision, n double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_probability_of_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.bgnbd_probability_of_purchases(segment.bgnbd_model, double precision,
                                                           double precision) IS
    'BG/NBD probability P(X(t) = n) that a newly acquired customer makes exactly n repeat purchases in t time units (Fader, Hardie and Lee 2005, eq. 8)';

CREATE FUNCTION segment.mbgnbd_probability_of_purchases(model segment.mbgnbd_model,
                                                        t double precision, n double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_probability_of_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.mbgnbd_probability_of_purchases(segment.mbgnbd_model, double precision,
                                                            double precision) IS
    'MBG/NBD probability P(X(t) = n) that a newly acquired customer makes exactly n repeat purchases in t time units';
