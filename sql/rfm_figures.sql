-- rfm_figures(): the per-customer figures of rfm_scores(), by a hash table of
-- its own; they equal a GROUP BY with min, max, count and sum.
SET timezone = 'UTC';
SET extra_float_digits = 0;

CREATE TABLE fig_orders AS
SELECT (i % 3000) + 1 AS id,
       timestamptz '2024-01-01' + ((i * 7919) % 500) * interval '1 day'
           + ((i::bigint * 104729) % 86400) * interval '1 second' AS at,
       round(((i * 31337) % 90000) / 100.0 + 1, 2) AS amount
  FROM generate_series(1, 30000) AS i;
-- rows with a NULL key, time or amount are skipped
INSERT INTO fig_orders VALUES (NULL, '2024-01-01', 1), (1, NULL, 1), (1, '2024-01-01', NULL);

-- Rows of rfm_figures() that a GROUP BY does not give, and the other way
-- round (the sum compared as text too: its display scale must match).
CREATE FUNCTION pg_temp.figures_diff(rel regclass, key name, at name, amount name,
                                     as_of timestamptz DEFAULT '2025-06-01')
    RETURNS TABLE (missing bigint, extra bigint, customers bigint)
    LANGUAGE plpgsql AS
$$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH f AS (SELECT customer_id, first_order, last_order, frequency, monetary,
                          monetary::text AS monetary_text
                     FROM segment.rfm_figures(%1$L, %2$L, %3$L, %4$L, $1)),
             g AS (SELECT o.%2$I::text AS customer_id, min(o.%3$I::timestamptz),
                          max(o.%3$I::timestamptz), count(*), sum(o.%4$I::numeric),
                          sum(o.%4$I::numeric)::text
                     FROM %1$s AS o
                    WHERE o.%2$I IS NOT NULL AND o.%4$I IS NOT NULL AND o.%3$I <= $1
                    GROUP BY o.%2$I)
        SELECT (SELECT count(*) FROM (SELECT * FROM g EXCEPT ALL SELECT * FROM f) AS x),
               (SELECT count(*) FROM (SELECT * FROM f EXCEPT ALL SELECT * FROM g) AS x),
               (SELECT count(*) FROM f)$q$, rel, key, at, amount)
        USING as_of;
END
$$;

SELECT * FROM pg_temp.figures_diff('fig_orders', 'id', 'at', 'amount');
-- as_of leaves out the later orders
SELECT * FROM pg_temp.figures_diff('fig_orders', 'id', 'at', 'amount', '2024-03-01');
SELECT * FROM segment.rfm_figures('fig_orders', 'id', 'at', 'amount', '2024-01-02 03:00+00')
 ORDER BY customer_id::int;

