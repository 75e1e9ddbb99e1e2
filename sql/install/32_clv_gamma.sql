-- Gamma-Gamma spend model and lifetime value (src/clv_gamma.c, src/clv_value.c).

CREATE TYPE segment.gamma_gamma_model AS (
    p              double precision,
    q              double precision,
    v              double precision,
    log_likelihood double precision,
    iterations     integer,
    converged      boolean,
    customers      bigint
);
COMMENT ON TYPE segment.gamma_gamma_model IS
    'A fitted Gamma-Gamma spend model: parameters p, q, v, the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of repeat customers it was fitted on';

CREATE FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                              double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_gg_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                                  double precision) IS
    'Transition function of the gamma_gamma_fit aggregate';

CREATE FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                              double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_gg_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                                  double precision, double precision) IS
    'Transition function of the gamma_gamma_fit aggregate with an L2 penalizer';

CREATE FUNCTION segment_internal.gamma_gamma_fit_final(double precision[])
    RETURNS segment.gamma_gamma_model
    AS 'MODULE_PATHNAME', 'segment_gg_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.gamma_gamma_fit_final(double precision[]) IS
    'Final function of the gamma_gamma_fit aggregate: the maximum-likelihood fit';

CREATE AGGREGATE segment.gamma_gamma_fit(x double precision, mean_value double precision) (
    SFUNC = segment_internal.gamma_gamma_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.gamma_gamma_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.gamma_gamma_fit(double precision, double precision) IS
    'Maximum-likelihood Gamma-Gamma fit over one row per customer: x repeat purchases and their mean value; one-time buyers (x = 0) and rows with a NULL are skipped';

CREATE AGGREGATE segment.gamma_gamma_fit(x double precision, mean_value double precision,
                                         penalizer double precision) (
    SFUNC = segment_internal.gamma_gamma_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.gamma_gamma_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.gamma_gamma_fit(double precision, double precision,
                                             double precision) IS
    'Gamma-Gamma fit with an L2 penalty penalizer * (p^2 + q^2 + v^2) on the mean log-likelihood, as lifetimes'' penalizer_coef';

CREATE FUNCTION segment.gamma_gamma_expected_value(model segment.gamma_gamma_model,
                                                   x double precision,
                                                   mean_value double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_gg_expected_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.gamma_gamma_expected_value(segment.gamma_gamma_model,
                                                       double precision, double precision) IS
    'Gamma-Gamma expected mean purchase value of a customer with x repeat purchases of mean value mean_value: p (v + x mean_value) / (p x + q - 1); needs q > 1';

CREATE FUNCTION segment.clv(bgnbd segment.bgnbd_model, gamma_gamma segment.gamma_gamma_model,
                            x double precision, t_x double precision, t_cal double precision,
                            mean_value double precision,
                            months integer DEFAULT 12,
                            monthly_discount_rate double precision DEFAULT 0.01,
                            time_unit text DEFAULT 'day')
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_clv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.clv(segment.bgnbd_model, segment.gamma_gamma_model,
                                double precision, double precision, double precision,
                                double precision, integer, double precision, text) IS
    'Customer lifetime value over the next months: expected purchases per month (BG/NBD) times expected value (Gamma-Gamma), discounted monthly, as lifetimes'' customer_lifetime_value; time_unit (day, week or month) is the unit of x, t_x, t_cal';

CREATE FUNCTION segment.gamma_gamma_log_likelihood(model segment.gamma_gamma_model,
                                                   x double precision,
                                                   mean_value double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_gg_log_likelihood' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.gamma_gamma_log_likelihood(segment.gamma_gamma_model,
                                                       double precision, double precision) IS
    'Gamma-Gamma log-likelihood of one repeat customer (x >= 1, mean_value > 0); its sum is what gamma_gamma_fit maximises';
