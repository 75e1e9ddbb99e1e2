-- A description of everything the extension installed, one line per fact,
-- in an order that does not depend on OIDs: run in a database updated from
-- 0.1 and in a fresh one, the two outputs must be equal (test/upgrade/run.sh).
\pset format unaligned
\pset tuples_only on
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'segment'),
members AS (
    SELECT d.classid, d.objid FROM pg_depend AS d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
fn AS (
    SELECT p.* FROM pg_proc AS p JOIN members AS m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
),
rel AS (
    SELECT c.* FROM pg_class AS c JOIN members AS m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
)
SELECT fact FROM (
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) AS fact FROM members AS m
    UNION ALL
    SELECT format('function %s returns %s lang %s kind %s vol %s par %s strict %s secdef %s leak %s cost %s rows %s config %s acl %s args %s defaults %s src %s bin %s comment %s',
                  p.oid::regprocedure, pg_get_function_result(p.oid), l.lanname, p.prokind, p.provolatile,
                  p.proparallel, p.proisstrict, p.prosecdef, p.proleakproof, p.procost, p.prorows, p.proconfig,
                  p.proacl, pg_get_function_arguments(p.oid), pg_get_expr(p.proargdefaults, 0),
                  md5(p.prosrc), p.probin, obj_description(p.oid, 'pg_proc'))
      FROM fn AS p JOIN pg_language AS l ON l.oid = p.prolang
    UNION ALL
    SELECT format('aggregate %s kind %s trans %s final %s combine %s serial %s deserial %s modify %s stype %s init %s',
                  a.aggfnoid::regprocedure, a.aggkind, a.aggtransfn::regprocedure, a.aggfinalfn, a.aggcombinefn,
                  a.aggserialfn, a.aggdeserialfn, a.aggfinalmodify, a.aggtranstype::regtype, a.agginitval)
      FROM pg_aggregate AS a JOIN fn AS p ON p.oid = a.aggfnoid
    UNION ALL
    SELECT format('type %s type %s in %s out %s comment %s', t.oid::regtype, t.typtype, t.typinput, t.typoutput,
                  obj_description(t.oid, 'pg_type'))
      FROM pg_type AS t JOIN members AS m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT format('relation %s kind %s options %s acl %s comment %s', c.oid::regclass, c.relkind, c.reloptions,
                  c.relacl, obj_description(c.oid, 'pg_class'))
      FROM rel AS c
    UNION ALL
    SELECT format('column %s.%s %s notnull %s default %s identity %s generated %s comment %s', c.oid::regclass,
                  a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                  a.attidentity, a.attgenerated, col_description(c.oid, a.attnum))
      FROM rel AS c JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef AS ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('column of type %s.%s %s', t.oid::regtype, a.attname, format_type(a.atttypid, a.atttypmod))
      FROM pg_type AS t JOIN members AS m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
      JOIN pg_attribute AS a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s on %s: %s', co.conname, co.conrelid::regclass, pg_get_constraintdef(co.oid))
      FROM pg_constraint AS co JOIN rel AS c ON c.oid = co.conrelid
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
      FROM pg_index AS i JOIN rel AS c ON c.oid = i.indrelid
    UNION ALL
    SELECT format('trigger %s', pg_get_triggerdef(tg.oid))
      FROM pg_trigger AS tg JOIN rel AS c ON c.oid = tg.tgrelid WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT format('view %s: %s', c.oid::regclass, md5(pg_get_viewdef(c.oid))) FROM rel AS c WHERE c.relkind = 'v'
    UNION ALL
    SELECT format('schema %s owner-is-extension-owner %s acl %s comment %s', n.nspname,
                  n.nspowner = (SELECT extowner FROM pg_extension WHERE extname = 'segment'), n.nspacl,
                  obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace AS n WHERE n.nspname IN ('segment', 'segment_internal')
    UNION ALL
    SELECT format('config %s %s', x.cfg::regclass, x.cond)
      FROM pg_extension AS e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond) WHERE e.extname = 'segment'
    UNION ALL
    SELECT format('cast %s -> %s %s %s', c.castsource::regtype, c.casttarget::regtype, c.castcontext, c.castmethod)
      FROM pg_cast AS c JOIN members AS m ON m.classid = 'pg_cast'::regclass AND m.objid = c.oid
) AS facts
ORDER BY fact COLLATE "C";
