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
# The segment report (segment.report()) outlives the throwaway cluster.
report_dir=${SEGMENT_REPORT_DIR:-$SEGMENT_ROOT/results/report}
mkdir -p "$report_dir"
report_dir=$(cd "$report_dir" && pwd)
psql_quiet -v report_file="$report_dir/report.html" -f "$SEGMENT_ROOT/demo/report.sql"
log "the segment report: $report_dir/report.html (open it in a browser; it needs no network)"
# A picture of it too, where Chromium is installed (apt-get install chromium).
source "$SEGMENT_ROOT/scripts/browser.sh"
if [ -n "$(browser_binary)" ]; then
    rm -f "$report_dir/chromium.log"
    if browser_run "$report_dir/chromium" --window-size=1000,3500 --screenshot="$report_dir/report.png" \
           "file://$report_dir/report.html" >/dev/null; then
        log "a screenshot of it: $report_dir/report.png"
    fi
fi
