#!/usr/bin/env bash
# The incremental-refresh benchmark, on the generated shop of
# bench/generate.sql (orders in a plain table, so configure() sets up the
# change capture):
#   floor   a bare GROUP BY of the orders (bench/pipeline/floor.sql);
#   i1      an incremental refresh after 1% of the customers got an order;
#   i01     the same after 0.1%;
#   f       a full refresh (mode => 'full') of the same shop.
# The orders are added between the steps, untimed; as_of stays, so that a
# refresh costs what changed.  Every figure is a ratio to a baseline in the
# same run.
#
#   bench/incremental.sh small     10k customers
#   bench/incremental.sh large     1M customers, ~10M orders
#   EVENTS=1 bench/incremental.sh small
#                                  with an events source too (50 events per
#                                  customer, bench/events/generate.sql): the
#                                  customers who get an order get an event too
#   EVENTS=1 AS_OF_RULES=0 bench/incremental.sh small
#                                  the same without the built-in rules that
#                                  read as_of (Abandoned Cart, Indecisive,
#                                  Curious Prospect), so that refreshes rescore
#                                  only some customers
#   PRODUCTS=1 AS_OF_RULES=0 bench/incremental.sh large
#                                  with a products source too (order lines,
#                                  products: bench/sources/generate.sql, ~13M
#                                  lines at 1M customers, indexed by order):
#                                  each new order gets a line
#   CLV=1 bench/incremental.sh large
#                                  with lifetime value (clv => true): an
#                                  incremental refresh reads only the changed
#                                  customers' orders, but fits the models
#                                  again and rescores every customer
source "$(dirname "$0")/../scripts/common.sh"
source "$(dirname "$0")/lib.sh"

AS_OF='2026-01-01 00:00:00+00'
size=${1:-small}
customers=$(bench_customers "$size" 10000 1000000)

bench_cluster
log "generating the shop: $customers customers"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -v customers="$customers" -f "$BENCH_DIR/generate.sql" >/dev/null
EVENTS=${EVENTS:-0}
if [ "$EVENTS" = 1 ]; then
    log "generating their events (bench/events/generate.sql)"
    psql_quiet -v customers="$customers" -f "$BENCH_DIR/events/generate.sql" >/dev/null
    psql_quiet -c 'CREATE INDEX ON events (occurred_at)' >/dev/null
fi
PRODUCTS=${PRODUCTS:-0}
if [ "$PRODUCTS" = 1 ]; then
    log "generating their order lines and products (bench/sources/generate.sql)"
    psql_quiet -v customers="$customers" -f "$BENCH_DIR/sources/generate.sql" >/dev/null
    # as a shop finds an order's lines: by an index on their order column
    psql_quiet -c 'CREATE INDEX ON order_lines (order_id)' >/dev/null
fi
CLV=${CLV:-0}
psql_quiet -v as_of="$AS_OF" -v clv="$CLV" <<'SQL' >/dev/null
SELECT segment.configure(orders => 'orders', customer => 'customer_id',
                         ordered_at => 'ordered_at', amount => 'amount', discount => 'discount',
                         customers => 'customers', customers_key => 'customer_id',
                         clv => :'clv'::boolean,
                         clv_penalizer => CASE WHEN :'clv' = '1' THEN 0.001 ELSE 0 END);
SQL
if [ "$EVENTS" = 1 ]; then
    psql_quiet -c "SELECT segment.configure_event_source('events', 'customer_id', 'event_type', 'occurred_at', product => 'product')" >/dev/null
fi
if [ "$PRODUCTS" = 1 ]; then
    psql_quiet -c "SELECT segment.configure_product_source('order_lines', 'order_id', 'product', quantity => 'quantity',
                                                           products => 'products', launched_at => 'launched_at',
                                                           category => 'category')" >/dev/null
fi
if [ "${AS_OF_RULES:-1}" = 0 ]; then
    psql_quiet -c "SELECT segment.enable_rule(r.name, r.segmentation, false) FROM segment.rule_predicates AS r
                    WHERE r.enabled AND r.predicate LIKE '%as_of%'" >/dev/null
fi
psql_quiet -v as_of="$AS_OF" <<'SQL' >/dev/null
SELECT segment.refresh(as_of => :'as_of', mode => 'full');
VACUUM ANALYZE;
CHECKPOINT;
SQL

# Each step in a session of its own, as a scheduled refresh runs (pg_cron
# starts a backend per job; bench/clv.sh does the same): the incremental
# refresh then also pays what a new session costs it (its functions'
# plans and the catalog caches).  BENCH_RECONNECT= runs it all in one.
BENCH_RECONNECT=${BENCH_RECONNECT-1}
STEPS=(
    "a|../pipeline/floor|(a) floor: GROUP BY customer, max/count/sum into a table"
    "i1|refresh_auto|(i1) refresh() after 1% of the customers got an order (incremental)"
    "i01|refresh_auto|(i01) refresh() after 0.1% of the customers got an order (incremental)"
    "f|refresh_full|(f) refresh(mode => 'full') of the same shop"
)
# Untimed, between the steps: new orders for a share of the customers, dated
# just before as_of; the profile vacuumed after a refresh, as autovacuum would.
new_orders() {
    cat <<SQL
INSERT INTO orders (order_id, customer_id, ordered_at, amount, discount, status)
SELECT (SELECT max(order_id) FROM orders) + row_number() OVER (), c.customer_id,
       timestamptz '$AS_OF' - interval '1 hour', 42.00, 0, 'paid'
  FROM customers AS c TABLESAMPLE BERNOULLI ($1);
SQL
    if [ "$EVENTS" = 1 ]; then
        cat <<SQL
INSERT INTO events (customer_id, event_type, occurred_at, product, amount)
SELECT o.customer_id, 'checkout', o.ordered_at, NULL, o.amount
  FROM orders AS o WHERE o.order_id > (SELECT max(e.order_id) FROM bench_seen_orders AS e);
SQL
    fi
    if [ "$PRODUCTS" = 1 ]; then
        cat <<SQL
INSERT INTO order_lines (order_id, product, quantity)
SELECT o.order_id, 'p' || (o.customer_id % 500), 1
  FROM orders AS o WHERE o.order_id > (SELECT max(e.order_id) FROM bench_seen_orders AS e);
SQL
    fi
    echo 'TRUNCATE bench_seen_orders; INSERT INTO bench_seen_orders SELECT max(order_id) FROM orders;'
}
# The warm-up round's writes flushed before the timed rounds, as those of the set-up.
bench_after_warmup() {
    echo 'CHECKPOINT;'
}
bench_after_step() {
    case $1 in
        a) new_orders 1 ;;
        i1) echo 'VACUUM (ANALYZE) segment.profile_default;'; new_orders 0.1 ;;
        i01 | f) echo 'VACUUM (ANALYZE) segment.profile_default;' ;;
    esac
}

psql_quiet -c 'CREATE TABLE bench_seen_orders AS SELECT max(order_id) AS order_id FROM orders' >/dev/null
log "timing: 1 warm-up round + $ROUNDS rounds of ${#STEPS[@]} steps"
bench_timing_script incremental | psql_quiet -v as_of="$AS_OF" -f -

bench_report "Incremental refresh benchmark$([ "$CLV" = 1 ] && echo ' with lifetime value')$([ "$PRODUCTS" = 1 ] && echo ' with a products source')" incremental -v clv="$CLV" -v products="$PRODUCTS"
