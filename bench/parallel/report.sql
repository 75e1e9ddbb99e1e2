-- The report of bench/parallel.sh: medians of the timed rounds (run > 0) and
-- their ratios.  Expects the tables bench_times and bench_plans and the
-- variable rounds.
\set ON_ERROR_STOP on
\pset footer off
\echo median of :rounds timed rounds after 1 warm-up round
\echo

CREATE TEMP TABLE medians AS
SELECT part, size, step, mode,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median,
       string_agg(to_char(seconds, 'FM9990.000'), ' ' ORDER BY run) AS runs
  FROM bench_times WHERE run > 0
 GROUP BY part, size, step, mode;

\echo 'Parallel query: 0 workers against 2 workers (plan forced), seconds and speed-up'
SELECT s.step, to_char(s.size, 'FM99,999,999') AS "rows",
       to_char(s.median, 'FM9990.000') AS "0 workers (s)",
       to_char(p.median, 'FM9990.000') AS "2 workers (s)",
       to_char(s.median / p.median, 'FM990.00') || 'x' AS "speed-up",
       CASE WHEN b.default_parallel THEN 'yes' ELSE 'no' END AS "planner picks parallel"
  FROM medians AS s
  JOIN medians AS p ON p.part = s.part AND p.size = s.size AND p.step = s.step AND p.mode = '2'
  LEFT JOIN bench_plans AS b ON b.size = s.size AND b.step = s.step
 WHERE s.part = 'parallel' AND s.mode = '0'
 ORDER BY array_position(ARRAY['rfm', 'rfm_hashed', 'breaks', 'step', 'bgnbd'], s.step), s.size;

\echo 'Sharded (2 shards on loopback, same machine) against one server'
SELECT m.step, to_char(m.size, 'FM99,999,999') AS "orders",
       CASE m.mode WHEN 'local0' THEN 'local, 0 workers' WHEN 'local2' THEN 'local, 2 workers'
                   WHEN 'hashed2' THEN 'local hash-partitioned, 2 workers'
                   ELSE 'postgres_fdw, 2 shards' END AS mode,
       to_char(m.median, 'FM9990.000') AS "median (s)",
       to_char(m.median / l.median, 'FM990.00') || 'x' AS "time / local 0 workers",
       m.runs AS "timed runs (s)"
  FROM medians AS m
  JOIN medians AS l ON l.part = m.part AND l.size = m.size AND l.step = m.step AND l.mode = 'local0'
 WHERE m.part = 'sharded'
 ORDER BY array_position(ARRAY['rfm', 'breaks', 'refresh'], m.step),
          array_position(ARRAY['local0', 'local2', 'hashed2', 'fdw'], m.mode);

\echo 'Sharded: refresh() against its floor, the rfm GROUP BY customer of the same orders in the same mode (over the shards: pushed down)'
SELECT CASE r.mode WHEN 'local0' THEN 'local, 0 workers' WHEN 'local2' THEN 'local, 2 workers'
                   WHEN 'hashed2' THEN 'local hash-partitioned, 2 workers'
                   ELSE 'postgres_fdw, 2 shards' END AS mode,
       to_char(r.size, 'FM99,999,999') AS "orders",
       to_char(r.median, 'FM9990.000') AS "refresh (s)", to_char(g.median, 'FM9990.000') AS "floor (s)",
       to_char(r.median / g.median, 'FM990.00') || 'x' AS "refresh / floor"
  FROM medians AS r
  JOIN medians AS g ON g.part = r.part AND g.size = r.size AND g.step = 'rfm' AND g.mode = r.mode
 WHERE r.part = 'sharded' AND r.step = 'refresh'
 ORDER BY array_position(ARRAY['local0', 'local2', 'hashed2', 'fdw'], r.mode);

\echo 'Load average of the machine (1, 5, 15 min) when each part started and ended'
SELECT part, size, string_agg(at || ': ' || loadavg, ', ' ORDER BY at DESC) AS loadavg
  FROM bench_load GROUP BY part, size ORDER BY part DESC, size;

\echo 'All timed runs (s)'
SELECT part, step, size, mode, runs FROM medians ORDER BY part, step, size, mode;
