#!/usr/bin/python3
"""SQL-level fuzzer for the C functions of the segment extension.

Run by scripts/fuzz.sh against a throwaway cluster (never against a database
you care about: it crashes backends and kills hung ones).  It

  * finds its targets in the catalog: every C function of schema "segment"
    that SQL can call (no "internal" argument or result), plus the input
    function of each base type (through a cast);
  * builds valid states, models and summaries with the extension's own
    aggregates over seeded data, then mutates them (NaN, infinities, -0,
    huge, negative and fractional values, truncated and extended arrays,
    NULL elements, multi-dimensional arrays and odd lower bounds, damaged
    JSON models, composites with NULL or foreign fields);
  * calls each target directly and, for the float8[] transition, combine
    and final functions, from inside an aggregate of the caller's own, as
    any role may (CREATE AGGREGATE ... sfunc = array_cat ... finalfunc =
    segment.X, or sfunc = segment.X_trans with a crafted initcond);
  * classifies each call: ok, clean error (a SQLSTATE other than XX000),
    internal error (XX000), timeout (57014: the statement ran past
    statement_timeout), hang (the backend ignored the cancel: it is killed
    with SIGKILL), crash (the backend died: the postmaster log names the
    signal).  The server restarts itself after a crash; the run goes on.

The inputs depend on the seed only (not on the outcomes), so a run is
reproducible, as long as the seed states hold no uninitialised memory: the
seed aggregates are run twice, and a state whose elements differ between the
runs (or hold subnormal doubles such as addresses) is itself a finding
("leak"); such elements are zeroed in the seeds, which makes today's runs
nearly, not exactly, repeatable.  Findings (crash, hang, timeout, XX000,
leak) are written as self-contained SQL reproducers, one line each, one per
function, outcome and message, their arrays shortened (within
--reduce-time) while the failure stays the same.  Exit status 1 if there
are any.
"""

import argparse
import json
import math
import os
import random
import re
import signal
import sys
import threading
import time
from collections import Counter, defaultdict

import psycopg2
import psycopg2.extensions

# ---------------------------------------------------------------- values

SPECIAL_FLOATS = ['NaN', 'Infinity', '-Infinity', '-0', '0', '1e308', '-1e308',
                  '5e-324', '-1', '-0.5', '0.5', '1.5', '2147483648', '-2147483649',
                  '4294967296', '9.3e18', '1.8446744073709552e19', '1e16', '1e-300', '3']
SPECIAL_INTS = ['0', '-1', '1', '2', '2147483647', '-2147483648', '1000000', '65536']
SPECIAL_BIGINTS = SPECIAL_INTS + ['9223372036854775807', '-9223372036854775808']
NUMERICS = ['0', '12.50', '-5', 'NaN', '1e100', '1e-100', '-0', '99999999999999999999.99',
            '0.000001', '1']
TIMESTAMPS = ['2025-06-30 12:00:00+00', '2025-01-01 00:00:00+00', '2024-02-29 23:59:59+00',
              'infinity', '-infinity', '4714-11-24 00:00:00+00 BC',
              '294276-12-31 23:59:59+00', '1970-01-01 00:00:00+00', '2000-01-01 00:00:00+00']
INTERVALS = ['30 days', '1 month', '0', '-1 day', '1 microsecond', '178000000 years',
             '-178000000 years', '1 mon -30 days', '90 days', '1 day']
WORDS = ['visit', 'product_view', 'cart_add', 'checkout', 'newsletter_open', 'subscribe',
         'unsubscribe', 'day', 'week', 'month', 'year', 'UTC', 'Europe/Paris', 'lloyd',
         'hamerly', 'memory', 'k-means++', 'random', 'none', 'ignore', '', ' ', 'NULL', 'NaN',
         '%s%n', 'x' * 300, 'é\u00e9\u4e2d', 'p1', 'p2', 'a,b', '{', '"', '\\', "'"]
JSON_KEYS = ['version', 'k', 'dim', 'n', 'inertia', 'iterations', 'n_init', 'max_iter', 'tol',
             'tol_abs', 'seed', 'algorithm', 'method', 'standardize', 'log1p', 'center',
             'scale', 'sizes', 'centroids', 'init', 'init_sample', 'silhouette_sample',
             'workers', 'restarts', 'session', 'visit', 'product_view', 'cart_add',
             'checkout', 'newsletter_open', 'booleans', 'numbers', 'kind', 'step', 'x']


def q(text):
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def float_text(x):
    if isinstance(x, str):
        return x
    if math.isnan(x):
        return 'NaN'
    if math.isinf(x):
        return 'Infinity' if x > 0 else '-Infinity'
    if x == 0 and math.copysign(1, x) < 0:
        return '-0'
    return repr(x)


def short(sig):
    """segment[_internal].f(double precision[],...) -> f(float8[],...)"""
    for long_name, abbrev in (('double precision', 'float8'), ('timestamp with time zone',
                              'timestamptz'), ('segment_internal.', ''), ('segment.', ''), ('integer', 'int'),
                              ('boolean', 'bool')):
        sig = sig.replace(long_name, abbrev)
    return sig


def parse_float_array(text):
    """'{1,2,NaN}' (one dimension, as the seeds are) -> list of str/None."""
    body = text.strip()[1:-1]
    if not body:
        return []
    return [None if e == 'NULL' else e for e in body.split(',')]


