# The browser test of the segment report (issue 17), sourced by test.sh
# after common.sh: headless Chromium (Debian's chromium package) renders the
# report that demo/report.sql wrote, and the test reads the DOM it built:
# one bar per segment in each bar chart, buckets x buckets RFM cells, the
# movement rows, cluster rows and lifetime-value bins the database says it
# should have, no console error; a screenshot and a PDF (printing) are kept
# in results/report/.  Chromium runs as root here: --no-sandbox; headless,
# so no display is needed.

# Install Debian's chromium package when no Chromium is there (about 110 MB
# to download on a fresh machine); 1 when it cannot be installed.
browser_install() {
    [ -n "$(browser_binary)" ] && return 0
    local SEGMENT_PACKAGES=(chromium) started=$SECONDS
    # In a subshell: ensure_packages exits on failure.
    (ensure_packages) || return 1
    log "browser: chromium installed in $((SECONDS - started)) s"
    [ -n "$(browser_binary)" ]
}

# The Chromium binary, or nothing.
browser_binary() {
    command -v chromium || command -v chromium-browser || true
}

# browser_run OUT_PREFIX ARGS...: one headless Chromium run, its messages in
# OUT_PREFIX.log, at most two minutes.
browser_run() {
    local prefix=$1
    shift
    timeout 120 "$(browser_binary)" --headless --no-sandbox --disable-gpu --disable-extensions \
        --no-first-run --hide-scrollbars --user-data-dir="$SEGMENT_TMP/chromium" \
        --enable-logging=stderr --v=0 "$@" 2>>"$prefix.log"
}

# count PATTERN FILE: the occurrences of an extended regular expression.
count_in() {
    grep -oE "$1" "$2" | wc -l
}

# browser_check_report DB HTML: render HTML (the report of DB's default
# segmentation) and compare its DOM with the database; 0 when all agree.
browser_check_report() {
    local db=$1 html=$2 dir ok=0 want got started=$SECONDS
    dir=$(dirname "$html")
    local dom=$dir/report.dom.html png=$dir/report.png pdf=$dir/report.pdf
    rm -f "$dir/chromium.log" "$dom" "$png" "$pdf"
    if [ -z "$(browser_binary)" ]; then
        log "browser: no chromium on this machine"
        return 1
    fi
    browser_run "$dir/chromium" --dump-dom "file://$html" >"$dom" || { log "browser: chromium --dump-dom failed"; ok=1; }
    browser_run "$dir/chromium" --window-size=1000,3500 --screenshot="$png" "file://$html" >/dev/null ||
        { log "browser: chromium --screenshot failed"; ok=1; }
    browser_run "$dir/chromium" --no-pdf-header-footer --print-to-pdf="$pdf" "file://$html" >/dev/null ||
        { log "browser: chromium --print-to-pdf failed"; ok=1; }
    # The DOM as one line, each chart's part of it in a file of its own.
    tr '\n' ' ' <"$dom" >"$dom.line"
    grep -oE '<svg id="segment-sizes".*' "$dom.line" | sed 's,</svg>.*,,' >"$dir/sizes.part" || true
    grep -oE '<svg id="segment-revenue".*' "$dom.line" | sed 's,</svg>.*,,' >"$dir/revenue.part" || true
    # What the database says the page must show.
    local expected
    expected=$(psql_quiet -d "$db" -At -F ' ' -c "
        SELECT (SELECT count(DISTINCT p.segment) FROM segment.profile_default AS p),
               s.buckets * s.buckets,
               (SELECT least(count(*), 25) FROM segment.transitions() AS t
                 WHERE t.from_segment IS DISTINCT FROM t.to_segment),
               coalesce(s.clusters, 0),
               CASE WHEN s.clv THEN 20 ELSE 0 END
          FROM segment.segmentations AS s WHERE s.is_default")
    local names=(size_bars revenue_bars rfm_cells movement_rows cluster_rows clv_bins)
    local wants
    read -r -a wants <<<"$(awk '{ print $1, $1, $2, $3, $4, $5 }' <<<"$expected")"
    local gots=("$(count_in '<rect class="bar" ' "$dir/sizes.part")"
                "$(count_in '<rect class="bar" ' "$dir/revenue.part")"
                "$(count_in '<rect class="cell" ' "$dom.line")"
                "$(count_in '<tr class="move" ' "$dom.line")"
                "$(count_in '<tr class="cluster" ' "$dom.line")"
                "$(count_in '<rect class="bin" ' "$dom.line")")
    local i summary=()
    for i in "${!names[@]}"; do
        summary+=("${names[$i]} ${gots[$i]}/${wants[$i]:-?}")
        [ "${gots[$i]}" = "${wants[$i]:-x}" ] || { log "browser: ${names[$i]}: the page has ${gots[$i]}, the database says ${wants[$i]:-?}"; ok=1; }
    done
    # The whole page was parsed (the footer is its last element), no markup
    # from data, no console message (the page has no script: none expected).
    grep -q '<footer>' "$dom.line" || { log "browser: the DOM has no footer: the page was cut"; ok=1; }
    grep -qi '<script' "$dom.line" && { log "browser: the DOM has a script element"; ok=1; }
    if grep -E 'CONSOLE|Uncaught|ERR_[A-Z_]+' "$dir/chromium.log" >&2; then
        log "browser: chromium reported the errors above"; ok=1
    fi
    # A real picture and a real PDF.
    [ "$(head -c 8 "$png" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] &&
        [ "$(wc -c <"$png")" -gt 20000 ] || { log "browser: no screenshot (or an empty one)"; ok=1; }
    [ "$(head -c 5 "$pdf" 2>/dev/null)" = "%PDF-" ] || { log "browser: no PDF"; ok=1; }
    rm -f "$dir/sizes.part" "$dir/revenue.part" "$dom.line"
    log "browser: $(IFS=','; echo "${summary[*]}" | sed 's/,/, /g') (page/database); $(wc -c <"$html") bytes of HTML; $((SECONDS - started)) s"
    log "browser: screenshot $png, PDF $pdf, DOM $dom"
    return "$ok"
}
