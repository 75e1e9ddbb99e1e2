# Progress lines for the long steps of the scripts (apt-get, the builds,
# debootstrap), sourced by scripts/common.sh and scripts/debian_root.sh.
#
#   ticker_start "installing packages" [DETAIL_COMMAND]
#   long step ...
#   ticker_stop
#
# prints "==>   ... installing packages (10 s)" every 10 s until ticker_stop,
# followed by DETAIL_COMMAND's output when given ("12 of 28 files compiled").
# The ticker is a background process of this script: it stops by itself when
# the script is gone, and ticker_stop kills it by its process id.

log() { printf '==> %s\n' "$*" >&2; }

SEGMENT_TICKER=
SEGMENT_TICKER_SECONDS=${SEGMENT_TICKER_SECONDS:-10}

ticker_start() {
    local label=$1 detail=${2:-} start=$SECONDS parent=$$ s=
    ticker_stop
    (
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        while :; do
            sleep "$SEGMENT_TICKER_SECONDS" &
            s=$!
            wait "$s" || true
            kill -0 "$parent" 2>/dev/null || exit 0
            if [ -n "$detail" ]; then
                log "  ... $label ($((SECONDS - start)) s; $(eval "$detail" 2>/dev/null))"
            else
                log "  ... $label ($((SECONDS - start)) s)"
            fi
        done
    ) &
    SEGMENT_TICKER=$!
}

ticker_stop() {
    [ -n "$SEGMENT_TICKER" ] || return 0
    kill "$SEGMENT_TICKER" 2>/dev/null || true
    wait "$SEGMENT_TICKER" 2>/dev/null || true
    SEGMENT_TICKER=
}

# with_ticker LABEL COMMAND...: run COMMAND with a ticker; its exit code.
with_ticker() {
    local label=$1 rc=0
    shift
    ticker_start "$label"
    "$@" || rc=$?
    ticker_stop
    return "$rc"
}
