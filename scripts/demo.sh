#!/usr/bin/env bash
# The demo command: install what is missing, build, start a throwaway
# cluster, load a generated example shop and print its segments.
#
#   ./scripts/demo.sh            the PostgreSQL this machine's Debian ships
#   ./scripts/demo.sh --pg 17    in a fresh Debian root that ships 17 (root only)
SEGMENT_COMMAND=demo     # common.sh takes --pg MAJOR for it
source "$(dirname "$0")/common.sh"

ensure_packages
build_and_install
start_cluster

log "loading the example shop (demo/shop.sql)"
psql_quiet -c 'CREATE EXTENSION segment'
psql_quiet -f "$SEGMENT_ROOT/demo/shop.sql"
log "segmenting it (demo/report.sql)"
psql_quiet -f "$SEGMENT_ROOT/demo/report.sql"
