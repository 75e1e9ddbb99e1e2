-- Quantile breaks and scores.

-- breaks(v, n) are exactly percentile_disc(i/n).
SELECT n, segment.breaks(v, n) = (SELECT array_agg(q ORDER BY i)
                                    FROM generate_series(1, n - 1) AS i,
                                         LATERAL (SELECT percentile_disc(i::float8 / n)
                                                         WITHIN GROUP (ORDER BY w) AS q
                                                    FROM (SELECT ((x * 7919) % 1013)::float8 AS w
                                                            FROM generate_series(1, 997) AS x) AS d) AS p)
          AS same_as_percentile_disc
  FROM (SELECT ((x * 7919) % 1013)::float8 AS v FROM generate_series(1, 997) AS x) AS d,
       generate_series(2, 10) AS n
 GROUP BY n ORDER BY n;

SELECT segment.breaks(x) AS quintiles, segment.breaks(x, 4) AS quartiles,
       segment.breaks(x, 2) AS median
  FROM generate_series(1, 100) AS x;

-- Scores: 1 + number of breaks below the value; reversed for lower-is-better.
SELECT v, segment.score(v, '{10,20,30,40}') AS higher_is_better,
       segment.score(v, '{10,20,30,40}', false) AS lower_is_better
  FROM unnest('{-Infinity,5,10,10.5,20,35,40,41,Infinity}'::float8[]) AS v;

-- Ties: every value 1 gets score 1, where NTILE deals them into buckets 1..3 by row order.
CREATE TABLE tied (customer int, orders int);
INSERT INTO tied SELECT i, CASE WHEN i <= 6 THEN 1 WHEN i <= 8 THEN 2 ELSE 5 END
  FROM generate_series(1, 10) AS i;
SELECT customer, orders,
       segment.score(orders, (SELECT segment.breaks(orders) FROM tied)) AS score,
       ntile(5) OVER (ORDER BY orders) AS ntile
  FROM tied ORDER BY customer;
-- Equal values always get equal scores; NTILE does not.
SELECT orders, count(DISTINCT score) AS scores, count(DISTINCT ntile) AS ntiles
  FROM (SELECT orders, segment.score(orders, (SELECT segment.breaks(orders) FROM tied)) AS score,
               ntile(5) OVER (ORDER BY orders) AS ntile FROM tied) AS s
 GROUP BY orders ORDER BY orders;

-- All values tied; a single value; no values; NULLs skipped.
SELECT segment.breaks(7) FROM generate_series(1, 10);
SELECT segment.breaks(42);
SELECT segment.breaks(x) IS NULL AS is_null FROM generate_series(1, 10) AS x WHERE false;
SELECT segment.breaks(x) FROM (VALUES (1.0), (NULL), (2.0), (NULL), (3.0), (4.0), (5.0)) AS v(x);

-- Bad input.
SELECT segment.breaks(x, 1) FROM generate_series(1, 10) AS x;
SELECT segment.breaks(x, 11) FROM generate_series(1, 10) AS x;
SELECT segment.breaks(x, NULL) FROM generate_series(1, 10) AS x;
SELECT segment.breaks(x, CASE WHEN x < 5 THEN 4 ELSE 5 END) FROM generate_series(1, 10) AS x;
SELECT segment.breaks(x) FROM (VALUES (1.0), ('NaN')) AS v(x);
SELECT segment.breaks(x) FROM (VALUES (1.0), ('Infinity')) AS v(x);
SELECT segment.score('NaN', '{1,2}');
SELECT segment.score(1, '{}');
SELECT segment.score(1, '{1,2,3,4,5,6,7,8,9,10}');
SELECT segment.score(1, '{3,2}');
SELECT segment.score(1, '{1,NULL}');
SELECT segment.score(1, '{1,NaN}');
SELECT segment.score(1, '{{1,2},{3,4}}');
SELECT segment.score(NULL, '{1,2}') IS NULL AS null_in_null_out;
-- A hand-made aggregate cannot trick the state functions into reading past the state.
CREATE AGGREGATE evil_breaks(float8, int) (
    SFUNC = segment_internal.breaks_trans, STYPE = float8[], FINALFUNC = segment_internal.breaks_final,
    INITCOND = '{1000000,5}');
SELECT evil_breaks(x, 5) FROM generate_series(1, 3) AS x;
CREATE AGGREGATE evil_breaks2(float8, int) (
    SFUNC = segment_internal.breaks_trans, STYPE = float8[], FINALFUNC = segment_internal.breaks_final,
    INITCOND = '{0,50}');
SELECT evil_breaks2(x, 5) FROM generate_series(1, 3) AS x;
SELECT segment_internal.breaks_final('{2,5,1}');

