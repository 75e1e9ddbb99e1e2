#!/usr/bin/env bash
# The docs test: every ```sql block of README.md and docs/*.md runs, in order
# per file, in a fresh database where the demo shop (demo/shop.sql) is loaded
# and the extension created (unless the file's examples create it), and any
# error fails it (docs/testing.md says which fences do not run).
#
#   ./scripts/doc_examples.sh                 build, start a throwaway cluster, run
#   ./scripts/doc_examples.sh docs/rfm.md     some files only
#
# scripts/test.sh sources this file and calls doc_examples_run (one test).

# doc_examples_extract FILE: the file's ```sql blocks as one psql script, each
# block announced by a line that names the file and line it starts at.
doc_examples_extract() {
    awk -v file="$1" '
        { line = $0; sub(/^ +/, "", line) }
        line ~ /^```/ {
            if (!inside && line == "```sql") {
                inside = 1
                indent = length($0) - length(line)
                printf "-- doc-example %s %d\n", file, NR
                next
            }
            if (inside) { inside = 0; print ""; next }
        }
        inside { print substr($0, indent + 1) }
    ' "$SEGMENT_ROOT/$1"
}

# doc_examples_where SCRIPT OUTPUT: say which file and line of the docs the
# error psql reported in OUTPUT comes from.
doc_examples_where() {
    local script=$1 out=$2 line
    line=$(sed -n "s|^psql:$script:\([0-9]*\): .*|\1|p" "$out" | tail -n 1)
    [ -n "$line" ] || { log "docs: an example failed:"; return 0; }
    awk -v line="$line" '
        /^-- doc-example / { file = $3; start = $4; at = NR }
        NR == line { printf "==> docs: the example at %s:%d failed (near its line %d):\n", file, start, start + line - at; exit }
    ' "$script" >&2
}

# doc_examples_check_fences FILE...: a ```sql fence that is not run must say
# why: ```sql signature (a function's signature, not a statement) or ```sql
# PATH (the test file that runs it on its own data or servers, which must
# exist), so that a typo cannot keep an example from running.
doc_examples_check_fences() {
    local file bad=0 line tag
    for file in "$@"; do
        while IFS=: read -r line tag; do
            tag=${tag#"${tag%%'```'*}"}
            tag=${tag#'```sql '}
            if [ "$tag" != signature ] && [ ! -f "$SEGMENT_ROOT/$tag" ]; then
                log "docs: $file:$line: \`\`\`sql $tag: neither \"signature\" nor a test file of the checkout"
                bad=1
            fi
        done < <(grep -n '^ *```sql ' "$SEGMENT_ROOT/$file" || true)
    done
    return "$bad"
}

# doc_examples_run [FILE...]: run the examples (all files by default); sets
# DOC_EXAMPLES_COUNT to the number of blocks run and returns non-zero on the
# first error, after showing it and the block it came from.
doc_examples_run() {
    local files=("$@") file db n=0 out script i=0
    [ ${#files[@]} -gt 0 ] ||
        files=(README.md $(cd "$SEGMENT_ROOT" && ls docs/*.md))
    DOC_EXAMPLES_COUNT=0
    doc_examples_check_fences "${files[@]}" || return 1
    PGOPTIONS='-c client_min_messages=warning' psql_quiet \
        -c 'DROP DATABASE IF EXISTS segment_docs_template' -c 'CREATE DATABASE segment_docs_template'
    psql_quiet -d segment_docs_template -f "$SEGMENT_ROOT/demo/shop.sql" >/dev/null
    for file in "${files[@]}"; do
        i=$((i + 1))
        script=$SEGMENT_TMP/doc-examples-$i.sql
        out=$SEGMENT_TMP/doc-examples-$i.out
        doc_examples_extract "$file" >"$script"
        n=$(grep -c '^-- doc-example ' "$script" || true)
        [ "$n" -gt 0 ] || continue
        db=segment_docs_$i
        PGOPTIONS='-c client_min_messages=warning' psql_quiet \
            -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db TEMPLATE segment_docs_template"
        # The extension is there, unless the file's examples create it.
        grep -q '^CREATE EXTENSION segment;' "$script" ||
            psql_quiet -d "$db" -c 'CREATE EXTENSION segment'
        if ! psql_quiet -d "$db" -f "$script" >"$out" 2>&1; then
            doc_examples_where "$script" "$out"
            grep -v '^ *$' "$out" | tail -n 15 >&2
            return 1
        fi
        DOC_EXAMPLES_COUNT=$((DOC_EXAMPLES_COUNT + n))
        psql_quiet -c "DROP DATABASE $db"
    done
    psql_quiet -c 'DROP DATABASE segment_docs_template'
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    source "$(dirname "$0")/common.sh"
    ensure_packages
    build_and_install
    start_cluster
    log "docs: the examples of ${*:-README.md and docs/*.md}"
    doc_examples_run "$@"
    log "docs: ok ($DOC_EXAMPLES_COUNT examples)"
fi
