-- segment.rfm_segment_map_removed lists the default rows of the RFM segment
-- map that the map no longer has, so that a dump restores the map as it was
-- (issue 12, finding 8; test/dump/ dumps and restores a database).  Inside a
-- transaction rolled back, so that the tests after see the default map.
BEGIN;
SELECT count(*) AS removed FROM segment.rfm_segment_map_removed;
DELETE FROM segment.rfm_segment_map WHERE priority IN (100, 110);
UPDATE segment.rfm_segment_map SET priority = 95 WHERE priority = 91;
UPDATE segment.rfm_segment_map SET segment = 'Sleeping' WHERE priority = 70;
SELECT priority FROM segment.rfm_segment_map_removed ORDER BY priority;
-- A row inserted at a removed priority (the default one or another) is no
-- longer removed.
INSERT INTO segment.rfm_segment_map SELECT * FROM segment.rfm_segment_map_defaults() WHERE priority = 100;
INSERT INTO segment.rfm_segment_map VALUES (91, 'Risky', 1, 2, 3, 3, 4, 5);
SELECT priority FROM segment.rfm_segment_map_removed ORDER BY priority;
-- Deleting from the list by hand brings nothing back: the list is whole again.
DELETE FROM segment.rfm_segment_map_removed;
SELECT priority FROM segment.rfm_segment_map_removed ORDER BY priority;
-- A restore inserts the list: a default row listed goes, an edited one stays.
INSERT INTO segment.rfm_segment_map_removed VALUES (10), (70);
SELECT priority, segment FROM segment.rfm_segment_map WHERE priority IN (10, 70) ORDER BY priority;
SELECT priority FROM segment.rfm_segment_map_removed ORDER BY priority;
-- Emptied: every default is removed; refilled from the defaults: none.
TRUNCATE segment.rfm_segment_map;
SELECT count(*) AS removed FROM segment.rfm_segment_map_removed;
INSERT INTO segment.rfm_segment_map SELECT * FROM segment.rfm_segment_map_defaults();
SELECT count(*) AS removed FROM segment.rfm_segment_map_removed;
SELECT count(*) AS unmapped FROM segment.rfm_segment_map_check();
ROLLBACK;
SELECT count(*) AS rows, (SELECT count(*) FROM segment.rfm_segment_map_removed) AS removed
  FROM segment.rfm_segment_map;
