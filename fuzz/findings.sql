-- Findings of scripts/fuzz.sh (seed 1, 5000 inputs, 46 s, PostgreSQL 15.20 (Debian 15.20-0+deb12u1)).
-- Each reproducer is one line; run it in a throwaway database with the
-- extension installed (psql -f).  The shortest input per function, outcome
-- and message is kept.  Outcomes: crash (the backend died), hang (ignored
-- statement_timeout and the cancel: killed with SIGKILL), timeout (57014),
-- internal (XX000: a user-reachable elog(ERROR)), leak (a state returned to
-- SQL by an aggregate of the caller's own holds uninitialised memory).

-- crash in abandoned_products(event_summary,timestamptz) [direct], input 4333: signal 11: Segmentation fault
SELECT segment.abandoned_products(ROW(NULL::timestamp with time zone,NULL::timestamp with time zone,NULL::bigint,NULL::bigint,NULL::bigint,NULL::bigint,NULL::bigint,NULL::timestamp with time zone,NULL::timestamp with time zone,NULL::timestamp with time zone,NULL::timestamp with time zone,NULL::timestamp with time zone,NULL::boolean,NULL::timestamp with time zone,NULL::text[],NULL::timestamp with time zone[],NULL::bigint,NULL::bigint)::segment.event_summary, 'infinity'::timestamp with time zone);

-- hang in bgnbd_fit_final(float8[]) [aggfinal], input 2584: ignored the cancel after 2 s: killed with SIGKILL
CREATE AGGREGATE pg_temp.fz_final_2584(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}', finalfunc = segment.bgnbd_fit_final); SELECT pg_temp.fz_final_2584('{12,3,1,0,0,0,0,0,64,-Infinity,10.3,37,5,37,50,1,7.9,69,3,44.7,61,4,14,50,3,3,36,5e-324,38.1,48,4,28.7,52,-1e308,0.5,30,0,0,-Infinity,-0.5,0,0}'::float8[]);

-- hang in gamma_gamma_fit_final(float8[]) [aggfinal], input 4154: ignored the cancel after 2 s: killed with SIGKILL
CREATE AGGREGATE pg_temp.fz_final_4154(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}', finalfunc = segment.gamma_gamma_fit_final); SELECT pg_temp.fz_final_4154('{10,2,2,3,1,58.1,-2147483649,21.26,4,29.09,1e16,61.47,2,47.15,4,3,5,39.53,1,58.8,0,0,0,Infinity,Infinity,0}'::float8[]);

-- internal in bgnbd_expected_purchases_new(bgnbd_model,float8) [direct], input 3160: ERROR:  hypergeometric argument 1 outside [0, 1)
SELECT segment.bgnbd_expected_purchases_new(ROW('0.5437326130992011'::double precision,'5e-324'::double precision,'16124664.383608766'::double precision,'60730565.332023'::double precision,NULL::double precision,'778'::integer,'false'::boolean,'50'::bigint)::segment.bgnbd_model, '193.4'::double precision);

-- internal in bgnbd_fit_final(float8[]) [direct], input 652: ERROR:  segment_bgnbd_fit_final called in non-aggregate context
SELECT segment.bgnbd_fit_final(NULL::float8[]);

-- internal in bgnbd_fit_trans(float8[],float8,float8,float8) [direct], input 46: ERROR:  segment_bgnbd_fit_trans called in non-aggregate context
SELECT segment.bgnbd_fit_trans(NULL::float8[], '350.0'::double precision, '1'::double precision, NULL::double precision);

-- internal in bgnbd_fit_trans(float8[],float8,float8,float8,float8) [direct], input 554: ERROR:  segment_bgnbd_fit_trans called in non-aggregate context
SELECT segment.bgnbd_fit_trans(NULL::float8[], '2'::double precision, '1'::double precision, '1e-300'::double precision, '30.5'::double precision);

-- internal in breaks_combine(float8[],float8[]) [direct], input 133: ERROR:  segment_breaks_combine called in non-aggregate context
SELECT segment.breaks_combine(NULL::float8[], '[0:1]={-1e308,30.5}'::float8[]);

-- internal in breaks_final(float8[]) [direct], input 1070: ERROR:  segment_breaks_final called in non-aggregate context
SELECT segment.breaks_final('{{143.6,-2147483649}}'::float8[]);

-- internal in breaks_trans(float8[],float8) [direct], input 3294: ERROR:  segment_breaks_trans called in non-aggregate context
SELECT segment.breaks_trans(NULL::float8[], '0'::double precision);

-- internal in breaks_trans(float8[],float8,int) [direct], input 3450: ERROR:  segment_breaks_trans called in non-aggregate context
SELECT segment.breaks_trans(NULL::float8[], '1e-300'::double precision, 0::integer);

-- internal in clv_fit_combine(float8[],float8[]) [direct], input 1544: ERROR:  segment_bgnbd_fit_combine called in non-aggregate context
SELECT segment.clv_fit_combine(NULL::float8[], '[0:0]={30.5}'::float8[]);

-- internal in clv_summary_combine(float8[],float8[]) [direct], input 2614: ERROR:  segment_clv_summary_combine called in non-aggregate context
SELECT segment.clv_summary_combine(NULL::float8[], NULL::float8[]);

-- internal in clv_summary_final(float8[]) [direct], input 3977: ERROR:  segment_clv_summary_final called in non-aggregate context
SELECT segment.clv_summary_final(NULL::float8[]);

-- internal in clv_summary_trans(float8[],timestamptz,numeric,timestamptz) [direct], input 4678: ERROR:  segment_clv_summary_trans called in non-aggregate context
SELECT segment.clv_summary_trans(NULL::float8[], NULL::timestamp with time zone, '-5'::numeric, NULL::timestamp with time zone);

-- internal in clv_summary_trans(float8[],timestamptz,numeric,timestamptz,text) [direct], input 1819: ERROR:  segment_clv_summary_trans called in non-aggregate context
SELECT segment.clv_summary_trans('{10,4294967296}'::float8[], NULL::timestamp with time zone, NULL::numeric, '2025-10-19 07:00:00+00'::timestamp with time zone, 'p2'::text);

-- internal in clv_summary_trans(float8[],timestamptz,numeric,timestamptz,text,text) [direct], input 2922: ERROR:  segment_clv_summary_trans called in non-aggregate context
SELECT segment.clv_summary_trans(NULL::float8[], '-infinity'::timestamp with time zone, '0.000001'::numeric, NULL::timestamp with time zone, NULL::text, NULL::text);

-- internal in clv_summary_trans(float8[],timestamptz,numeric,timestamptz,text,text,time_zone) [direct], input 2340: ERROR:  segment_clv_summary_trans called in non-aggregate context
SELECT segment.clv_summary_trans(NULL::float8[], NULL::timestamp with time zone, 'NaN'::numeric, '2025-01-01 00:00:00+00'::timestamp with time zone, 'year'::text, 'year'::text, '+05:30'::segment.time_zone);

-- internal in gamma_gamma_fit_final(float8[]) [direct], input 672: ERROR:  segment_gg_fit_final called in non-aggregate context
SELECT segment.gamma_gamma_fit_final(NULL::float8[]);

-- internal in gamma_gamma_fit_trans(float8[],float8,float8) [direct], input 3295: ERROR:  segment_gg_fit_trans called in non-aggregate context
SELECT segment.gamma_gamma_fit_trans(NULL::float8[], '3'::double precision, '365'::double precision);

-- internal in gamma_gamma_fit_trans(float8[],float8,float8,float8) [direct], input 3029: ERROR:  segment_gg_fit_trans called in non-aggregate context
SELECT segment.gamma_gamma_fit_trans(NULL::float8[], '0'::double precision, '5'::double precision, '365'::double precision);

-- internal in kmeans_combine(float8[],float8[]) [direct], input 4978: ERROR:  segment_kmeans_combine called in non-aggregate context
SELECT segment.kmeans_combine('{30.5}'::float8[], '{2}'::float8[]);

-- internal in kmeans_final(float8[]) [direct], input 199: ERROR:  segment_kmeans_final called in non-aggregate context
SELECT segment.kmeans_final(NULL::float8[]);

-- internal in kmeans_moments_combine(float8[],float8[]) [direct], input 1882: ERROR:  segment_kmeans_moments_combine called in non-aggregate context
SELECT segment.kmeans_moments_combine('{}'::float8[], '{365}'::float8[]);

-- internal in kmeans_moments_trans(float8[],float8[],kmeans_model) [direct], input 829: ERROR:  segment_kmeans_moments_trans called in non-aggregate context
SELECT segment.kmeans_moments_trans('{71001,1,3,72.14,1703.5687999999996}'::float8[], '{30.5,349.273,1.5,3,1e308,100}'::float8[], NULL::segment.kmeans_model);

-- internal in kmeans_scores_final(float8[]) [direct], input 1124: ERROR:  segment_kmeans_scores_final called in non-aggregate context
SELECT segment.kmeans_scores_final(NULL::float8[]);

-- internal in kmeans_step_combine(float8[],float8[]) [direct], input 1489: ERROR:  segment_kmeans_step_combine called in non-aggregate context
SELECT segment.kmeans_step_combine(NULL::float8[], NULL::float8[]);

-- internal in kmeans_step_trans(float8[],float8[],kmeans_model) [direct], input 4859: ERROR:  segment_kmeans_step_trans called in non-aggregate context
SELECT segment.kmeans_step_trans(NULL::float8[], '{0.5}'::float8[], NULL::segment.kmeans_model);

-- internal in kmeans_trans(float8[],float8[],int) [direct], input 68: ERROR:  segment_kmeans_trans called in non-aggregate context
SELECT segment.kmeans_trans(NULL::float8[], '{0}'::float8[], 5::integer);

-- internal in kmeans_trans(float8[],float8[],int,jsonb) [direct], input 3302: ERROR:  segment_kmeans_trans called in non-aggregate context
SELECT segment.kmeans_trans('{1.8446744073709552e19}'::float8[], '{0.5}'::float8[], 9::integer, '{"centroids": "lloyd"}'::jsonb);

-- leak in bgnbd_fit_trans [state], seed query: the state returned to SQL holds uninitialised memory (it differs between two identical runs, or holds subnormal doubles such as addresses)
SELECT setseed(0.42); CREATE TEMP TABLE fz_pts AS SELECT g, ARRAY[round((random() * 10 + (g % 3) * 8)::numeric, 3)::float8, round((random() * 10)::numeric, 3)::float8] AS p2, ARRAY[round((random() * 100)::numeric, 2)::float8] AS p1, ARRAY[random(), random() * 5, (g % 4)::float8] AS p3 FROM generate_series(1, 60) AS g; CREATE TEMP TABLE fz_cust AS SELECT g, floor(random() * 6)::float8 AS x, 0::float8 AS t_x, 30 + floor(random() * 40)::float8 AS t_cal, round((5 + random() * 80)::numeric, 2)::float8 AS m FROM generate_series(1, 50) AS g; UPDATE fz_cust SET t_x = CASE WHEN x = 0 THEN 0 ELSE round((random() * t_cal)::numeric, 1)::float8 END; CREATE TEMP TABLE fz_orders AS SELECT g % 7 AS c, timestamptz '2025-01-01 00:00+00' + (g * 37 % 170) * interval '1 day' AS at, (10 + g % 13)::numeric AS amount, (ARRAY['visit','product_view','cart_add','checkout', 'newsletter_open'])[1 + g % 5] AS kind, 'p' || (g % 4) AS product FROM generate_series(1, 80) AS g; CREATE AGGREGATE pg_temp.fz_state(double precision, double precision, double precision) (sfunc = segment.bgnbd_fit_trans, stype = float8[]); SELECT pg_temp.fz_state(x, t_x, t_cal) FROM fz_cust WHERE g <= 4;

-- leak in breaks_trans [state], seed query: the state returned to SQL holds uninitialised memory (it differs between two identical runs, or holds subnormal doubles such as addresses)
SELECT setseed(0.42); CREATE TEMP TABLE fz_pts AS SELECT g, ARRAY[round((random() * 10 + (g % 3) * 8)::numeric, 3)::float8, round((random() * 10)::numeric, 3)::float8] AS p2, ARRAY[round((random() * 100)::numeric, 2)::float8] AS p1, ARRAY[random(), random() * 5, (g % 4)::float8] AS p3 FROM generate_series(1, 60) AS g; CREATE TEMP TABLE fz_cust AS SELECT g, floor(random() * 6)::float8 AS x, 0::float8 AS t_x, 30 + floor(random() * 40)::float8 AS t_cal, round((5 + random() * 80)::numeric, 2)::float8 AS m FROM generate_series(1, 50) AS g; UPDATE fz_cust SET t_x = CASE WHEN x = 0 THEN 0 ELSE round((random() * t_cal)::numeric, 1)::float8 END; CREATE TEMP TABLE fz_orders AS SELECT g % 7 AS c, timestamptz '2025-01-01 00:00+00' + (g * 37 % 170) * interval '1 day' AS at, (10 + g % 13)::numeric AS amount, (ARRAY['visit','product_view','cart_add','checkout', 'newsletter_open'])[1 + g % 5] AS kind, 'p' || (g % 4) AS product FROM generate_series(1, 80) AS g; CREATE AGGREGATE pg_temp.fz_state(double precision) (sfunc = segment.breaks_trans, stype = float8[]); SELECT pg_temp.fz_state(p1[1]) FROM fz_pts WHERE g < 5;

-- leak in clv_summary_trans [state], seed query: the state returned to SQL holds uninitialised memory (it differs between two identical runs, or holds subnormal doubles such as addresses)
SELECT setseed(0.42); CREATE TEMP TABLE fz_pts AS SELECT g, ARRAY[round((random() * 10 + (g % 3) * 8)::numeric, 3)::float8, round((random() * 10)::numeric, 3)::float8] AS p2, ARRAY[round((random() * 100)::numeric, 2)::float8] AS p1, ARRAY[random(), random() * 5, (g % 4)::float8] AS p3 FROM generate_series(1, 60) AS g; CREATE TEMP TABLE fz_cust AS SELECT g, floor(random() * 6)::float8 AS x, 0::float8 AS t_x, 30 + floor(random() * 40)::float8 AS t_cal, round((5 + random() * 80)::numeric, 2)::float8 AS m FROM generate_series(1, 50) AS g; UPDATE fz_cust SET t_x = CASE WHEN x = 0 THEN 0 ELSE round((random() * t_cal)::numeric, 1)::float8 END; CREATE TEMP TABLE fz_orders AS SELECT g % 7 AS c, timestamptz '2025-01-01 00:00+00' + (g * 37 % 170) * interval '1 day' AS at, (10 + g % 13)::numeric AS amount, (ARRAY['visit','product_view','cart_add','checkout', 'newsletter_open'])[1 + g % 5] AS kind, 'p' || (g % 4) AS product FROM generate_series(1, 80) AS g; CREATE AGGREGATE pg_temp.fz_state(timestamp with time zone, numeric, timestamp with time zone) (sfunc = segment.clv_summary_trans, stype = float8[]); SELECT pg_temp.fz_state(at, amount, '2025-07-01 00:00+00') FROM fz_orders WHERE c = 1;

-- leak in gamma_gamma_fit_trans [state], seed query: the state returned to SQL holds uninitialised memory (it differs between two identical runs, or holds subnormal doubles such as addresses)
SELECT setseed(0.42); CREATE TEMP TABLE fz_pts AS SELECT g, ARRAY[round((random() * 10 + (g % 3) * 8)::numeric, 3)::float8, round((random() * 10)::numeric, 3)::float8] AS p2, ARRAY[round((random() * 100)::numeric, 2)::float8] AS p1, ARRAY[random(), random() * 5, (g % 4)::float8] AS p3 FROM generate_series(1, 60) AS g; CREATE TEMP TABLE fz_cust AS SELECT g, floor(random() * 6)::float8 AS x, 0::float8 AS t_x, 30 + floor(random() * 40)::float8 AS t_cal, round((5 + random() * 80)::numeric, 2)::float8 AS m FROM generate_series(1, 50) AS g; UPDATE fz_cust SET t_x = CASE WHEN x = 0 THEN 0 ELSE round((random() * t_cal)::numeric, 1)::float8 END; CREATE TEMP TABLE fz_orders AS SELECT g % 7 AS c, timestamptz '2025-01-01 00:00+00' + (g * 37 % 170) * interval '1 day' AS at, (10 + g % 13)::numeric AS amount, (ARRAY['visit','product_view','cart_add','checkout', 'newsletter_open'])[1 + g % 5] AS kind, 'p' || (g % 4) AS product FROM generate_series(1, 80) AS g; CREATE AGGREGATE pg_temp.fz_state(double precision, double precision) (sfunc = segment.gamma_gamma_fit_trans, stype = float8[]); SELECT pg_temp.fz_state(x, m) FROM fz_cust WHERE x > 0 AND g <= 6;

-- timeout in gamma_gamma_fit_final(float8[]) [aggfinal], input 2836: ERROR:  canceling statement due to statement timeout
CREATE AGGREGATE pg_temp.fz_final_2836(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}', finalfunc = segment.gamma_gamma_fit_final); SELECT pg_temp.fz_final_2836('{10,2,2,3,1,58.1,3,9.3e18,-2147483649,29.09,3,61.47,2,47.15,-0.5,35.71,5e-324,39.53,1,58.8,0,0,0,0,0.5,0}'::float8[]);