-- The cut points are order statistics found by selection, not by a sort:
-- b_k is the ceil(k * N / n)-th smallest of the N values, read here from the
-- sorted values, for every bucket count n, for sizes around the bucket
-- counts and larger, and for data shapes that trouble a quickselect
-- (ascending, descending, all equal, two values, organ pipe, few distinct
-- values, many ties at the middle): no row is a mismatch.
WITH data AS (
    SELECT sh AS shape, sz, n,
           CASE sh WHEN 'ascending' THEN i
                   WHEN 'descending' THEN -i
                   WHEN 'equal' THEN 7
                   WHEN 'two' THEN i % 2
                   WHEN 'organ' THEN least(i, sz - i)
                   WHEN 'few' THEN (i * 7919) % 5
                   WHEN 'ties' THEN CASE WHEN i % 3 = 0 THEN 50 ELSE (i * 7919) % 101 END
                   ELSE ((i * 7919) % 1009) / 7.0 END::float8 AS v
      FROM unnest(ARRAY['ascending', 'descending', 'equal', 'two', 'organ', 'few', 'ties', 'spread']) AS sh,
           unnest(ARRAY[1, 2, 3, 4, 5, 9, 10, 11, 19, 20, 21, 97, 1000, 4099]) AS sz,
           generate_series(2, 10) AS n,
           generate_series(1, sz) AS i
), got AS (
    SELECT shape, sz, n, segment.breaks(v, n) AS cuts, array_agg(v ORDER BY v) AS sorted
      FROM data GROUP BY shape, sz, n
)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE cuts <> ARRAY(SELECT sorted[(k * sz + n - 1) / n]
                                              FROM generate_series(1, n - 1) AS k ORDER BY k)) AS mismatches
  FROM got;

-- The internal aggregates that keep the cut points' ranks for incremental
-- refreshes (segment_internal.moved_breaks()): breaks_ranked() gives each
-- cut point with the number of values below and at or below it,
-- breaks_histogram() every distinct value with its count (counted in an
-- array for whole numbers in a short span, sorted otherwise).  Both against
-- the same figures computed in SQL, over the shapes above plus negative
-- whole numbers, a wide span and fractions: no mismatch.
WITH data AS (
    SELECT sh AS shape, sz, n,
           CASE sh WHEN 'ascending' THEN i
                   WHEN 'equal' THEN 7
                   WHEN 'few' THEN (i * 7919) % 5
                   WHEN 'ties' THEN CASE WHEN i % 3 = 0 THEN 50 ELSE (i * 7919) % 101 END
                   WHEN 'negative' THEN -((i * 7919) % 37)
                   WHEN 'wide' THEN (i * 7919) % 3 * 100000
                   ELSE ((i * 7919) % 1009) / 7.0 END::float8 AS v
      FROM unnest(ARRAY['ascending', 'equal', 'few', 'ties', 'negative', 'wide', 'spread']) AS sh,
           unnest(ARRAY[1, 2, 5, 11, 97, 1000]) AS sz,
           unnest(ARRAY[2, 5, 10]) AS n,
           generate_series(1, sz) AS i
), got AS (
    SELECT shape, sz, n, segment.breaks(v, n) AS cuts,
           segment_internal.breaks_ranked(v, n) AS ranked,
           segment_internal.breaks_histogram(v, n) AS histogram,
           array_agg(v ORDER BY v) AS sorted
      FROM data GROUP BY shape, sz, n
), want AS (
    SELECT g.*,
           g.cuts || ARRAY(SELECT (SELECT count(*) FROM unnest(g.sorted) AS x WHERE x < c)::float8
                             FROM unnest(g.cuts) WITH ORDINALITY AS u(c, k) ORDER BY k)
                  || ARRAY(SELECT (SELECT count(*) FROM unnest(g.sorted) AS x WHERE x <= c)::float8
                             FROM unnest(g.cuts) WITH ORDINALITY AS u(c, k) ORDER BY k) AS want_ranked,
           g.cuts || ARRAY(SELECT DISTINCT x FROM unnest(g.sorted) AS x ORDER BY x)
                  || ARRAY(SELECT count(*)::float8 FROM unnest(g.sorted) AS x GROUP BY x ORDER BY x) AS want_histogram
      FROM got AS g
)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE ranked <> want_ranked) AS ranked_mismatches,
       count(*) FILTER (WHERE histogram <> want_histogram) AS histogram_mismatches
  FROM want;
-- Past 100,000 distinct values, only the cut points.
SELECT cardinality(segment_internal.breaks_histogram(i::float8 / 3, 5)) AS elements
  FROM generate_series(1, 100001) AS i;