class Gen:
    """Every random choice goes through self.r, seeded once."""

    def __init__(self, seed, seeds, composites):
        self.r = random.Random(seed)
        self.seeds = seeds            # family -> list of float8[] texts
        self.composites = composites  # type -> (fields [(name,type)], list of value lists)

    def chance(self, p):
        return self.r.random() < p

    def float8(self):
        r = self.r
        c = r.random()
        if c < 0.45:
            return r.choice(['0', '1', '2', '3', '5', '10', '30.5', '100', '365'])
        if c < 0.65:
            return float_text(round(r.uniform(-5, 400), r.choice([0, 1, 3])))
        return r.choice(SPECIAL_FLOATS)

    def scalar(self, typ):
        """A SQL expression of type typ (a format_type name)."""
        r = self.r
        if typ in ('double precision', 'real'):
            v = q(self.float8())
        elif typ in ('integer', 'smallint'):
            v = r.choice(SPECIAL_INTS) if self.chance(0.4) else str(r.randint(0, 12))
        elif typ == 'bigint':
            v = r.choice(SPECIAL_BIGINTS) if self.chance(0.4) else str(r.randint(0, 50))
        elif typ == 'numeric':
            v = q(r.choice(NUMERICS))
        elif typ == 'boolean':
            v = r.choice(['true', 'false'])
        elif typ == 'text':
            v = q(self.text())
        elif typ == 'jsonb':
            v = q(json.dumps(self.json_value(0, True)))
        elif typ == 'timestamp with time zone':
            v = q(r.choice(TIMESTAMPS) if self.chance(0.4) else
                  '2025-%02d-%02d %02d:00:00+00' % (r.randint(1, 12), r.randint(1, 28),
                                                    r.randint(0, 23)))
        elif typ == 'date':
            v = q(r.choice(['2025-06-30', 'infinity', '-infinity', '2000-01-01']))
        elif typ == 'interval':
            v = q(r.choice(INTERVALS))
        elif typ == 'double precision[]':
            v = self.float_array(None)
        elif typ.endswith('[]'):
            v = self.array(typ[:-2])
        elif typ == 'segment.kmeans_model':
            v = q(self.kmeans_model())
        elif typ == 'segment.time_zone':
            v = q(r.choice(['UTC', 'Europe/Paris', 'America/New_York', '', 'Mars/Olympus',
                            '+05:30', 'x' * 100, 'PST8PDT', 'localtime']))
        elif typ in self.composites:
            return self.composite(typ)
        else:
            return 'NULL::' + typ
        return v + '::' + typ

    def value(self, typ, null_p=0.08):
        if self.chance(null_p):
            return 'NULL::' + typ
        return self.scalar(typ)

    def text(self):
        r = self.r
        c = r.random()
        if c < 0.7:
            return r.choice(WORDS)
        if c < 0.85:
            return ''.join(chr(r.randint(32, 126)) for _ in range(r.randint(0, 20)))
        return r.choice(WORDS) * r.randint(2, 2000)

    def json_value(self, depth, top=False):
        r = self.r
        c = r.random()
        if top and c < 0.75:
            return {r.choice(JSON_KEYS): self.json_value(depth + 1)
                    for _ in range(r.randint(0, 4))}
        if c < 0.3:
            return r.choice([0, 1, -1, 2, 3, 0.5, 1e308, -1e308, 2**31, 2**63, 10**30, 1e-9, 7])
        if c < 0.45:
            return r.choice(['NaN', 'Infinity', 'lloyd', 'hamerly', 'memory', 'k-means++',
                             'random', '', 'day', '1'])
        if c < 0.6:
            return r.choice([True, False, None])
        if depth < 3 and c < 0.8:
            return [self.json_value(depth + 1) for _ in range(r.randint(0, 4))]
        if depth < 3:
            return {r.choice(JSON_KEYS): self.json_value(depth + 1)
                    for _ in range(r.randint(0, 3))}
        return 0

    def array(self, elem):
        r = self.r
        n = r.choice([0, 1, 2, 3, 5, 40])
        items = []
        for _ in range(n):
            if self.chance(0.1):
                items.append('NULL::' + elem)
            else:
                items.append(self.scalar(elem))
        if not items:
            return "'{}'"
        return 'ARRAY[' + ','.join(items) + ']'

    # -- float8[] states --------------------------------------------------

    def float_array(self, family):
        """A float8[] literal: a seed state of the family (or of any), mutated."""
        return q(self.float_body(family)) + '::float8[]'

    def float_body(self, family):
        """The text of such an array."""
        r = self.r
        pool = self.seeds.get(family) if family else None
        if not pool or self.chance(0.15):
            pool = [s for ss in self.seeds.values() for s in ss]
        if not family and self.chance(0.5):     # a point, not a state
            elems = [self.float8() for _ in range(r.choice([0, 1, 2, 2, 3, 3, 4, 1000]))]
        elif not pool or self.chance(0.1):
            elems = [self.float8() for _ in range(r.choice([0, 1, 2, 3, 6, 9, 12, 30]))]
        else:
            elems = list(parse_float_array(r.choice(pool)))
        for _ in range(r.choice([0, 1, 1, 2, 2, 3, 5])):
            elems = self.mutate_floats(elems)
        return self.array_text(elems)

    def mutate_floats(self, e):
        r = self.r
        op = r.randrange(11)
        i = r.randrange(len(e)) if e else 0
        if not e and op < 8:
            return [self.float8()]
        if op == 0:
            e[i] = r.choice(SPECIAL_FLOATS)
        elif op == 1:                       # counts and sizes sit at the front
            e[min(i, r.randrange(9))] = r.choice(SPECIAL_FLOATS)
        elif op == 2:
            try:
                e[i] = float_text(-float(e[i]))
            except (TypeError, ValueError):
                e[i] = '-1'
        elif op == 3:
            try:
                e[i] = float_text(float(e[i]) + r.choice([0.5, 1, -1, 1000, 2**31]))
            except (TypeError, ValueError, OverflowError):
                e[i] = '0.5'
        elif op == 4:
            e[i] = None
        elif op == 5:
            e = e[:r.randrange(len(e) + 1)]
        elif op == 6:
            e = e + [self.float8() for _ in range(r.choice([1, 2, 3, 10]))]
        elif op == 7:
            j = r.randrange(len(e))
            e[i], e[j] = e[j], e[i]
        elif op == 8:
            e = e + e[:r.randrange(len(e) + 1)]
        elif op == 9:
            e = [e[0]] * r.choice([100, 5000]) if e else e
        else:
            e = [r.choice(SPECIAL_FLOATS) if self.chance(0.3) else x for x in e]
        return e

    def array_text(self, elems):
        r = self.r
        txt = [('NULL' if x is None else x) for x in elems]
        shape = r.random()
        if shape < 0.08 and len(txt) >= 2 and len(txt) % 2 == 0:
            half = len(txt) // 2
            body = '{{' + ','.join(txt[:half]) + '},{' + ','.join(txt[half:]) + '}}'
        elif shape < 0.12 and txt:
            body = '[0:%d]={' % (len(txt) - 1) + ','.join(txt) + '}'
        elif shape < 0.14:
            body = '{{' + ','.join(txt) + '}}' if txt else '{}'
        else:
            body = '{' + ','.join(txt) + '}'
        return body

    # -- models and composites --------------------------------------------

    def kmeans_model(self):
        r = self.r
        pool = self.seeds.get('kmeans_model') or ['{}']
        text = r.choice(pool)
        if self.chance(0.2):
            return text
        if self.chance(0.85):
            try:
                doc = json.loads(text)
                for _ in range(r.choice([1, 1, 1, 2])):
                    doc = self.mutate_json(doc)
                text = json.dumps(doc)
            except ValueError:
                pass
        else:
            for _ in range(r.choice([1, 2])):
                text = self.mutate_text(text)
        return text

    def mutate_json(self, doc):
        r = self.r
        if not isinstance(doc, dict) or not doc:
            return self.json_value(0, True)
        key = r.choice(list(doc))
        val = doc[key]
        op = r.randrange(6)
        if op == 0:
            del doc[key]
        elif op == 1:
            doc[key] = self.json_value(1)
        elif op == 2 and isinstance(val, list) and val:
            if self.chance(0.5):
                doc[key] = val[:r.randrange(len(val))]
            else:
                doc[key] = val + val[:1] * r.randint(1, 3)
        elif op == 3 and isinstance(val, list) and val:
            i = r.randrange(len(val))
            if isinstance(val[i], list) and val[i]:
                row = list(val[i])
                row[r.randrange(len(row))] = r.choice([None, 1e308, -1e308, 'NaN', [], 2**63])
                if self.chance(0.3):
                    row = row[:-1]
                val[i] = row
            else:
                val[i] = r.choice([None, 1e308, -1, 0, 'x', [], 2**31, 0.5])
        elif op == 4:
            doc[key] = r.choice([0, -1, 1, 2**31, 2**31 - 1, 10**6, 0.5, 1e308, -0.0, None, ''])
        else:
            doc[r.choice(JSON_KEYS)] = self.json_value(1)
        return doc

    def mutate_text(self, text):
        r = self.r
        if not text:
            return self.text()
        i = r.randrange(len(text))
        op = r.randrange(4)
        if op == 0:
            return text[:i]
        if op == 1:
            return text[:i] + text[i + r.randint(1, 20):]
        if op == 2:
            return text[:i] + r.choice(['-', '9' * 40, 'NaN', ',', '[', ']', '"', 'e999',
                                        '\\u0000', '}']) + text[i:]
        return text[:i] + text[i:] * 2

    def composite(self, typ):
        r = self.r
        fields, pool = self.composites[typ]
        if self.chance(0.05):
            return 'NULL::' + typ
        base = r.choice(pool) if pool else [None] * len(fields)
        allnull = self.chance(0.1)
        exprs = []
        for (name, ftyp), val in zip(fields, base):
            if allnull:
                e = 'NULL::' + ftyp
            elif self.chance(0.25):
                e = self.value(ftyp, null_p=0.4)
            elif val is None:
                e = 'NULL::' + ftyp
            else:
                e = q(val) + '::' + ftyp
            exprs.append(e)
        if allnull and exprs and self.chance(0.7):
            # the shape: all NULL but one timestamp
            k = [i for i, (_, t) in enumerate(fields) if t.startswith('timestamp')]
            if k:
                i = r.choice(k)
                exprs[i] = q('2025-06-30 12:00:00+00') + '::' + fields[i][1]
        return 'ROW(' + ','.join(exprs) + ')::' + typ


