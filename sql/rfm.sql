-- The per-customer rfm(ordered_at, amount) aggregate.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE rfm_orders (customer_id int, ordered_at timestamptz, amount numeric);
INSERT INTO rfm_orders VALUES
    (1, '2024-01-01 10:00', 10.00),
    (1, '2024-01-01 18:00', 5.50),     -- same day: one purchase day, two orders
    (1, '2024-01-31 10:00', 20.00),
    (1, '2024-03-01 10:00', 4.50),
    (2, '2024-03-01 00:00', 100),
    (3, NULL, 3),                       -- skipped: no timestamp
    (3, '2024-01-05', NULL),            -- skipped: no amount
    (4, '2024-02-01', 50),
    (4, '2024-02-10', -20);             -- a refund is summed as it is

SELECT customer_id, (r).*
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r
          FROM rfm_orders GROUP BY customer_id) AS s
 ORDER BY customer_id;

-- The figures agree with plain SQL.
SELECT count(*) AS mismatches
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r,
               min(ordered_at) AS first_order, max(ordered_at) AS last_order,
               count(*) AS orders, count(DISTINCT ordered_at::date) AS days,
               sum(amount) AS monetary, avg(amount) AS mean_amount
          FROM rfm_orders
         WHERE ordered_at IS NOT NULL AND amount IS NOT NULL
         GROUP BY customer_id) AS s
 WHERE (r).first_order <> first_order OR (r).last_order <> last_order
    OR (r).orders <> orders OR (r).purchase_days <> days
    OR (r).monetary <> monetary OR (r).mean_amount <> mean_amount;

-- Purchase days are calendar days in the session's time zone.
SET timezone = 'America/New_York';
SELECT (segment.rfm(t, 1)).purchase_days
  FROM (VALUES (timestamptz '2024-01-01 23:00+00'), ('2024-01-02 01:00+00')) AS v(t);
SET timezone = 'UTC';
SELECT (segment.rfm(t, 1)).purchase_days
  FROM (VALUES (timestamptz '2024-01-01 23:00+00'), ('2024-01-02 01:00+00')) AS v(t);

-- date and timestamp columns and integer amounts are cast implicitly.
SELECT (segment.rfm(d, i)).* FROM (VALUES (date '2024-01-01', 3), ('2024-01-11', 4)) AS v(d, i);

-- No rows, or only NULLs: NULL.
SELECT segment.rfm(ordered_at, amount) IS NULL AS is_null FROM rfm_orders WHERE false;
SELECT segment.rfm(ordered_at, amount) IS NULL AS is_null FROM rfm_orders WHERE customer_id = 3;

-- A customer with many orders on many days (the days array grows past its inline room).
SELECT (r).orders, (r).purchase_days, (r).mean_gap_days, (r).monetary
  FROM (SELECT segment.rfm(timestamptz '2024-01-01' + (i % 100) * interval '1 day', i) AS r
          FROM generate_series(1, 1000) AS i) AS s;

-- As window aggregates (the final functions leave the state unchanged, so a
-- running frame can call them row after row).
SELECT i, (segment.rfm(t, a) OVER w).orders, (segment.rfm(t, a) OVER w).purchase_days,
       (segment.rfm(t, a) OVER w).monetary, segment.breaks(a::float8, 2) OVER w AS median
  FROM (SELECT i, timestamptz '2024-01-01' + (i / 2) * interval '1 day' AS t, i::numeric AS a
          FROM generate_series(1, 6) AS i) AS s
WINDOW w AS (ORDER BY i ROWS BETWEEN 2 PRECEDING AND CURRENT ROW);

-- Money is summed exactly, with the display scale sum(numeric) gives: mixed
-- scales, a zero sum, and sums beyond the 128-bit integer path (which then
-- goes on as a numeric).
CREATE TABLE rfm_money (customer_id int, amount numeric);
INSERT INTO rfm_money VALUES
    (1, 10), (1, 0.5), (1, 2.125),
    (2, -3.30), (2, 3.30),
    (3, 1e30), (3, 1e30), (3, 0.000000001),
    (4, 99999999999999999999999999999999999999), (4, 1),
    (5, 0.0000000000000000000000000000000000000001), (5, 1),
    (6, -99999999999999999999.99), (6, -99999999999999999999.99), (6, 0.01);
