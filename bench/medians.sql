-- Shared by the reports of bench/clv.sh and bench/pipeline.sh: the steps
-- (from the variable descriptions, "label|text" lines) and the median
-- wall-clock time of each over the timed rounds (run 0 is the warm-up).
CREATE TEMP TABLE steps AS
SELECT split_part(line, '|', 1) AS step, split_part(line, '|', 2) AS description, ord
  FROM string_to_table(:'descriptions', E'\n') WITH ORDINALITY AS t(line, ord)
 WHERE line <> '';

CREATE TEMP TABLE medians AS
SELECT step, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median,
       string_agg(to_char(seconds, 'FM990.000'), ' ' ORDER BY run) AS runs,
       min(result) AS result
  FROM bench_times
 WHERE run > 0
 GROUP BY step;
