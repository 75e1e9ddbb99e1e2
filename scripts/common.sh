# Shared by scripts/demo.sh and scripts/test.sh: install what is missing,
# build and install the extension, run a throwaway PostgreSQL cluster.
#
# Sourced, not executed.  Works as root (CI, a fresh Debian 12 machine: the
# server then runs as the "postgres" system user) and as an ordinary user with
# sudo (the server runs as that user).

set -euo pipefail
# A locale every Debian 12 has: perl (pg_prove) and psql warn about one that
# is not installed, as a forwarded LANG often is on a fresh machine.
export LC_ALL=C.UTF-8

SEGMENT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

source "$SEGMENT_ROOT/scripts/progress.sh"     # log, ticker_start/ticker_stop, with_ticker

# demo.sh and test.sh (SEGMENT_COMMAND) take `--pg MAJOR`: the same command in
# a fresh Debian root of the release that ships MAJOR (debian_root.sh).
if [ -n "${SEGMENT_COMMAND:-}" ]; then
    case ${1:-} in
        --pg)
            [ -n "${2:-}" ] || { echo "usage: $0 [--pg MAJOR]" >&2; exit 2; }
            exec "$SEGMENT_ROOT/scripts/debian_root.sh" "$2" "scripts/$SEGMENT_COMMAND.sh" ;;
        '') ;;
        *) echo "usage: $0 [--pg MAJOR]" >&2; exit 2 ;;
    esac
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Whatever a run changes outside its temporary directory is taken back on
# exit, also when it fails or is interrupted (Ctrl-C, kill): the setting that
# keeps postgresql-common from creating a "main" cluster while the scripts
# install PostgreSQL (see ensure_packages), and the throwaway clusters.
SEGMENT_NO_MAIN=/etc/postgresql-common/createcluster.d/segment-no-main.conf
SEGMENT_NO_MAIN_DIR_MADE=
SEGMENT_NO_MAIN_WRITTEN=
restore_postgresql_common() {
    [ -n "$SEGMENT_NO_MAIN_WRITTEN" ] || return 0
    as_root rm -f "$SEGMENT_NO_MAIN" || true
    # The directory too, when it did not exist before (postgresql-common
    # reads it only if it is there).
    [ -z "$SEGMENT_NO_MAIN_DIR_MADE" ] ||
        as_root rmdir "$(dirname "$SEGMENT_NO_MAIN")" 2>/dev/null || true
    SEGMENT_NO_MAIN_WRITTEN=
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The PostgreSQL major this machine's Debian (or Ubuntu) release ships: its
# "postgresql" package depends on postgresql-NN.  Reads apt's lists, fetching
# them first on a machine that has none yet (a fresh one).
distribution_pg_major() {
    shipped() {
        apt-cache depends postgresql 2>/dev/null |
            sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1
    }
    if [ -z "$(shipped)" ]; then
        log "reading this system's package lists (apt-get update)"
        with_ticker "apt-get update" \
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    fi
    shipped
}

if [ -n "${PG_MAJOR:-}" ]; then
    log "using PostgreSQL $PG_MAJOR (PG_MAJOR)"
else
    PG_MAJOR=$(distribution_pg_major)
    if [ -z "$PG_MAJOR" ]; then
        printf 'error: %s\n' "cannot tell which PostgreSQL this system's apt ships" \
            "hint: set PG_MAJOR, e.g. PG_MAJOR=17 $0" >&2
        exit 2
    fi
    log "using PostgreSQL $PG_MAJOR, the one $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-this system}") ships (set PG_MAJOR to choose another)"
fi
case $PG_MAJOR in
    1[5-9] | [2-9][0-9]) ;;
    *) printf 'error: PostgreSQL %s is not supported: segment needs 15 or later\n' "$PG_MAJOR" >&2
       exit 2 ;;
esac
PG_SYSTEM_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_BIN=$PG_SYSTEM_BIN     # the private copy once build_and_install has run

# Packages each command needs; scripts may append before calling ensure_packages.
SEGMENT_PACKAGES=(make gcc libc6-dev "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
                  "postgresql-$PG_MAJOR-cron")