# ---------------------------------------------------------------- catalog

def discover(cur):
    """C functions of schemas segment and segment_internal that SQL can call, with their families."""
    cur.execute("""
        SELECT p.oid::regprocedure::text, p.proname,
               ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) AS t),
               format_type(p.prorettype, NULL), p.proisstrict
          FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
         WHERE p.pronamespace IN ('segment'::regnamespace, 'segment_internal'::regnamespace)
           AND l.lanname = 'c'
           AND p.prokind = 'f'
         ORDER BY 1""")
    funcs = cur.fetchall()
    # the float8[] aggregates name the families of their support functions
    cur.execute("""
        SELECT DISTINCT aggtransfn::oid::regprocedure::text, aggtransfn::text,
               aggcombinefn::oid, aggcombinefn::text, aggfinalfn::oid, aggfinalfn::text
          FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
         WHERE p.pronamespace = 'segment'::regnamespace
           AND a.aggtranstype = 'float8[]'::regtype""")
    family = {}
    for transsig, transname, combid, combname, finid, finname in cur.fetchall():
        fam = transname.split('.')[-1]
        family[transname.split('.')[-1]] = fam
        if combid:
            family.setdefault(combname.split('.')[-1], fam)
        if finid:
            family.setdefault(finname.split('.')[-1], fam)
    cur.execute("""
        SELECT t.oid::regtype::text, t.typinput::text
          FROM pg_type t
         WHERE t.typnamespace = 'segment'::regnamespace AND t.typtype = 'b'
           AND t.typelem = 0""")
    base_types = cur.fetchall()
    targets = []
    skipped = []
    for sig, name, args, ret, strict in funcs:
        if 'internal' in args or ret in ('internal', 'trigger') or 'cstring' in args \
                or ret == 'cstring':
            skipped.append(sig)
            continue
        fam = family.get(name)
        targets.append(dict(sig=sig, name=name, args=args, ret=ret, mode='direct', family=fam))
        f8 = 'double precision[]'
        if args == [f8] and ret != f8:
            targets.append(dict(sig=sig, name=name, args=args, ret=ret, mode='aggfinal',
                                family=fam))
        if args == [f8, f8] and ret == f8:
            targets.append(dict(sig=sig, name=name, args=args, ret=ret, mode='aggcombine',
                                family=fam))
        if len(args) >= 2 and args[0] == f8 and ret == f8 and args != [f8, f8]:
            targets.append(dict(sig=sig, name=name, args=args, ret=ret, mode='aggtrans',
                                family=fam))
    for typ, infunc in base_types:
        targets.append(dict(sig=infunc + '(cstring)', name=infunc, args=[typ], ret=typ,
                            mode='input', family=None))
    return targets, skipped