-- rank_at(value, fraction), with which a full refresh finds the top-spender
-- cut: percentile_disc(fraction) by selection, then the number of values
-- below it, at or below it, all of them and its 0-based position.  Against
-- percentile_disc and counts in SQL over the shapes above and fractions at
-- both ends and between: no mismatch.
WITH data AS (
    SELECT sh AS shape, sz, f,
           CASE sh WHEN 'ascending' THEN i
                   WHEN 'equal' THEN 7
                   WHEN 'few' THEN (i * 7919) % 5
                   WHEN 'ties' THEN CASE WHEN i % 3 = 0 THEN 50 ELSE (i * 7919) % 101 END
                   WHEN 'negative' THEN -((i * 7919) % 37)
                   ELSE ((i * 7919) % 1009) / 7.0 END::float8 AS v
      FROM unnest(ARRAY['ascending', 'equal', 'few', 'ties', 'negative', 'spread']) AS sh,
           unnest(ARRAY[1, 2, 5, 11, 97, 1000]) AS sz,
           unnest(ARRAY[0, 0.1, 0.5, 0.9, 0.95, 0.999, 1]::float8[]) AS f,
           generate_series(1, sz) AS i
), got AS (
    SELECT shape, sz, f, segment_internal.rank_at(v, f) AS ranked,
           percentile_disc(f) WITHIN GROUP (ORDER BY v) AS cut,
           array_agg(v) AS vs
      FROM data GROUP BY shape, sz, f
)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE ranked[1:4] IS DISTINCT FROM
                              ARRAY[cut, (SELECT count(*) FROM unnest(vs) AS x WHERE x < cut),
                                    (SELECT count(*) FROM unnest(vs) AS x WHERE x <= cut), sz]::float8[]
                           OR NOT (ranked[5] >= ranked[2] AND ranked[5] < ranked[3])) AS mismatches
  FROM got;
-- Its position is percentile_disc's row: 0.9 of 10 values is the 9th.
SELECT segment_internal.rank_at(i, 0.9) FROM generate_series(1, 10) AS i;
-- NULL values are skipped; none gives NULL.
SELECT segment_internal.rank_at(NULL::float8, 0.5) AS none,
       segment_internal.rank_at(v, 0.5) AS skipped FROM (VALUES (1.0::float8), (NULL), (3.0)) AS t(v);
-- Bad input.
SELECT segment_internal.rank_at(i, NULL) FROM generate_series(1, 3) AS i;
SELECT segment_internal.rank_at(i, 1.5) FROM generate_series(1, 3) AS i;
SELECT segment_internal.rank_at(i, 'NaN') FROM generate_series(1, 3) AS i;
SELECT segment_internal.rank_at(i, i / 10.0) FROM generate_series(1, 3) AS i;
SELECT segment_internal.rank_at('Infinity'::float8, 0.5);
-- Crafted states through hand-made aggregates: a count past the array, a
-- fraction past 1, a NaN value.
CREATE AGGREGATE evil_rank(float8, float8) (
    SFUNC = segment_internal.rank_at_trans, STYPE = float8[], FINALFUNC = segment_internal.rank_at_final,
    INITCOND = '{1000000,0.5}');
SELECT evil_rank(x, 0.5) FROM generate_series(1, 3) AS x;
CREATE AGGREGATE evil_rank2(float8, float8) (
    SFUNC = segment_internal.rank_at_trans, STYPE = float8[], FINALFUNC = segment_internal.rank_at_final,
    INITCOND = '{0,2}');
SELECT evil_rank2(x, 0.5) FROM generate_series(1, 3) AS x;
CREATE FUNCTION keep_state(float8[], float8, float8) RETURNS float8[] LANGUAGE sql AS 'SELECT $1';
CREATE AGGREGATE evil_rank3(float8, float8) (
    SFUNC = keep_state, STYPE = float8[], FINALFUNC = segment_internal.rank_at_final,
    INITCOND = '{1,0.5,NaN}');
SELECT evil_rank3(x, 0.5) FROM generate_series(1, 3) AS x;

-- A refresh ranks and scores monetary figures as doubles with
-- segment_internal.numeric_double(), the cast without its text round trip:
-- the same double as the cast for amounts of every scale from 0 to 30 and
-- magnitude from 1e-30 to 1e30 (the fast path up to 2^53 units and scale 22,
-- the cast beyond), 2^53 units and one past, ties to even, and the special
-- values.
WITH v AS (
    SELECT round((((i * 7919) % 100003) - 50000)::numeric * 10::numeric ^ e, sc) AS x
      FROM generate_series(1, 200) AS i, generate_series(-30, 30, 3) AS e, generate_series(0, 30, 2) AS sc
    UNION ALL
    SELECT x FROM unnest(ARRAY[0, -0.0, 9007199254740992, 9007199254740993, -9007199254740993,
                               0.9007199254740993, 1e22, 1e23, 123456789012345678901234567890,
                               0.1, 0.30000000000000004, 2.5e-22, 1.7976931348623157e308,
                               'NaN', 'Infinity', '-Infinity']::numeric[]) AS x
)
SELECT count(*) AS values,
       count(*) FILTER (WHERE segment_internal.numeric_double(x) IS DISTINCT FROM x::float8) AS mismatches,
       count(*) FILTER (WHERE float8send(segment_internal.numeric_double(x)) <> float8send(x::float8)) AS bit_mismatches
  FROM v;
