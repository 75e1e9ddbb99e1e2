-- Finding 5 of issue 12 (CVE-2018-1058 pattern): the functions that run a
-- caller's query text must not resolve their own operators and functions
-- through the caller's search_path.  A schema listed before pg_catalog holds
-- hostile operators on the types our code uses; calling every such function
-- must never run them, while the caller's query still resolves its names
-- (the table mkt.pts) through that path.
BEGIN;
SELECT plan(8);

CREATE SCHEMA mkt;
CREATE TABLE mkt.pts (f double precision[]);
INSERT INTO mkt.pts SELECT ARRAY[g % 7, g % 5]::double precision[] FROM generate_series(1, 60) AS g;
CREATE TABLE mkt.calls (who text, op text);
GRANT ALL ON mkt.calls TO PUBLIC;

-- Runs a statement with mkt first on the search_path (pgTAP itself would not
-- survive the hostile operators).
CREATE FUNCTION pg_temp.under_mkt(statement text) RETURNS void LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'mkt, pg_catalog, public', true);
    EXECUTE statement;
    PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog', true);
END
$$;

-- One hostile function per signature, then operators over it.
DO $do$
DECLARE
    t record;
    op text;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('integer', 'integer'), ('bigint', 'bigint'), ('bigint', 'integer'),
                                   ('integer', 'bigint'), ('numeric', 'integer'), ('numeric', 'numeric'),
                                   ('double precision', 'numeric'), ('double precision', 'double precision'),
                                   ('double precision', 'bigint'), ('text', 'text'), ('jsonb', 'text'),
                                   ('jsonb', 'jsonb'), ('bigint', 'numeric')) AS v(l, r) LOOP
        EXECUTE format($f$CREATE FUNCTION mkt.pwn(a %s, b %s) RETURNS boolean LANGUAGE plpgsql AS
            $b$BEGIN INSERT INTO mkt.calls VALUES (current_user, %L); RETURN true; END$b$$f$,
            t.l, t.r, t.l || ',' || t.r);
        FOREACH op IN ARRAY ARRAY['=', '<>', '<', '<=', '>', '>=', '/', '&', '->>', '||', '-', '?', '*', '+'] LOOP
            EXECUTE format('CREATE OPERATOR mkt.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = mkt.pwn)',
                           op, t.l, t.r);
        END LOOP;
    END LOOP;
END
$do$;

SELECT lives_ok($$SELECT pg_temp.under_mkt($q$SELECT segment.kmeans_train('SELECT f FROM pts', 3, '{"seed": 1}')$q$)$$,
                'kmeans_train runs the caller''s query under the caller''s path');
SELECT lives_ok($$SELECT pg_temp.under_mkt($q$SELECT segment.kmeans_train('SELECT f FROM pts', 3, '{"seed": 1, "method": "step"}')$q$)$$,
                'kmeans_train, step method');
SELECT lives_ok($$SELECT pg_temp.under_mkt($q$SELECT segment.kmeans_fit_step('SELECT f FROM pts', 2, '{"seed": 1, "init_sample": 10}')$q$)$$,
                'kmeans_fit_step with a sample');
SELECT lives_ok($$SELECT pg_temp.under_mkt($q$SELECT segment.create_kmeans_model('tap_sp', 'SELECT f FROM pts', 3, '{"seed": 1}')$q$)$$,
                'create_kmeans_model(text, ...)');
SELECT lives_ok($$SELECT pg_temp.under_mkt($q$SELECT * FROM segment.kmeans_describe(segment.get_kmeans_model('tap_sp'), 'SELECT f FROM pts')$q$)$$,
                'kmeans_describe(model, text)');
SELECT lives_ok($$SELECT pg_temp.under_mkt($q$SELECT * FROM segment.kmeans_choose_k('SELECT f FROM pts', 3, '{"seed": 1}')$q$)$$,
                'kmeans_choose_k(text, ...)');
SELECT is((SELECT sum(size)::integer FROM segment.kmeans_describe(segment.get_kmeans_model('tap_sp'), 'SELECT f FROM mkt.pts')),
          60, 'the description counts every point');
SELECT is_empty($$SELECT * FROM mkt.calls$$, 'no hostile operator was called');

SELECT * FROM finish();
ROLLBACK;
