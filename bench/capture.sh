#!/usr/bin/env bash
# What the change capture of incremental refreshes costs the shop's writes:
# single-row INSERTs into an orders table with the capture triggers against
# the same table without them (pgbench, prepared, one client), a bulk INSERT
# of 100,000 rows, and single-row UPDATEs of the customers relation (also
# captured: its changed customers are rescored), each timed in the same run,
# interleaved.
#
#   bench/capture.sh          SECONDS_PER_RUN (default 10) per pgbench run, ROUNDS rounds
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
bench_cluster
psql_quiet <<'SQL' >/dev/null
CREATE EXTENSION segment;
CREATE TABLE captured (order_id bigserial PRIMARY KEY, customer_id integer NOT NULL,
                       ordered_at timestamptz NOT NULL, amount numeric(12,2) NOT NULL);
CREATE TABLE plain (LIKE captured INCLUDING ALL);
CREATE TABLE captured_customers (customer_id integer PRIMARY KEY, country text NOT NULL);
INSERT INTO captured_customers SELECT i, 'DE' FROM generate_series(1, 1000000) AS i;
CREATE TABLE plain_customers (LIKE captured_customers INCLUDING ALL);
INSERT INTO plain_customers SELECT * FROM captured_customers;
SELECT segment.configure('captured', 'customer_id', 'ordered_at', 'amount',
                         customers => 'captured_customers', customers_key => 'customer_id');
VACUUM ANALYZE;
SQL
work=$(mktemp -d)
chmod 755 "$work"
for t in captured plain; do
    printf '\\set c random(1, 1000000)\nINSERT INTO %s (customer_id, ordered_at, amount) VALUES (:c, now(), 42);\n' \
        "$t" >"$work/$t.sql"
    printf '\\set c random(1, 1000000)\nUPDATE %s_customers SET country = (ARRAY['"'"'DE'"'"', '"'"'FR'"'"'])[1 + :c %% 2] WHERE customer_id = :c;\n' \
        "$t" >"$work/${t}_customers.sql"
done
tps() {
    "$PG_BIN/pgbench" -n -M prepared -c 1 -T "$SECONDS_PER_RUN" -f "$work/$1.sql" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
bulk() {
    psql_quiet -At <<SQL | tail -n 1
SELECT clock_timestamp() AS t0 \\gset
INSERT INTO $1 (customer_id, ordered_at, amount)
SELECT 1 + i % 50000, now(), 42 FROM generate_series(1, 100000) AS i;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
SQL
}
tps plain >/dev/null        # warm-up
single=() ; bulks=() ; updates=()
# (each pair in both orders, alternately: the second run of a pair is slower)
pair() {
    local a b
    if [ $(($2 % 2)) -eq 1 ]; then a=$(tps "captured$1"); b=$(tps "plain$1")
    else b=$(tps "plain$1"); a=$(tps "captured$1"); fi
    echo "$a $b"
}
for round in $(seq 1 "$ROUNDS"); do
    single+=("$(pair '' "$round")")
    updates+=("$(pair _customers "$round")")
    bulks+=("$(bulk captured) $(bulk plain)")
done
rm -rf "$work"
echo
echo "Change-capture benchmark, PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $ROUNDS rounds"
bench_machine
printf '%s\n' "${single[@]}" | awk '{ r = $2 / $1; print "single-row INSERT, time with capture / without: " sprintf("%.3f", r) "x (tps " $1 " vs " $2 ")" }'
printf '%s\n' "${updates[@]}" | awk '{ r = $2 / $1; print "single-row UPDATE of the customers relation, time with capture / without: " sprintf("%.3f", r) "x (tps " $1 " vs " $2 ")" }'
printf '%s\n' "${bulks[@]}" | awk '{ print "INSERT of 100,000 rows (50,000 customers), with capture / without: " sprintf("%.3f", $1 / $2) "x (" $1 " s vs " $2 " s)" }'