def composite_types(cur):
    cur.execute("""
        SELECT t.oid::regtype::text,
               ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = t.typrelid
                       AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
               ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                      WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                      ORDER BY a.attnum)
          FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
         WHERE t.typnamespace = 'segment'::regnamespace AND c.relkind = 'c'""")
    return {typ: list(zip(names, types)) for typ, names, types in cur.fetchall()}


# Seed data: states of each float8[] aggregate family, models and
# summaries from the extension's own aggregates over seeded random data.
SEED_SETUP = """
SELECT setseed(0.42);
CREATE TEMP TABLE fz_pts AS
  SELECT g, ARRAY[round((random() * 10 + (g % 3) * 8)::numeric, 3)::float8,
                  round((random() * 10)::numeric, 3)::float8] AS p2,
         ARRAY[round((random() * 100)::numeric, 2)::float8] AS p1,
         ARRAY[random(), random() * 5, (g % 4)::float8] AS p3
    FROM generate_series(1, 60) AS g;
CREATE TEMP TABLE fz_cust AS
  SELECT g, floor(random() * 6)::float8 AS x, 0::float8 AS t_x, 30 + floor(random() * 40)::float8 AS t_cal,
         round((5 + random() * 80)::numeric, 2)::float8 AS m
    FROM generate_series(1, 50) AS g;
UPDATE fz_cust SET t_x = CASE WHEN x = 0 THEN 0 ELSE round((random() * t_cal)::numeric, 1)::float8 END;
CREATE TEMP TABLE fz_orders AS
  SELECT g % 7 AS c, timestamptz '2025-01-01 00:00+00' + (g * 37 % 170) * interval '1 day' AS at,
         (10 + g % 13)::numeric AS amount, (ARRAY['visit','product_view','cart_add','checkout',
         'newsletter_open'])[1 + g % 5] AS kind, 'p' || (g % 4) AS product
    FROM generate_series(1, 80) AS g;
"""