SELECT customer_id, (r).monetary, (r).mean_amount,
       (r).monetary::text = sum::text AS same_as_sum,
       (r).mean_amount::text = avg::text AS same_as_avg
  FROM (SELECT customer_id, segment.rfm(timestamptz '2024-01-01', amount) AS r,
               sum(amount), avg(amount)
          FROM rfm_money GROUP BY customer_id) AS s
 ORDER BY customer_id;

-- Purchase days are ordered_at::date, in zones with daylight saving time,
-- odd offsets, a skipped day and historic changes, 1850 to 2100: each pair
-- of orders is one purchase day exactly when the cast gives one date.
CREATE TABLE rfm_pairs AS
SELECT i, t, t + ((i * 7907) % 2880) * interval '1 minute' AS u
  FROM (SELECT i, timestamptz '1850-01-01 00:00+00'
                  + ((i::bigint * 104729) % (250 * 366 * 24)) * interval '1 hour'
                  + ((i * 7919) % 3600) * interval '1 second' AS t
          FROM generate_series(1, 20000) AS i) AS s;
CREATE FUNCTION pg_temp.day_mismatches(zone text) RETURNS bigint
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM set_config('timezone', zone, true);
    RETURN (SELECT count(*)
              FROM (SELECT p.i, (segment.rfm(x.at, 1)).purchase_days AS days
                      FROM rfm_pairs AS p, LATERAL (VALUES (p.t), (p.u)) AS x(at)
                     GROUP BY p.i) AS r
              JOIN rfm_pairs AS p USING (i)
             WHERE r.days <> CASE WHEN p.t::date = p.u::date THEN 1 ELSE 2 END);
END
$$;
SELECT zone, pg_temp.day_mismatches(zone) AS mismatches
  FROM unnest(ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Europe/Dublin',
                    'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Apia',
                    'America/St_Johns', 'Africa/Casablanca', '<+0330>-03:30']) AS zone;
SET timezone = 'UTC';

-- With the time zone given explicitly, purchase days are those of that zone
-- whatever the session's (postgres_fdw runs remote sessions in UTC).
CREATE FUNCTION pg_temp.zone_mismatches(zone text) RETURNS bigint
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM set_config('timezone', zone, true);
    RETURN (SELECT count(*)
              FROM (SELECT p.i, (segment.rfm(x.at, 1)).purchase_days AS days
                      FROM rfm_pairs AS p, LATERAL (VALUES (p.t), (p.u)) AS x(at)
                     GROUP BY p.i) AS a
              JOIN (SELECT p.i, (segment.rfm(x.at, 1, zone::segment.time_zone)).purchase_days AS days
                      FROM rfm_pairs AS p, LATERAL (VALUES (p.t), (p.u)) AS x(at)
                     GROUP BY p.i) AS b USING (i)
             WHERE a.days <> b.days);
END
$$;
SET timezone = 'UTC';
SELECT zone, pg_temp.zone_mismatches(zone) AS mismatches
  FROM unnest(ARRAY['Pacific/Auckland', 'America/New_York', '<+0330>-03:30']) AS zone;
SET timezone = 'UTC';
SELECT (segment.rfm(t, 1, 'Pacific/Auckland')).purchase_days AS auckland_days,
       (segment.rfm(t, 1)).purchase_days AS utc_days
  FROM (VALUES (timestamptz '2024-06-01 11:00+00'), (timestamptz '2024-06-01 13:00+00')) AS v(t);
SELECT segment.rfm(now(), 1, 'Mars/Olympus_Mons');
SELECT segment.rfm(now(), 1, NULL);
SELECT segment.rfm(now(), 1, current_setting('TimeZone'));
SELECT (segment.rfm(now(), 1, current_setting('TimeZone')::segment.time_zone)).orders AS cast_from_text;
SELECT ''::segment.time_zone;
SELECT segment.rfm(NULL, 1, NULL) IS NULL AS skipped_first;

-- Bad input.
SELECT segment.rfm(t, 1) FROM (VALUES (timestamptz 'infinity')) AS v(t);
SELECT segment.rfm(t, 1) FROM (VALUES (timestamptz '-infinity')) AS v(t);
SELECT segment.rfm(now(), a) FROM (VALUES (numeric 'NaN')) AS v(a);
SELECT segment.rfm(now(), a) FROM (VALUES (numeric 'Infinity')) AS v(a);
SELECT segment.rfm(now(), 'abc');
