-- clv_summary reads amounts and calendar days by short ways (the digits of
-- a numeric; the UTC offset of a span between daylight-saving changes):
-- they must give exactly what amount::float8 and the timestamp's ::date do.
SET extra_float_digits = 0;

-- Amounts of every shape: cents, many decimals, large, tiny, whole, beyond
-- the short way (more than 16 digits, exponents beyond 10^+-22).  For one
-- repeat purchase the mean value is its amount.
SELECT setseed(0.1);
CREATE TEMP TABLE amounts AS
SELECT i, (CASE i % 8
    WHEN 0 THEN round((random() * 1000)::numeric, 2)
    WHEN 1 THEN round((random() * 1e6)::numeric, 4)
    WHEN 2 THEN round((random() * 1e12)::numeric, 3)
    WHEN 3 THEN round((random() * 1e-3)::numeric, 12)
    WHEN 4 THEN floor(random() * 1e15)::numeric
    WHEN 5 THEN floor(random() * 1e6)::numeric * 1e20
    WHEN 6 THEN round(random()::numeric, 20)
    ELSE (random() * 10 ^ (random() * 40 - 20))::numeric END) AS a
  FROM generate_series(1, 20000) AS i;
INSERT INTO amounts VALUES (-1, 0), (-2, 0.000), (-3, 1e22), (-4, 1e23), (-5, 9007199254740993),
    (-6, 0.1), (-7, 123.456e-20), (-8, 9007199254740992), (-9, 99999999.99999999), (-10, 1e-30);
SELECT count(*) AS amounts, count(*) FILTER (WHERE m IS DISTINCT FROM a::float8) AS differ
  FROM (SELECT x.i, x.a,
               (SELECT (segment.clv_summary(o.t, o.v, '2025-01-03')).mean_value
                  FROM (VALUES ('2025-01-01'::timestamptz, 0::numeric), ('2025-01-02', x.a)) AS o(t, v)) AS m
          FROM amounts AS x) AS y;

-- Days in zones with daylight saving, half-hour and 45-minute offsets, over
-- 40 years, and on either side of two changes in Paris.
CREATE TEMP TABLE stamps AS
SELECT i, timestamptz '2000-01-01 00:00:01+00' + random() * interval '40 years' AS t
  FROM generate_series(1, 5000) AS i
UNION ALL
SELECT 100000 + i, timestamptz '2024-03-31 00:59:59.5+00' + i * interval '0.25 second'
  FROM generate_series(0, 20) AS i
UNION ALL
SELECT 200000 + i, timestamptz '2024-10-27 00:59:58+00' + i * interval '0.5 second'
  FROM generate_series(0, 10) AS i;