# family (transition function name) -> query over the state aggregate %s
FAMILY_SEEDS = {
    'breaks_trans': ["SELECT %s(p1[1], 4) FROM fz_pts",
                     "SELECT %s(p1[1]) FROM fz_pts WHERE g < 5",
                     "SELECT %s(p1[1], 2) FROM fz_pts WHERE g <= 2"],
    'kmeans_trans': ["SELECT %s(p2, 3) FROM fz_pts WHERE g < 20",
                     "SELECT %s(p3, 2, '{\"seed\": 3}') FROM fz_pts WHERE g < 6",
                     "SELECT %s(p1, 2) FROM fz_pts WHERE g <= 3"],
    'kmeans_moments_trans': [
        "SELECT %s(p2, (SELECT segment.kmeans(p2, 3, '{\"seed\": 1}') FROM fz_pts)) FROM fz_pts",
        "SELECT %s(p1, (SELECT segment.kmeans(p1, 2, '{\"seed\": 1}') FROM fz_pts)) FROM fz_pts WHERE g <= 3"],
    'kmeans_step_trans': [
        "SELECT %s(p2, (SELECT segment.kmeans(p2, 3, '{\"seed\": 1}') FROM fz_pts)) FROM fz_pts",
        "SELECT %s(p1, (SELECT segment.kmeans(p1, 2, '{\"seed\": 1}') FROM fz_pts)) FROM fz_pts WHERE g <= 3"],
    'bgnbd_fit_trans': ["SELECT %s(x, t_x, t_cal) FROM fz_cust WHERE g <= 4",
                        "SELECT %s(x, t_x, t_cal) FROM fz_cust WHERE g <= 12",
                        "SELECT %s(x, t_x, t_cal, 2) FROM fz_cust WHERE g <= 3"],
    'gamma_gamma_fit_trans': ["SELECT %s(x, m) FROM fz_cust WHERE x > 0 AND g <= 6",
                              "SELECT %s(x, m, 3) FROM fz_cust WHERE x > 0 AND g < 15"],
    'clv_summary_trans': [
        "SELECT %s(at, amount, '2025-07-01 00:00+00') FROM fz_orders WHERE c = 1",
        "SELECT %s(at, amount, '2025-07-01 00:00+00') FROM fz_orders WHERE c = 2 AND g < 20",
        "SELECT %s(at, amount, '2025-07-01 00:00+00', 'week') FROM fz_orders WHERE c = 3 AND g < 30"],
}

MODEL_SEEDS = [
    "SELECT segment.kmeans(p2, 3, '{\"seed\": 1}')::text FROM fz_pts",
    "SELECT segment.kmeans(p1, 2, '{\"seed\": 2, \"standardize\": true}')::text FROM fz_pts",
    "SELECT segment.kmeans(p3, 4, '{\"seed\": 5, \"algorithm\": \"lloyd\"}')::text FROM fz_pts",
]

COMPOSITE_SEEDS = {
    'segment.bgnbd_model': ["SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM fz_cust"],
    'segment.gamma_gamma_model': ["SELECT segment.gamma_gamma_fit(x, m) FROM fz_cust WHERE x > 0"],
    'segment.event_summary': [
        "SELECT segment.events(kind, at, product, '2025-07-01 00:00+00', '180 days') FROM fz_orders GROUP BY c"],
    'segment.clv_summary': [
        "SELECT segment.clv_summary(at, amount, '2025-07-01 00:00+00') FROM fz_orders GROUP BY c"],
    'segment.rfm_summary': ["SELECT segment.rfm(at, amount) FROM fz_orders GROUP BY c"],
    'segment.contact_summary': [
        "SELECT segment.contacts(at, amount > 15, '2025-07-01 00:00+00', '90 days') FROM fz_orders GROUP BY c"],
    'segment.restock_summary': ["SELECT segment.restock(at, amount::float8) FROM fz_orders GROUP BY c"],
    'segment.order_line_summary': [
        "SELECT segment.order_lines(at, '2025-03-01 00:00+00', product, 20) FROM fz_orders GROUP BY c"],
}


def has_garbage(text):
    """Subnormal doubles: addresses and other bytes no computation gives."""
    for e in parse_float_array(text):
        try:
            x = float(e)
        except (TypeError, ValueError):
            continue
        if x != 0 and abs(x) < 2.2250738585072014e-308:
            return True
    return False


def scrub(text, other):
    """The state with its uninitialised elements zeroed (those that differ
    from the other run's, and tiny ones no computation gives), so that the seeds, and the run,
    do not depend on the server's memory."""
    out = []
    b = parse_float_array(other) if other else []
    for n, e in enumerate(parse_float_array(text)):
        try:
            x = float(e)
            if (x != 0 and abs(x) < 1e-200) or n >= len(b) or b[n] != e:
                e = '0'
        except (TypeError, ValueError):
            pass
        out.append('NULL' if e is None else e)
    return '{' + ','.join(out) + '}'