-- Key types: integers, text-like types, numeric (1.0 and 1.00 are one
-- customer), uuid, a domain, a type without a hash function (bit), and a
-- text key under a case-insensitive collation (GROUP BY's equality).
CREATE DOMAIN fig_customer AS bigint CHECK (VALUE > 0);
CREATE COLLATION fig_nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE fig_keys AS
SELECT id::smallint AS small_id, id AS int_id, id::bigint * 1000000000 AS big_id,
       'c-' || id AS text_id, ('c-' || id)::varchar(20) AS varchar_id,
       ('c' || id)::char(8) AS char_id,
       CASE WHEN at < '2024-06-01' THEN id::numeric(10,1) ELSE id::numeric(10,2) END AS numeric_id,
       md5(id::text)::uuid AS uuid_id, id::fig_customer AS domain_id,
       id::bit(16) AS bit_id,
       (CASE WHEN at < '2024-06-01' THEN 'C-' ELSE 'c-' END || id) COLLATE fig_nocase AS nocase_id,
       at, at::timestamp AS local_at, at::date AS day, amount, amount::integer AS whole
  FROM fig_orders WHERE id IS NOT NULL;
SELECT key, (pg_temp.figures_diff('fig_keys', key, 'at', 'amount')).*
  FROM unnest(ARRAY['small_id', 'int_id', 'big_id', 'text_id', 'varchar_id', 'char_id',
                    'numeric_id', 'uuid_id', 'domain_id', 'bit_id', 'nocase_id']) AS key;
-- timestamp and date columns, integer amounts
SELECT * FROM pg_temp.figures_diff('fig_keys', 'int_id', 'local_at', 'amount');
SELECT * FROM pg_temp.figures_diff('fig_keys', 'int_id', 'day', 'whole');

-- The hash table spills to partitioned temporary files, twice over, when
-- the customers do not fit in the hash memory limit; integer and text keys.
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
CREATE TABLE fig_many AS
SELECT (i * 7919) % 40000 AS id, 'customer-' || ((i * 7919) % 40000) AS name,
       timestamptz '2024-01-01' + (i % 400) * interval '1 day' AS at,
       round((i % 9000) / 100.0, 2) AS amount
  FROM generate_series(1, 120000) AS i;
SET client_min_messages = debug1;
SELECT count(*) FROM segment.rfm_figures('fig_many', 'id', 'at', 'amount', '2025-01-01');
RESET client_min_messages;
SELECT * FROM pg_temp.figures_diff('fig_many', 'id', 'at', 'amount');
SELECT * FROM pg_temp.figures_diff('fig_many', 'name', 'at', 'amount');
RESET work_mem;
RESET hash_mem_multiplier;

-- Sums beyond the 128-bit integer path go on as numerics.
CREATE TABLE fig_big (id int, at timestamptz, amount numeric);
INSERT INTO fig_big VALUES
    (1, '2024-01-01', 1e30), (1, '2024-01-02', 1e30), (1, '2024-01-03', 0.000000001),
    (2, '2024-01-01', 99999999999999999999999999999999999999), (2, '2024-01-02', 1),
    (3, '2024-01-01', 0.0000000000000000000000000000000000000001), (3, '2024-01-02', 1),
    (4, '2024-01-01', -3.30), (4, '2024-01-02', 3.30);
SELECT customer_id, frequency, monetary
  FROM segment.rfm_figures('fig_big', 'id', 'at', 'amount', '2025-01-01')
 ORDER BY customer_id;
SELECT * FROM pg_temp.figures_diff('fig_big', 'id', 'at', 'amount');

-- Over a foreign table (a file_fdw program here; postgres_fdw shards in
-- test/sharded/), a GROUP BY with the rfm aggregate runs instead, which the
-- shards could run themselves.
CREATE EXTENSION file_fdw;
CREATE SERVER fig_files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE fig_remote (id int, at timestamptz, amount numeric)
    SERVER fig_files
    OPTIONS (program 'printf "1,2024-01-01 10:00+00,10.00\n1,2024-01-02 10:00+00,5.5\n2,2024-01-03 10:00+00,7\n"',
             format 'csv');
SET client_min_messages = debug1;
SELECT * FROM segment.rfm_figures('fig_remote', 'id', 'at', 'amount', '2025-01-01')
 ORDER BY customer_id;
SELECT count(*) FROM segment.rfm_figures('fig_keys', 'bit_id', 'at', 'amount', '2025-01-01');
SELECT count(*) FROM segment.rfm_figures('fig_keys', 'int_id', 'at', 'amount', '2025-01-01');
RESET client_min_messages;
SELECT * FROM pg_temp.figures_diff('fig_remote', 'id', 'at', 'amount');

-- The same figures as rfm_scores() reports.
SELECT count(*) AS mismatches
  FROM segment.rfm_scores('fig_orders', 'id', 'at', 'amount', '2025-06-01') AS s
  FULL JOIN segment.rfm_figures('fig_orders', 'id', 'at', 'amount', '2025-06-01') AS f
       USING (customer_id)
 WHERE s.first_order IS DISTINCT FROM f.first_order OR s.last_order IS DISTINCT FROM f.last_order
    OR s.frequency IS DISTINCT FROM f.frequency OR s.monetary IS DISTINCT FROM f.monetary;

-- NULL arguments give no rows; bad input.
SELECT count(*) FROM segment.rfm_figures('fig_orders', 'id', 'at', NULL, '2025-01-01');
SELECT * FROM segment.rfm_figures('fig_orders', 'id', 'at', 'amount', 'infinity');
SELECT * FROM segment.rfm_figures('fig_orders', 'nope', 'at', 'amount', '2025-01-01');
SELECT * FROM segment.rfm_figures('fig_orders', 'id', 'id', 'amount', '2025-01-01');
SELECT * FROM segment.rfm_figures('fig_orders', 'id', 'at', 'at', '2025-01-01');
CREATE TABLE fig_bad (id int, at timestamptz, amount numeric);
INSERT INTO fig_bad VALUES (1, '-infinity', 1);
SELECT * FROM segment.rfm_figures('fig_bad', 'id', 'at', 'amount', '2025-01-01');
UPDATE fig_bad SET at = '2024-01-01', amount = 'NaN';
SELECT * FROM segment.rfm_figures('fig_bad', 'id', 'at', 'amount', '2025-01-01');
