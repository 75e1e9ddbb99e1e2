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
