-- BG/NBD: maximum-likelihood fit over the customers' (x, t_x, T) and the
-- predictions of a fitted model (src/clv_bgnbd.c, src/clv_optim.c,
-- src/clv_hyp2f1.c).

CREATE TYPE segment.bgnbd_model AS (
    r              double precision,
    alpha          double precision,
    a              double precision,
    b              double precision,
    log_likelihood double precision,
    iterations     integer,
    converged      boolean,
    customers      bigint
);
COMMENT ON TYPE segment.bgnbd_model IS
    'A fitted BG/NBD model: parameters r, alpha (purchase rate), a, b (dropout), the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of customers';

CREATE FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision, double precision,
                                        double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision,
                                            double precision, double precision) IS
    'Transition function of the bgnbd_fit aggregate';

CREATE FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision, double precision,
                                        double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision,
                                            double precision, double precision,
                                            double precision) IS
    'Transition function of the bgnbd_fit aggregate with an L2 penalizer';

CREATE FUNCTION segment_internal.clv_fit_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.clv_fit_combine(double precision[], double precision[]) IS
    'Combine function of the bgnbd_fit and gamma_gamma_fit aggregates';

CREATE FUNCTION segment_internal.bgnbd_fit_final(double precision[]) RETURNS segment.bgnbd_model
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.bgnbd_fit_final(double precision[]) IS
    'Final function of the bgnbd_fit aggregate: the maximum-likelihood fit';

CREATE AGGREGATE segment.bgnbd_fit(x double precision, t_x double precision,
                                   t_cal double precision) (
    SFUNC = segment_internal.bgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.bgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.bgnbd_fit(double precision, double precision, double precision) IS
    'Maximum-likelihood BG/NBD fit over one row per customer: x repeat purchases, t_x time of the last purchase and t_cal age, both since the first purchase (rows with a NULL are skipped)';

CREATE AGGREGATE segment.bgnbd_fit(x double precision, t_x double precision,
                                   t_cal double precision, penalizer double precision) (
    SFUNC = segment_internal.bgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.bgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.bgnbd_fit(double precision, double precision, double precision,
                                       double precision) IS
    'BG/NBD fit with an L2 penalty penalizer * (r^2 + alpha^2 + a^2 + b^2) on the mean log-likelihood, time measured in units of the longest T while fitting, as lifetimes'' penalizer_coef (alpha is returned in the caller''s unit)';

CREATE FUNCTION segment.bgnbd_p_alive(model segment.bgnbd_model, x double precision,
                                      t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.bgnbd_p_alive(segment.bgnbd_model, double precision,
                                          double precision, double precision) IS
    'BG/NBD probability that a customer with history (x, t_x, t_cal) is still active (1 when x = 0)';

CREATE FUNCTION segment.bgnbd_expected_purchases(model segment.bgnbd_model, t double precision,
                                                 x double precision, t_x double precision,
                                                 t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_expected_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.bgnbd_expected_purchases(segment.bgnbd_model, double precision,
                                                     double precision, double precision,
                                                     double precision) IS
    'BG/NBD expected number of purchases in the next t time units of a customer with history (x, t_x, t_cal)';

CREATE FUNCTION segment.bgnbd_expected_purchases_new(model segment.bgnbd_model,
                                                     t double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_expected_purchases_new'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.bgnbd_expected_purchases_new(segment.bgnbd_model, double precision) IS
    'BG/NBD expected number of repeat purchases in the first t time units of a newly acquired customer';

CREATE FUNCTION segment.bgnbd_log_likelihood(model segment.bgnbd_model, x double precision,
                                             t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_log_likelihood' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.bgnbd_log_likelihood(segment.bgnbd_model, double precision,
                                                 double precision, double precision) IS
    'BG/NBD log-likelihood of one customer''s history (x, t_x, t_cal); its sum over customers is what bgnbd_fit maximises';
