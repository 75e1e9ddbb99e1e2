-- segment.report(): one self-contained HTML page of a segmentation (issue
-- 17).  The page's numbers are checked through its elements' classes and
-- data- attributes; every text from data (here a rule named with markup) is
-- HTML-escaped.
SET TimeZone = 'UTC';
\set SHOW_CONTEXT never
CREATE SCHEMA rep_shop;
CREATE TABLE rep_shop.orders (customer_id integer, ordered_at timestamptz, amount numeric);
INSERT INTO rep_shop.orders
SELECT i % 240 + 1, timestamptz '2024-01-01' + (i * 37 % 360) * interval '1 day' + (i % 7) * interval '1 hour',
       (i * 13) % 300 + 5
  FROM generate_series(1, 1500) AS i;
SELECT segment.configure('rep_shop.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'rep',
                         buckets => 4, clusters => 3, cluster_options => '{"seed": 3}', clv => true,
                         is_default => false) IS NOT NULL AS configured;

-- Not refreshed yet, an unknown segmentation, a bad colour scale.
SELECT segment.report('rep');
SELECT segment.report('no_such');
SELECT segment.add_rule('<script>alert(1)</script> & "Co" ''s', 'customer_id <= 20', 5, 'rep');
-- (the made-up orders are too regular for a lifetime-value fit: its warning,
-- whose figures vary, is not shown; the values are set below)
SET client_min_messages = error;
SELECT (segment.refresh('rep', as_of => '2024-10-01')).customers;
RESET client_min_messages;
SELECT segment.report('rep', grid_colour => 'revenue');
SELECT segment.report('rep', grid_colour => NULL);

-- One refresh: no movement yet.
SELECT strpos(segment.report('rep'), 'id="movement-none"') > 0 AS first_refresh_says_so;
SET client_min_messages = error;
SELECT (segment.refresh('rep', as_of => '2024-12-31')).customers;
RESET client_min_messages;
-- Lifetime values as a fit would store them: 0 to 239.
UPDATE segment.profile_rep SET clv = customer_id - 1 WHERE frequency > 0;

CREATE TEMP TABLE rep AS SELECT segment.report('rep') AS html;
-- No markup from data: the rule's name is escaped wherever it appears.
SELECT html ~* '<script' AS has_script_tag,
       regexp_count(html, '&lt;script&gt;alert\(1\)&lt;/script&gt; &amp; &quot;Co&quot; &#39;s') > 0 AS escaped,
       html LIKE '<!DOCTYPE html>%</html>' AS whole_page,
       html !~* '(src|href)\s*=' AS fetches_nothing
  FROM rep;
-- One bar per segment present, in each of the two bar charts.
SELECT (SELECT count(DISTINCT segment) FROM segment.profile_rep) AS segments,
       regexp_count(substring(html FROM '<svg id="segment-sizes".*?</svg>'), '<rect class="bar" ') AS size_bars,
       regexp_count(substring(html FROM '<svg id="segment-revenue".*?</svg>'), '<rect class="bar" ') AS revenue_bars,
       (SELECT count(*) FROM segment.profile_rep WHERE segment LIKE '<script>%') > 0 AS planted_segment_present
  FROM rep;
-- The grid: buckets x buckets cells, their customers adding up to the buyers.
SELECT regexp_count(html, '<rect class="cell" ') AS cells,
       (SELECT sum(m[1]::bigint) FROM regexp_matches(html, 'class="cell" data-r="\d+" data-f="\d+" data-customers="(\d+)"', 'g') AS m)
           = (SELECT count(*) FROM segment.profile_rep WHERE frequency > 0) AS cells_add_up,
       (SELECT count(*) FROM regexp_matches(html, 'class="cell" data-r="4" data-f="4" data-customers="(\d+)"', 'g')) AS cell_4_4
  FROM rep;
-- Movement: a row per changed pair, as transitions() counts them (at most 25).
SELECT regexp_count(html, '<tr class="move" ') AS move_rows,
       (SELECT least(count(*), 25) FROM segment.transitions(segmentation => 'rep')
         WHERE from_segment IS DISTINCT FROM to_segment) AS transitions
  FROM rep;
-- Clusters and the lifetime-value histogram (or the reason there is none).
SELECT regexp_count(html, '<tr class="cluster" ') AS cluster_rows,
       regexp_count(html, '<rect class="bin" ') AS clv_bins,
       (SELECT sum(m[1]::bigint) FROM regexp_matches(html, 'class="bin" data-from="[0-9.]+" data-to="[0-9.]*" data-customers="(\d+)"', 'g') AS m)
           AS customers_in_bins,
       (SELECT string_agg(m[1] || '-' || m[2] || ':' || m[3], ' ')
          FROM regexp_matches(html, 'class="bin" data-from="([0-9.]+)" data-to="([0-9.]*)" data-customers="(\d+)"', 'g') AS m)
           AS bins
  FROM rep;
-- The other colour scale draws the same cells.
SELECT regexp_count(segment.report('rep', 'customers'), '<rect class="cell" ') AS cells_by_customers;

-- A hostile search_path changes nothing.
CREATE SCHEMA rep_evil;
CREATE FUNCTION rep_evil.replace(text, text, text) RETURNS text LANGUAGE sql AS $$ SELECT 'pwned' $$;
SET search_path = rep_evil, public;
SELECT regexp_replace(segment.report('rep'), '<footer>.*</footer>', '')
       = (SELECT regexp_replace(html, '<footer>.*</footer>', '') FROM pg_temp.rep) AS same_page_under_hostile_search_path;
RESET search_path;

-- html_escape on its own.
SELECT segment_internal.html_escape($$<a href="x">Tom & Jerry's</a>$$) AS escaped, segment_internal.html_escape(NULL) IS NULL AS null_in_null_out;

SELECT segment.drop_segmentation('rep');
DROP SCHEMA rep_shop CASCADE;
DROP SCHEMA rep_evil CASCADE;
