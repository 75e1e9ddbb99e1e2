-- The per-customer contacts(opened_at, negative, as_of, window) aggregate.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE contacts (customer_id int, opened_at timestamptz, negative boolean, score int);
INSERT INTO contacts VALUES
    (1, '2025-06-20', true,  1),    -- recent and negative: angry
    (1, '2025-06-25', false, 4),
    (1, '2025-01-10', true,  2),    -- negative, before the window
    (2, '2025-06-01', false, 5),
    (2, '2025-06-02', NULL,  NULL), -- not rated
    (2, '2025-07-05', true,  1),    -- after as_of: counted, ignored
    (3, NULL,         true,  1),    -- no time: skipped
    (4, '2025-03-01', true,  1);    -- negative, long ago

SELECT customer_id, (c).*
  FROM (SELECT customer_id, segment.contacts(opened_at, negative, '2025-07-01', '90 days') AS c
          FROM contacts GROUP BY customer_id) AS s
 ORDER BY customer_id;

-- A score becomes the flag through an expression; NULL window: all history.
SELECT customer_id, (c).contacts, (c).negative_contacts, (c).unrated_contacts, (c).last_negative
  FROM (SELECT customer_id, segment.contacts(opened_at, score <= 2, '2025-07-01', NULL) AS c
          FROM contacts GROUP BY customer_id) AS s
 ORDER BY customer_id;

-- The same figures as plain SQL.
SELECT count(*) AS mismatches
  FROM (SELECT customer_id, segment.contacts(opened_at, negative, '2025-07-01', '90 days') AS c,
               count(*) FILTER (WHERE opened_at > timestamptz '2025-07-01' - interval '90 days'
                                  AND opened_at <= '2025-07-01') AS n,
               count(*) FILTER (WHERE negative AND opened_at > timestamptz '2025-07-01' - interval '90 days'
                                  AND opened_at <= '2025-07-01') AS neg,
               max(opened_at) FILTER (WHERE negative AND opened_at <= '2025-07-01') AS last_neg,
               count(*) FILTER (WHERE opened_at > '2025-07-01') AS future
          FROM contacts WHERE opened_at IS NOT NULL GROUP BY customer_id) AS s
 WHERE (c).contacts <> n OR (c).negative_contacts <> neg
    OR (c).last_negative IS DISTINCT FROM last_neg OR (c).future_contacts <> future;

-- No rows, or only rows without a time: NULL.
SELECT segment.contacts(opened_at, negative, '2025-07-01', NULL) IS NULL AS is_null
  FROM contacts WHERE customer_id = 3;

-- Bad input: each a clear error.
SELECT segment.contacts(opened_at, negative, NULL, '90 days') FROM contacts;
SELECT segment.contacts(opened_at, negative, '-infinity', '90 days') FROM contacts;
SELECT segment.contacts(opened_at, negative, '2025-07-01', '-90 days') FROM contacts;
SELECT segment.contacts(opened_at, negative, opened_at, '90 days') FROM contacts;
SELECT segment.contacts('infinity', true, '2025-07-01', NULL);