# Install the Debian packages that are not installed yet (apt-get update only
# when something is missing, so a second run does not touch the network).
ensure_packages() {
    local missing=() pkg rc=0
    for pkg in "${SEGMENT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    # Earlier versions of these scripts left the setting below behind.
    if [ -f "$SEGMENT_NO_MAIN" ] && dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR" 2>/dev/null |
                                    grep -q 'install ok installed'; then
        as_root rm -f "$SEGMENT_NO_MAIN"
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages (a minute or two the first time): ${missing[*]}"
    log "  reading the package lists (apt-get update)"
    with_ticker "apt-get update" \
        as_root env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get update -qq
    if [ -z "$(apt-cache policy "postgresql-$PG_MAJOR" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then
        printf 'error: %s\n' "this system's apt sources have no postgresql-$PG_MAJOR" \
            "hint: unset PG_MAJOR to use the PostgreSQL this release ships, or run ./scripts/test.sh --pg $PG_MAJOR (a Debian root that has it)" >&2
        exit 2
    fi
    # Our clusters are throwaway ones of our own: while the postgresql
    # package is installed, keep it from creating and starting the
    # system-wide "main" cluster.  The setting is taken back right after the
    # installation, and by the exit trap if the run stops during it, so that
    # a PostgreSQL the user installs later gets its main cluster as Debian
    # intends (scripts/test.sh checks that the file is gone).
    if ! dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR" 2>/dev/null | grep -q 'install ok installed'; then
        [ -d "$(dirname "$SEGMENT_NO_MAIN")" ] || SEGMENT_NO_MAIN_DIR_MADE=1
        SEGMENT_NO_MAIN_WRITTEN=1
        as_root mkdir -p "$(dirname "$SEGMENT_NO_MAIN")"
        echo 'create_main_cluster = false' | as_root tee "$SEGMENT_NO_MAIN" >/dev/null
    fi
    ticker_start "installing packages"
    apt_install_with_progress "${missing[@]}" || rc=$?
    ticker_stop
    restore_postgresql_common
    [ "$rc" -eq 0 ] || { log "apt-get install failed (exit code $rc)"; exit "$rc"; }
}

# apt-get install, showing a line at every fifth of the download and of the
# installation (apt's machine-readable progress, APT::Status-Fd).
apt_install_with_progress() {
    local kind pct step shown_dl=-1 shown_pm=-1
    as_root env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes \
        apt-get install -y -qq --no-install-recommends -o APT::Status-Fd=3 "$@" 3>&1 >/dev/null |
    while IFS=: read -r kind _ pct _; do
        step=$(( ${pct%%.*} / 20 ))
        case $kind in
            dlstatus) [ "$step" -gt "$shown_dl" ] || continue
                      shown_dl=$step; log "  downloading: ${pct%%.*}%" ;;
            pmstatus) [ "$step" -gt "$shown_pm" ] || continue
                      shown_pm=$step; log "  installing: ${pct%%.*}%" ;;
        esac
    done
    return "${PIPESTATUS[0]}"
}