CREATE FUNCTION pg_temp.days_differ(zone text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SET LOCAL TimeZone = %L', zone);
    SELECT count(*) FILTER (WHERE x.t_x IS DISTINCT FROM (s.t::date - (timestamptz '1999-12-31 12:00+00')::date))
      INTO n
      FROM (SELECT s.i, (segment.clv_summary(o.t, 1, '2100-01-01')).t_x
              FROM stamps AS s, LATERAL (VALUES (timestamptz '1999-12-31 12:00+00'), (s.t)) AS o(t)
             GROUP BY s.i) AS x
      JOIN stamps AS s USING (i);
    RETURN n;
END
$$;
BEGIN;
SELECT z AS zone, pg_temp.days_differ(z) AS differ
  FROM unnest(ARRAY['UTC', 'Europe/Paris', 'America/New_York', 'America/St_Johns', 'Asia/Kolkata',
                    'Australia/Lord_Howe', 'Pacific/Chatham']) AS z;
COMMIT;

-- The mean value is the repeat periods' amounts summed exactly and rounded
-- once to the nearest double (ties to even), whatever their order: sums of
-- doubles from 5e-324 to 1e308 (wider than 128 bits), ten times 0.1 (not 1
-- when summed in floats), two largest doubles (infinity); the expected sums
-- were computed with exact fractions.  Each set is summed as given and
-- reversed, one repeat period holding every amount.
CREATE TEMP TABLE sums (n int, amounts text, expected float8);
INSERT INTO sums VALUES
    (1, '{1.1355139161483092e+214,9.821201733563731e-30,7.468064825777835e-187,2.3075117594119243e-15,3.1070669433967804e-189,5.333221433123287e-216,9.112487586101374e+233,1.1595855933546543e+57,2.4819323838383044e-29}', '9.112487586101374e+233'),
    (2, '{11551612053352.158,1.6849505869622217e-20,8491.635108681614,8.765449849266768e-08}', '11551612061843.793'),
    (3, '{3.0,0.1,0.2,1.0,5e-324}', '4.3'),
    (4, '{6.802571e-317,8.597170323746279e-306,3.4796457882493e-310}', '8.59751828839313e-306'),
    (5, '{40780103.00905105,2.2849214762293006e+36,5.187915152214304e-237,3.6278750633407187e-261,1.4659756905744666e+109,3.5866607231177554e+255,9.922364874382521e-77}', '3.5866607231177554e+255'),
    (6, '{187.37143075386035,1968365.2277594826,9.459690671645396e-09,3.823273723971031e-06,2.2335145716715156e-15,1.939232188951373e-20,0.13814286027304554,2.34019684675004e-13}', '1968552.7373369294'),
    (7, '{2.2250738585072014e-308,1e+16,1e+16,1e-320,1e+16}', '3e+16'),
    (8, '{1.0064e-320,3.626915834880379e-306,5.513412363746757e-306,1.26634e-319,1.0677390554263e-311,2.4703e-320,6.14530544e-315,1.3681919659e-313}', '9.140339018982354e-306'),
    (9, '{1.430125582011325e-256,1.8708332264826426e+81,2.487189027288731e-81,1.3382890853731827e-224,1.528889358653292e+199,6.179017550582913e-70}', '1.528889358653292e+199'),
    (10, '{4.244548676875133e-12,632827002.363904,22858.816629802543,16688448.523027431}', '649538309.7035612'),
    (11, '{1.0,1e-320,1e+16,5e-324,1e-320,1e-320,5e-324,3.0}', '1.0000000000000004e+16'),
    (12, '{8.831028008569e-311,5.830011202760706e-309,1.50354393e-316,1.12050083665753e-310,1.83393e-318,3.4173893477549574e-308}', '4.0204265196250046e-308'),
    (13, '{7.304748751434926e+249,1.7966399359070194e-291,7.134725173822562e-34}', '7.304748751434926e+249'),
    (14, '{8.847975178892498e-11,4.4432611999901947e+18}', '4.4432611999901947e+18'),
    (15, '{0.3,2.2250738585072014e-308,1.0}', '1.3'),
    (16, '{1.5340669617413e-310,7.4464e-319,6.5e-322,2.97641204809883e-310,2.0064e-320,1.089228358e-313,4.43799056e-316}', '4.5115726838423e-310'),
    (17, '{3.418191580355671e+26,9.660497121800954e+239,1.2075106368096673e+122}', '9.660497121800954e+239'),
    (18, '{8957279.757379899,629065791764638.4,174411670824.78452,705.5836905023081,1.2279867916071068e-05,13185.764513020942,30224.411958327302}', '629240212436858.6'),
    (19, '{1e+16,0.3,1e+16,1.0,1.0,1.0}', '2.0000000000000004e+16'),
    (20, '{2.70946377784e-313,6.4224e-320,5.117519542284147e-308}', '5.117546636928348e-308'),
    (21, '{2.5034125973346335e+68,2.8982710609651564e-147,4.7091218817169807e-122}', '2.5034125973346335e+68'),
    (22, '{7336890970.808446,5.5814700430273736e+16,2.2743051688787823e-11,4.2772703702145246e-11,892805869293.5763}', '5.5815600573034e+16'),
    (23, '{0.1,1e+16,0.1,0.3,0.1}', '1e+16'),
    (24, '{2.45510256e-316,3.637e-320,3.2547869382628205e-307,4.048e-319}', '3.2547869407223346e-307'),
    (25, '{1.7976931348623157e+308,1.7976931348623157e+308}', 'Infinity'),
    (26, '{0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1}', '1.0');
SELECT count(*) AS sums,
       count(*) FILTER (WHERE m IS DISTINCT FROM expected OR r IS DISTINCT FROM expected) AS differ
  FROM (SELECT s.n, s.expected,
               (SELECT (segment.clv_summary(o.t, o.v, '2025-01-03' ORDER BY o.i)).mean_value
                  FROM (SELECT 0, '2025-01-01'::timestamptz, 0::numeric
                        UNION ALL
                        SELECT i, '2025-01-02', a::numeric FROM unnest(s.amounts::text[]) WITH ORDINALITY AS u(a, i))
                       AS o(i, t, v)) AS m,
               (SELECT (segment.clv_summary(o.t, o.v, '2025-01-03' ORDER BY o.i DESC)).mean_value
                  FROM (SELECT 0, '2025-01-01'::timestamptz, 0::numeric
                        UNION ALL
                        SELECT i, '2025-01-02', a::numeric FROM unnest(s.amounts::text[]) WITH ORDINALITY AS u(a, i))
                       AS o(i, t, v)) AS r
          FROM sums AS s) AS x;
