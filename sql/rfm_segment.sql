-- The named RFM segments.

-- Every (r, f, m) in 1..5 maps to exactly one segment of the default map.
SELECT count(*) AS cells, count(seg) AS mapped, count(DISTINCT seg) AS segments
  FROM (SELECT segment.rfm_segment(r, f, m) AS seg
          FROM generate_series(1, 5) AS r, generate_series(1, 5) AS f,
               generate_series(1, 5) AS m) AS s;
SELECT * FROM segment.rfm_segment_map_check();

-- The whole map, R down, F across, the M scores in each cell.
SELECT r, f, string_agg(DISTINCT segment.rfm_segment(r, f, m), ' | ') AS segments,
       string_agg(m::text, '' ORDER BY m) AS m_scores
  FROM generate_series(1, 5) AS r, generate_series(1, 5) AS f, generate_series(1, 5) AS m
 GROUP BY r, f, segment.rfm_segment(r, f, m)
 ORDER BY r DESC, f DESC, segments;

-- Out of range or NULL scores.
SELECT segment.rfm_segment(0, 1, 1) IS NULL AS unmapped, segment.rfm_segment(NULL, 1, 1) IS NULL AS null_score;

-- A shop edits the map; the change is seen by the next statement.
BEGIN;
UPDATE segment.rfm_segment_map SET segment = 'VIP' WHERE priority = 10;
SELECT segment.rfm_segment(5, 5, 5);
-- A gap is reported by the check function and maps to NULL.
DELETE FROM segment.rfm_segment_map WHERE priority = 110;
SELECT * FROM segment.rfm_segment_map_check() LIMIT 3;
SELECT segment.rfm_segment(1, 1, 1) IS NULL AS unmapped;
-- Overlaps are reported too; the first row by priority wins.
INSERT INTO segment.rfm_segment_map VALUES (1, 'Whales', 1, 5, 1, 5, 5, 5);
SELECT count(*) AS overlapping_cells FROM segment.rfm_segment_map_check() WHERE cardinality(segments) > 1;
SELECT segment.rfm_segment(5, 5, 5), segment.rfm_segment(1, 1, 5);
-- Inserting a row with an existing priority replaces it (how pg_dump restores the map).
INSERT INTO segment.rfm_segment_map VALUES (1, 'Big Whales', 1, 5, 1, 5, 5, 5);
SELECT priority, segment FROM segment.rfm_segment_map WHERE priority = 1;
ROLLBACK;

-- Bad rows are refused.
INSERT INTO segment.rfm_segment_map VALUES (2, 'Bad', 3, 2, 1, 5, 1, 5);
INSERT INTO segment.rfm_segment_map VALUES (3, 'Bad', 1, 2, 0, 5, 1, 5);
INSERT INTO segment.rfm_segment_map VALUES (4, 'Bad', 1, 2, 1, 5, 1, 11);
INSERT INTO segment.rfm_segment_map VALUES (5, '', 1, 2, 1, 5, 1, 5);
INSERT INTO segment.rfm_segment_map VALUES (NULL, 'Bad', 1, 2, 1, 5, 1, 5);
SELECT count(*) AS rows FROM segment.rfm_segment_map;

-- The map is a configuration table: pg_dump saves its rows.
SELECT c.relname, x.cond AS dump_condition
  FROM pg_extension AS e, unnest(e.extconfig, e.extcondition) AS x(oid, cond)
  JOIN pg_class AS c ON c.oid = x.oid
 WHERE e.extname = 'segment' AND c.relname = 'rfm_segment_map';