def collect_seeds(conn, cur, log):
    """-> seeds, composites, leaks: states whose text shows uninitialised
    memory (differs between two identical runs, or holds subnormals)."""
    cur.execute(SEED_SETUP)
    seeds = defaultdict(list)
    leaks = []
    cur.execute("""
        SELECT DISTINCT aggtransfn::text, format_type(aggtranstype, NULL),
               ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) AS t)
          FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
         WHERE p.pronamespace = 'segment'::regnamespace
           AND a.aggtranstype = 'float8[]'::regtype""")
    for n, (transfn, _, args) in enumerate(cur.fetchall()):
        fam = transfn.split('.')[-1]
        agg = 'pg_temp.fz_state_%d' % n
        cur.execute('CREATE AGGREGATE %s(%s) (sfunc = %s, stype = float8[])'
                    % (agg, ', '.join(args), transfn))
        for sql in FAMILY_SEEDS.get(fam, []):
            try:
                cur.execute('SAVEPOINT s')
                texts = []
                for pattern in ('ff', '55'):
                    # fill the memory the run will allocate from with a
                    # pattern: the elements the two runs disagree on were
                    # never written
                    cur.execute("SELECT count(decode(repeat('%s', 100000 + g), 'hex')) "
                                "FROM generate_series(1, 40) AS g" % pattern)
                    cur.execute('SELECT v::text FROM (%s) AS s(v)' % (sql % agg))
                    texts.append([v for (v,) in cur.fetchall()])
                cur.execute('RELEASE s')
            except psycopg2.Error:
                cur.execute('ROLLBACK TO s')
                continue
            if fam not in [f for f, _ in leaks] and \
                    (texts[0] != texts[1] or any(has_garbage(v) for v in texts[0] if v)):
                leaks.append((fam, 'CREATE AGGREGATE pg_temp.fz_state(%s) (sfunc = %s, '
                              'stype = float8[]); %s' % (', '.join(args), transfn,
                                                         sql % 'pg_temp.fz_state')))
            for v, w in zip(texts[0], texts[1]):
                v = scrub(v, w) if v else v
                if v is not None and v not in seeds[fam]:
                    seeds[fam].append(v)
    for sql in MODEL_SEEDS:
        cur.execute(sql)
        seeds['kmeans_model'] += [v for (v,) in cur.fetchall() if v]
    comps = composite_types(cur)
    composites = {}
    for typ, fields in comps.items():
        pool = []
        for sql in COMPOSITE_SEEDS.get(typ, []):
            cols = ', '.join('(v).%s::text' % psycopg2.extensions.quote_ident(f, cur)
                             for f, _ in fields)
            try:
                cur.execute('SAVEPOINT s')
                cur.execute('SELECT %s FROM (%s) AS s(v)' % (cols, sql))
                pool += [list(row) for row in cur.fetchall()]
                cur.execute('RELEASE s')
            except psycopg2.Error as e:
                log('seed query for %s failed: %s' % (typ, e.pgerror))
                cur.execute('ROLLBACK TO s')
        composites[typ] = (fields, pool)
    conn.rollback()
    return dict(seeds), composites, leaks


# ---------------------------------------------------------------- statements

PER_ROW = ('double precision', 'numeric')


def statement(gen, t, idx):
    """(SQL the fuzzer runs, self-contained reproducer) for target t."""
    mode = t['mode']
    fn = t['sig'].split('(')[0]
    if mode == 'input':
        v = q(gen.kmeans_model()) if t['ret'] == 'segment.kmeans_model' \
            else q(gen.text())
        sql = 'SELECT (%s::%s)::text' % (v, t['ret'])
        return sql, sql + ';'
    if mode == 'direct':
        args = []
        for i, a in enumerate(t['args']):
            if a == 'double precision[]':
                args.append('NULL::float8[]' if gen.chance(0.05) else
                            gen.float_array(t['family'] if i == 0 else None))
            else:
                args.append(gen.value(a))
        sql = 'SELECT %s(%s)' % (fn, ', '.join(args))
        return sql, sql + ';'
    if mode == 'aggfinal':
        state = gen.float_array(t['family'])
        agg = 'fz_final_%d' % idx
        create = ('CREATE AGGREGATE pg_temp.%s(float8[]) (sfunc = array_cat, stype = float8[], '
                  "initcond = '{}', finalfunc = %s)" % (agg, fn))
        call = 'SELECT pg_temp.%s(%s)' % (agg, state)
        return create + '; ' + call, create + '; ' + call + ';'
    if mode == 'aggcombine':
        a, b = gen.float_array(t['family']), gen.float_array(t['family'])
        agg = 'fz_combine_%d' % idx
        create = ('CREATE AGGREGATE pg_temp.%s(float8[]) (sfunc = %s, stype = float8[])'
                  % (agg, fn))
        call = 'SELECT pg_temp.%s(s) FROM (VALUES (%s), (%s)) AS v(s)' % (agg, a, b)
        return create + '; ' + call, create + '; ' + call + ';'
    # aggtrans: the crafted state is the aggregate's initial condition
    state = gen.float_body(t['family'])
    rest = t['args'][1:]
    agg = 'fz_trans_%d' % idx
    init = ''
    if not gen.chance(0.05):
        init = ', initcond = %s' % q(state)
    create = ('CREATE AGGREGATE pg_temp.%s(%s) (sfunc = %s, stype = float8[]%s)'
              % (agg, ', '.join(rest), fn, init))
    rows = []
    fixed = [gen.value(a) for a in rest]
    for n in range(gen.r.choice([1, 1, 2, 3])):
        rows.append('(' + ', '.join(gen.value(a) if n == 0 or a in PER_ROW or gen.chance(0.1)
                                    else fixed[j] for j, a in enumerate(rest)) + ')')
    cols = ', '.join('a%d' % i for i in range(len(rest)))
    call = 'SELECT pg_temp.%s(%s) FROM (VALUES %s) AS v(%s)' % (agg, cols, ', '.join(rows), cols)
    return create + '; ' + call, create + '; ' + call + ';'


# ---------------------------------------------------------------- reduction

ARRAY_RE = re.compile(r"'(\{[^'{}]*\})'")
AGG_RE = re.compile(r'\bfz_(final|combine|trans)_\d+\b')


def same_failure(outcome, msg, want_outcome, want_norm):
    # a hang and a timeout are the same failure here: the statement did not
    # finish in time (whether the cancel then works depends on the load)
    if want_outcome in ('hang', 'timeout'):
        return outcome in ('hang', 'timeout')
    return outcome == want_outcome and re.sub(r'\d+', 'N', msg or '') == want_norm


