#!/usr/bin/env python3
# Usage: python3 scripts/upgrade_script.py .   (after make sql/segment--0.2.sql; docs/testing.md)
"""Write sql/segment--0.1--0.2.sql: its hand-written head (sql/upgrade/segment--0.1--0.2.head.sql) and,
generated from the 0.2 install script, every function, aggregate, view,
comment and privilege statement as CREATE OR REPLACE (objects 0.1 had keep
their OIDs, so what depends on them -- views, triggers, aggregates -- holds)."""
import re, sys
root = sys.argv[1]
src = open(f'{root}/sql/segment--0.2.sql').read()

def statements(s):
    out = []; i = 0; start = 0; n = len(s)
    while i < n:
        c = s[i]
        if s.startswith('--', i):
            j = s.find('\n', i); i = n if j < 0 else j + 1; continue
        if s.startswith('/*', i):
            i = s.find('*/', i) + 2; continue
        if c == "'":
            i += 1
            while i < n:
                if s[i] == "'" and i + 1 < n and s[i + 1] == "'": i += 2; continue
                if s[i] == "'": break
                i += 1
            i += 1; continue
        if c == '$':
            m = re.match(r'\$[A-Za-z_0-9]*\$', s[i:])
            if m:
                tag = m.group(0); j = s.find(tag, i + len(tag)); i = j + len(tag); continue
        if c == ';':
            out.append(s[start:i + 1]); start = i + 1
        i += 1
    return out

def strip_comments(st):
    lines = st.split('\n')
    while lines and (lines[0].strip() == '' or lines[0].lstrip().startswith('--')):
        lines.pop(0)
    return '\n'.join(lines)

body = []
skipped = {}
for st in statements(src):
    t = strip_comments(st)
    if not t.strip():
        continue
    head = ' '.join(t.split()[:3]).upper()
    if t.startswith('\\echo'):
        continue
    if re.match(r'CREATE FUNCTION ', t):
        body.append('CREATE OR REPLACE FUNCTION ' + t[len('CREATE FUNCTION '):])
    elif re.match(r'CREATE AGGREGATE ', t):
        body.append('CREATE OR REPLACE AGGREGATE ' + t[len('CREATE AGGREGATE '):])
    elif re.match(r'CREATE VIEW ', t):
        body.append('CREATE OR REPLACE VIEW ' + t[len('CREATE VIEW '):])
    elif re.match(r'(COMMENT ON (FUNCTION|AGGREGATE|VIEW|TABLE|TYPE|SCHEMA|COLUMN)|REVOKE|GRANT|DO )', t):
        body.append(t)
    else:
        key = ' '.join(t.split()[:2])
        skipped[key] = skipped.get(key, 0) + 1
head = open(f'{root}/sql/upgrade/segment--0.1--0.2.head.sql').read()
with open(f'{root}/sql/segment--0.1--0.2.sql', 'w') as f:
    f.write(head)
    f.write('\n-- Every function, aggregate, view, comment and privilege of 0.2, as CREATE\n'
            '-- OR REPLACE: the same definitions as sql/install/ (objects of 0.1 keep their\n'
            '-- OIDs, so the views, triggers and aggregates that use them hold).\n\n')
    f.write('\n\n'.join(body) + '\n')
print('statements:', len(body), 'skipped:', skipped, file=sys.stderr)
