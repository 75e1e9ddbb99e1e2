-- segment_of() over many rows: the in-memory paths (dense array of integer
-- keys, hash table of sparse integer keys and of text keys) give the answers
-- of a join with the profile, and the index path for few calls.
SET TimeZone = 'UTC';
\set SHOW_CONTEXT never
CREATE SCHEMA lk_shop;
-- Dense keys 1..3000, sparse keys 1000, 2000, ..., negative bigint keys.
CREATE TABLE lk_shop.orders (customer_id bigint, ordered_at timestamptz, amount numeric);
INSERT INTO lk_shop.orders
SELECT c, timestamptz '2024-06-30' - make_interval(days => (c * 37 + k * 11) % 400), (c % 23) * 7 + k
  FROM generate_series(1, 3000) AS c, generate_series(1, 1 + c % 3) AS k;
CREATE VIEW lk_shop.sparse_orders AS
    SELECT customer_id * 1000 AS customer_id, ordered_at, amount FROM lk_shop.orders;
CREATE VIEW lk_shop.negative_orders AS
    SELECT -customer_id - 5000000000 AS customer_id, ordered_at, amount FROM lk_shop.orders;
CREATE VIEW lk_shop.text_orders AS
    SELECT 'c' || customer_id AS customer_id, ordered_at, amount FROM lk_shop.orders;
SELECT segment.configure('lk_shop.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'lk_dense');
SELECT segment.configure('lk_shop.sparse_orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'lk_sparse');
SELECT segment.configure('lk_shop.negative_orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'lk_negative');
SELECT segment.configure('lk_shop.text_orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'lk_text');
SELECT count(*) FROM (SELECT segment.refresh(s, '2024-07-01')
                        FROM unnest('{lk_dense,lk_sparse,lk_negative,lk_text}'::text[]) AS s) AS r;
-- A NULL segment (no rule, no RFM segment) must stay NULL, not become absent.
UPDATE segment.profile_lk_dense SET segment = NULL WHERE customer_id % 100 = 0;
UPDATE segment.profile_lk_sparse SET segment = NULL WHERE customer_id % 100000 = 0;

-- Keys 0..3200 probe every case: below, inside (present, NULL segment), holes, above.
SET client_min_messages = debug1;
SELECT count(*) AS calls, count(*) FILTER (WHERE s IS NOT NULL) AS found
  FROM (SELECT segment_of(g::bigint, 'lk_dense') AS s FROM generate_series(0, 3200) AS g) AS x;
SELECT count(*) AS calls, count(*) FILTER (WHERE s IS NOT NULL) AS found
  FROM (SELECT segment_of(g * 1000::bigint, 'lk_sparse') AS s FROM generate_series(0, 3200) AS g) AS x;
RESET client_min_messages;

CREATE FUNCTION pg_temp.mismatches(segmentation text, keys text) RETURNS bigint LANGUAGE plpgsql AS
$$
DECLARE
    n bigint;
BEGIN
    EXECUTE format($q$
        SELECT count(*) FROM (SELECT k, segment_of(k, %1$L) AS s FROM (%2$s) AS g(k)) AS x
          LEFT JOIN segment.%3$I AS p ON p.customer_id = x.k
         WHERE x.s IS DISTINCT FROM p.segment$q$, segmentation, keys, 'profile_' || segmentation)
        INTO n;
    RETURN n;
END
$$;
SELECT pg_temp.mismatches('lk_dense', 'SELECT g::bigint FROM generate_series(-5, 3205) AS g') AS dense,
       pg_temp.mismatches('lk_dense', 'SELECT g::integer FROM generate_series(-5, 3205) AS g') AS dense_int4,
       pg_temp.mismatches('lk_sparse', 'SELECT g * 500::bigint FROM generate_series(-5, 6405) AS g') AS sparse,
       pg_temp.mismatches('lk_negative', 'SELECT -g - 5000000000 FROM generate_series(-5, 3205) AS g') AS negative,
       pg_temp.mismatches('lk_text', 'SELECT ''c'' || g FROM generate_series(-5, 3205) AS g') AS text_keys;
-- The extremes of bigint do not overflow the dense array's arithmetic.
SELECT count(*) AS calls, count(segment_of(k, 'lk_dense')) AS found
  FROM (VALUES (9223372036854775807), (-9223372036854775808), (1)) AS v(k)
 CROSS JOIN generate_series(1, 1200);

SELECT segment.drop_segmentation(s) FROM unnest('{lk_dense,lk_sparse,lk_negative,lk_text}'::text[]) AS s;
DROP SCHEMA lk_shop CASCADE;