# Build the extension and install it into a private copy of the PostgreSQL
# server in a fresh temporary directory ($SEGMENT_TMP/pg, about 50 MB), which
# the throwaway clusters run from.  The system's PostgreSQL is never touched,
# so checkouts on one machine can test side by side, and a benchmark keeps
# the build it started with.  Sets PG_BIN to the private server's binaries;
# everything is removed on exit.
build_and_install() {
    local sources stamp rc=0
    sources=$(ls "$SEGMENT_ROOT"/src/*.c | wc -l)
    log "building the extension ($sources C files, $(nproc) at a time)"
    stamp=$(mktemp /tmp/segment-build.XXXXXX)
    ticker_start building "find '$SEGMENT_ROOT/src' -name '*.o' -newer '$stamp' | wc -l | sed 's|\$| of at most $sources files compiled|'"
    make -C "$SEGMENT_ROOT" -s -j"$(nproc)" PG_CONFIG="$PG_SYSTEM_BIN/pg_config" >/dev/null || rc=$?
    ticker_stop
    rm -f "$stamp"
    [ "$rc" -eq 0 ] || exit "$rc"
    SEGMENT_TMP=$(mktemp -d /tmp/segment.XXXXXX)
    chmod 755 "$SEGMENT_TMP"
    log "installing it into a private copy of PostgreSQL $PG_MAJOR in $SEGMENT_TMP/pg"
    local lib share
    lib=$("$PG_SYSTEM_BIN/pg_config" --pkglibdir)
    share=$("$PG_SYSTEM_BIN/pg_config" --sharedir)
    mkdir -p "$SEGMENT_TMP/pg$(dirname "$PG_SYSTEM_BIN")" "$SEGMENT_TMP/pg$(dirname "$lib")" \
             "$SEGMENT_TMP/pg$(dirname "$share")"
    # PostgreSQL finds its library and share directories relative to its
    # binaries, so a copy of the three runs as an installation of its own.
    cp -a "$PG_SYSTEM_BIN" "$SEGMENT_TMP/pg$(dirname "$PG_SYSTEM_BIN")/"
    cp -a "$lib" "$SEGMENT_TMP/pg$(dirname "$lib")/"
    cp -a "$share" "$SEGMENT_TMP/pg$(dirname "$share")/"
    rm -rf "$SEGMENT_TMP/pg$lib/segment.so" "$SEGMENT_TMP/pg$lib/bitcode/segment"* \
           "$SEGMENT_TMP/pg$share/extension/segment"[.-]*
    make -C "$SEGMENT_ROOT" -s PG_CONFIG="$PG_SYSTEM_BIN/pg_config" install \
         DESTDIR="$SEGMENT_TMP/pg" >/dev/null
    PG_BIN=$SEGMENT_TMP/pg$PG_SYSTEM_BIN
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$SEGMENT_TMP"
    return 0
}

# The operating-system user that runs the server: never root.
server_user() {
    if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

run_as_server_user() {
    # From /: the postgres user may not be allowed into the checkout (/root/...).
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Start a throwaway cluster in $SEGMENT_TMP (see build_and_install); sets PGHOST,
# PGPORT, PGUSER for the clients and stops and removes it on exit.
start_cluster() {
    log "starting a throwaway cluster in $SEGMENT_TMP ($("$PG_BIN/postgres" --version))"
    start_server data 5432 ''
    export PGHOST=$SEGMENT_TMP PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

# A free TCP port on the loopback interface (nothing answers on it).
free_port() {
    local port
    for port in $(seq $((20000 + $$ % 20000)) $((20100 + $$ % 20000))); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# start_server NAME PORT LISTEN: one more server in $SEGMENT_TMP/NAME, its
# socket in $SEGMENT_TMP, listening on TCP address LISTEN ('' for none).
start_server() {
    local name=$1 port=$2 listen=$3
    run_as_server_user "$PG_BIN/initdb" -D "$SEGMENT_TMP/$name" -U postgres -A trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$SEGMENT_TMP/$name-initdb.log"
    cat >>"$SEGMENT_TMP/$name/postgresql.conf" <<EOF
listen_addresses = '$listen'
unix_socket_directories = '$SEGMENT_TMP'
port = $port
fsync = off
full_page_writes = off
synchronous_commit = off
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
max_parallel_workers_per_gather = 2
EOF
    run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/$name" -l "$SEGMENT_TMP/$name.log" \
        -w -s start
}

stop_cluster() {
    local rc=$? dir
    trap - EXIT INT TERM
    ticker_stop
    restore_postgresql_common
    # A failure the script reported itself (SEGMENT_REPORTED_FAILURE) needs no
    # server logs; an unexpected one may be the server's.
    if [ "$rc" -ne 0 ] && [ -z "${SEGMENT_REPORTED_FAILURE:-}" ]; then
        log "FAILED (exit code $rc)"
        if [ -n "${SEGMENT_TMP:-}" ] && [ -d "$SEGMENT_TMP" ]; then
            for dir in "$SEGMENT_TMP"/*.log; do
                case $dir in *-initdb.log) continue ;; esac
                [ -f "$dir" ] || continue
                log "last lines of the server log $(basename "$dir") (errors the tests expect appear here too):"
                tail -n 15 "$dir" >&2
            done
        fi
    fi
    if [ -n "${SEGMENT_TMP:-}" ] && [ -d "$SEGMENT_TMP" ]; then
        for dir in "$SEGMENT_TMP"/*/; do
            [ -f "$dir/PG_VERSION" ] || continue
            run_as_server_user "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -s stop \
                >/dev/null 2>&1 || true
        done
        rm -rf "$SEGMENT_TMP"
    fi
    exit $rc
}

psql_quiet() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}