def reduce_statement(runner, sql, outcome, norm, deadline):
    """Drop elements of the array literals of sql while the failure stays the
    same (halving chunks, then single elements), within the deadline."""
    tries = [0]

    def fails(candidate):
        tries[0] += 1
        renamed = AGG_RE.sub(lambda m: 'fz_%s_r%d' % (m.group(1), tries[0]), candidate)
        o, _, m, _ = runner.run(renamed)
        return same_failure(o, m, outcome, norm)

    k = 0
    while time.time() < deadline:
        arrays = list(ARRAY_RE.finditer(sql))
        if k >= len(arrays):
            break
        m = arrays[k]
        elems = m.group(1)[1:-1].split(',') if m.group(1) != '{}' else []
        chunk = max(1, len(elems) // 2)
        while chunk >= 1 and time.time() < deadline:
            start = 0
            while start < len(elems) and time.time() < deadline:
                cand = elems[:start] + elems[start + chunk:]
                text = sql[:m.start(1)] + '{' + ','.join(cand) + '}' + sql[m.end(1):]
                if fails(text):
                    elems, sql = cand, text
                    m = list(ARRAY_RE.finditer(sql))[k]
                else:
                    start += chunk
            chunk //= 2
        k += 1
    return sql


# ---------------------------------------------------------------- runner

class Runner:
    def __init__(self, dsn, timeout, grace, server_log, log):
        self.dsn, self.timeout, self.grace = dsn, timeout, grace
        self.server_log, self.log = server_log, log
        self.conn = None

    def connect(self, wait=90):
        deadline = time.time() + wait
        while True:
            try:
                self.conn = psycopg2.connect(self.dsn)
                self.conn.autocommit = True
                with self.conn.cursor() as cur:
                    cur.execute("SET statement_timeout = %d; SET client_min_messages = error;"
                                " SET extra_float_digits = 1" % int(self.timeout * 1000))
                self.pid = self.conn.get_backend_pid()
                return
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def log_offset(self):
        try:
            return os.path.getsize(self.server_log)
        except OSError:
            return 0

    def signal_since(self, offset):
        """The postmaster's line about a backend that died, after offset."""
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                with open(self.server_log, 'rb') as f:
                    f.seek(offset)
                    text = f.read().decode('utf-8', 'replace')
            except OSError:
                return None
            m = re.search(r'was terminated by signal (\d+): ([^\n]*)', text)
            if m:
                return 'signal %s: %s' % (m.group(1), m.group(2).strip())
            m = re.search(r'terminated by exception[^\n]*|exited with exit code \d+', text)
            if m:
                return m.group(0)
            time.sleep(0.2)
        return None

    def run(self, sql):
        """-> (outcome, sqlstate, message, seconds)."""
        offset = self.log_offset()
        fired = threading.Event()
        pid = self.pid

        def watchdog():
            fired.set()
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        timer = threading.Timer(self.timeout + self.grace, watchdog)
        start = time.time()
        timer.start()
        try:
            with self.conn.cursor() as cur:
                # The server has run the output functions once the results
                # are here; psycopg2 would convert them (and fail on years
                # Python cannot hold), so they are not fetched.
                cur.execute(sql)
            outcome, code, msg = 'ok', None, None
        except psycopg2.Error as e:
            code = e.pgcode
            msg = (e.pgerror or str(e)).strip().split('\n')[0]
            if code is None:
                outcome = None
            elif code == 'XX000':
                outcome = 'internal'
            elif code == '57014':
                outcome = 'timeout'
            else:
                outcome = 'error'
        finally:
            timer.cancel()
        secs = time.time() - start
        if outcome is None or self.conn.closed:
            if fired.is_set():
                outcome, code, msg = 'hang', None, ('ignored the cancel after %.0f s: '
                                                    'killed with SIGKILL' % self.timeout)
            else:
                sig = self.signal_since(offset)
                outcome, code, msg = 'crash', None, sig or msg
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
            time.sleep(1)
            self.connect()
        return outcome, code, msg, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dsn', default='')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--count', type=int, default=5000)
    ap.add_argument('--time-limit', type=float, default=150)
    ap.add_argument('--timeout', type=float, default=2)
    ap.add_argument('--grace', type=float, default=5)
    ap.add_argument('--server-log', required=True)
    ap.add_argument('--findings', required=True)
    ap.add_argument('--reduce-time', type=float, default=60,
                    help='seconds spent shortening the reproducers')
    ap.add_argument('--verbose', action='store_true', help='print every statement')
    ap.add_argument('--only', default='', help='regular expression on the function name')
    args = ap.parse_args()

    def log(msg):
        print('==> ' + msg, file=sys.stderr, flush=True)

    runner = Runner(args.dsn, args.timeout, args.grace, args.server_log, log)
    runner.connect()
    conn = psycopg2.connect(args.dsn)
    cur = conn.cursor()
    targets, skipped = discover(cur)
    cur.execute('SELECT version()')
    version = cur.fetchone()[0]
    seeds, composites, leaks = collect_seeds(conn, cur, log)
    conn.close()
    if args.only:
        targets = [t for t in targets if re.search(args.only, t['name'])]
    if not targets:
        log('no targets')
        return 2
    log('%d targets (%d C functions, %d modes); skipped (internal or cstring): %s'
        % (len(targets), len({t['sig'] for t in targets}), len({t['mode'] for t in targets}),
           ', '.join(skipped) or 'none'))
    log('seeds: %s; composites with seeds: %s'
        % (', '.join('%s %d' % (k, len(v)) for k, v in sorted(seeds.items())),
           ', '.join('%s %d' % (k, len(v[1])) for k, v in sorted(composites.items()))))

    gen = Gen(args.seed, seeds, composites)
    per = defaultdict(Counter)
    states = Counter()
    findings = {}
    start = time.time()
    tried = 0
    order = list(range(len(targets)))
    for i in range(args.count):
        if time.time() - start > args.time_limit:
            log('time limit reached after %d inputs' % i)
            break
        if i % len(targets) == 0:
            gen.r.shuffle(order)
        t = targets[order[i % len(targets)]]
        sql, repro = statement(gen, t, i)
        outcome, code, msg, secs = runner.run(sql)
        tried += 1
        key = '%s [%s]' % (short(t['sig']), t['mode'])
        per[key][outcome] += 1
        if outcome == 'error':
            states[code] += 1
        if args.verbose:
            print('%s\t%s\t%s\t%s' % (key, outcome, msg, sql), flush=True)
        if outcome in ('internal', 'timeout', 'hang', 'crash'):
            norm = re.sub(r'\d+', 'N', msg or '')
            fkey = (key, outcome, norm)
            if fkey not in findings:
                log('%s in %s: %s (input %d)' % (outcome.upper(), key, msg, i))
            if fkey not in findings or len(repro) < len(findings[fkey][0]):
                findings[fkey] = (repro, msg, code, i)
        if (i + 1) % 250 == 0:
            log('%d inputs, %.0f s' % (i + 1, time.time() - start))
    elapsed = time.time() - start

    # shorter reproducers for the findings, within the reduction budget
    # (the worst first; a hang is killed sooner here)
    reduce_end = time.time() + args.reduce_time
    runner.grace = min(args.grace, 1.5)
    severity = {'crash': 0, 'hang': 1, 'timeout': 2, 'internal': 3}
    for fkey, (repro, msg, code, i) in sorted(findings.items(),
                                              key=lambda kv: (severity[kv[0][1]], kv[1][3])):
        if time.time() > reduce_end or '{' not in repro or 'non-aggregate' in fkey[2]:
            continue
        sql = repro[:-1]
        small = reduce_statement(runner, sql, fkey[1], fkey[2],
                                 min(reduce_end, time.time() + args.reduce_time / 4))
        if len(small) < len(sql):
            findings[fkey] = (small + ';', msg, code, i)
    reduced = time.time() - start - elapsed

    totals = Counter()
    for c in per.values():
        totals.update(c)
    setup = ' '.join(line.strip() for line in SEED_SETUP.strip().split('\n'))
    for fam, repro in leaks:
        totals['leak'] += 1
        findings[('%s [state]' % fam, 'leak', '')] = (
            setup + ' ' + repro + ';', 'the state returned to SQL holds uninitialised '
            'memory (it differs between two identical runs, or holds subnormal doubles such '
            'as addresses)', None, -1)
        log('LEAK in %s: its state shows uninitialised memory' % fam)
    print('\nfuzz summary: seed %d, %d inputs in %.0f s over %d targets (%s); '
          'reproducers shortened in %.0f s'
          % (args.seed, tried, elapsed, len(targets), version.split(' on ')[0], reduced))
    print('%-64s %5s %5s %5s %5s %5s %5s %5s' % ('target [mode]', 'tried', 'ok', 'error',
                                                 'XX000', 'tmout', 'hang', 'crash'))
    for key in sorted(per):
        c = per[key]
        print('%-64s %5d %5d %5d %5d %5d %5d %5d'
              % (key[:64], sum(c.values()), c['ok'], c['error'], c['internal'], c['timeout'],
                 c['hang'], c['crash']))
    print('%-64s %5d %5d %5d %5d %5d %5d %5d'
          % ('total', tried, totals['ok'], totals['error'], totals['internal'],
             totals['timeout'], totals['hang'], totals['crash']))
    print('clean errors by SQLSTATE: ' +
          (', '.join('%s %d' % kv for kv in sorted(states.items())) or 'none'))

    with open(args.findings, 'w') as f:
        f.write('-- Findings of scripts/fuzz.sh (seed %d, %d inputs, %.0f s, %s).\n'
                % (args.seed, tried, elapsed, version.split(' on ')[0]))
        f.write('-- Each reproducer is one line; run it in a throwaway database with the\n'
                '-- extension installed (psql -f).  The shortest input per function, outcome\n'
                '-- and message is kept.  Outcomes: crash (the backend died), hang (ignored\n'
                '-- statement_timeout and the cancel: killed with SIGKILL), timeout (57014),\n'
                '-- internal (XX000: a user-reachable elog(ERROR)), leak (a state returned to\n'
                '-- SQL by an aggregate of the caller\'s own holds uninitialised memory).\n')
        if not findings:
            f.write('-- none\n')
        for (key, outcome, _), (repro, msg, code, i) in sorted(
                findings.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            where = 'seed query' if i < 0 else 'input %d' % i
            f.write('\n-- %s in %s, %s: %s\n%s\n' % (outcome, key, where, msg, repro))
    print('states showing uninitialised memory (seed families): %d%s'
          % (len(leaks), (' (' + ', '.join(f for f, _ in leaks) + ')') if leaks else ''))
    bad = sum(totals[k] for k in ('internal', 'timeout', 'hang', 'crash', 'leak'))
    print('findings (%d distinct, %d inputs): %s' % (len(findings), bad, args.findings))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
