# Citus for the test suite, sourced by scripts/test.sh after build_and_install.
#
# citus_install puts Citus into the private PostgreSQL copy: the one installed
# on the system when there is one, else a build of the release in
# ../shared/vendor that supports this major (13.2.2 for 15, 14.0.1 for 16 to
# 18), cached per machine and PostgreSQL version so that only the first run
# pays the build (about three minutes on two cores).  When neither exists it
# says why in CITUS_SKIPPED and returns 1.  start_citus_cluster then starts a
# coordinator and two workers on loopback ports.

CITUS_VENDOR=$SEGMENT_ROOT/../shared/vendor
CITUS_SKIPPED=

citus_release_for_major() {
    case $1 in
        15) echo 13.2.2 ;;
        16 | 17 | 18) echo 14.0.1 ;;
        *) return 1 ;;
    esac
}

# Where builds are kept between runs: the system cache directory for root,
# the user's own otherwise.
citus_cache_dir() {
    if [ "$(id -u)" -eq 0 ]; then
        echo "${SEGMENT_CACHE:-/var/cache/segment}"
    else
        echo "${SEGMENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/segment}"
    fi
}

# citus_build RELEASE DESTDIR: configure, build and install Citus into DESTDIR.
citus_build() {
    local release=$1 dest=$2 work packages
    # With libcurl: PostgreSQL 18 is built with it, and Citus then compiles
    # its curl code whatever configure says (the anonymous statistics, which
    # start_citus_cluster turns off).
    packages=(gcc make autoconf flex bison libssl-dev zlib1g-dev libicu-dev libkrb5-dev
              libxslt1-dev libpam0g-dev libreadline-dev liblz4-dev libzstd-dev
              libcurl4-openssl-dev)
    local saved=("${SEGMENT_PACKAGES[@]}")
    SEGMENT_PACKAGES=("${packages[@]}")
    ensure_packages
    SEGMENT_PACKAGES=("${saved[@]}")

    work=$(mktemp -d /tmp/segment-citus.XXXXXX)
    log "building Citus $release for PostgreSQL $PG_MAJOR (once per machine; log: $work/build.log)"
    tar -xzf "$CITUS_VENDOR/citus-$release.tar.gz" -C "$work"
    # 13.2.2 against PostgreSQL 15.20's headers, which declare a function it
    # also defines (harmless on other 15.x).
    if [ "$PG_MAJOR" = 15 ] && [ -f "$CITUS_VENDOR/citus-$release-postgresql-15.20.patch" ]; then
        patch -d "$work/citus-$release" -p1 -s <"$CITUS_VENDOR/citus-$release-postgresql-15.20.patch"
    fi
    ticker_start "building Citus" "echo \"\$(wc -l <'$work/build.log') lines of build log\""
    if ! (cd "$work/citus-$release" &&
          ./configure PG_CONFIG="$PG_SYSTEM_BIN/pg_config" &&
          make -j"$(nproc)" && make install DESTDIR="$dest") >"$work/build.log" 2>&1; then
        ticker_stop
        tail -n 30 "$work/build.log" >&2
        log "building Citus $release failed (the whole log: $work/build.log)"
        return 1
    fi
    ticker_stop
    rm -rf "$work"
}

citus_install() {
    local lib release version cache
    lib=$("$PG_SYSTEM_BIN/pg_config" --pkglibdir)
    if [ -f "$lib/citus.so" ]; then
        log "Citus: the one installed with PostgreSQL $PG_MAJOR ($lib/citus.so)"
        return 0        # build_and_install copied it into the private copy
    fi
    if ! release=$(citus_release_for_major "$PG_MAJOR"); then
        CITUS_SKIPPED="no Citus release in $CITUS_VENDOR supports PostgreSQL $PG_MAJOR"
        return 1
    fi
    if [ ! -f "$CITUS_VENDOR/citus-$release.tar.gz" ]; then
        CITUS_SKIPPED="Citus is not installed and its sources are not there ($CITUS_VENDOR/citus-$release.tar.gz)"
        return 1
    fi
    version=$("$PG_SYSTEM_BIN/pg_config" --version | sed 's/^PostgreSQL //; s/ .*//')
    # The last part names the build recipe: a change to citus_build makes a new one.
    cache=$(citus_cache_dir)/citus-$release-pg$version-$(uname -m)-r2
    if [ ! -f "$cache/complete" ]; then
        rm -rf "$cache.tmp"
        mkdir -p "$cache.tmp/root"
        citus_build "$release" "$cache.tmp/root" || return 2
        touch "$cache.tmp/complete"
        rm -rf "$cache"
        mv "$cache.tmp" "$cache"
    else
        log "Citus $release for PostgreSQL $version: cached build ($cache)"
    fi
    cp -a "$cache/root/." "$SEGMENT_TMP/pg/"
    [ "$(id -u)" -ne 0 ] || chown -R postgres: "$SEGMENT_TMP/pg"
}

# start_citus_cluster DATABASE: a coordinator and two workers on loopback,
# Citus and segment in DATABASE on each, the workers added; sets
# CITUS_COORDINATOR_PORT and CITUS_WORKER_PORTS.
start_citus_cluster() {
    local db=$1 name port
    CITUS_WORKER_PORTS=()
    for name in citus_coordinator citus_worker1 citus_worker2; do
        port=$(free_port)
        start_server "$name" "$port" 127.0.0.1
        # Citus must be loaded first; the nodes talk without SSL on loopback;
        # no anonymous statistics sent anywhere.
        cat >>"$SEGMENT_TMP/$name/postgresql.conf" <<EOF
shared_preload_libraries = 'citus,pg_cron'
citus.node_conninfo = 'sslmode=disable'
citus.enable_statistics_collection = off
EOF
        # pg_cron schedules refreshes from the coordinator's database.
        [ "$name" != citus_coordinator ] ||
            echo "cron.database_name = '$db'" >>"$SEGMENT_TMP/$name/postgresql.conf"
        run_as_server_user "$PG_BIN/pg_ctl" -D "$SEGMENT_TMP/$name" -l "$SEGMENT_TMP/$name.log" \
            -w -s restart
        psql_quiet -p "$port" -c "CREATE DATABASE $db"
        psql_quiet -p "$port" -d "$db" -c 'CREATE EXTENSION citus'
        if [ "$name" = citus_coordinator ]; then
            CITUS_COORDINATOR_PORT=$port
        else
            CITUS_WORKER_PORTS+=("$port")
        fi
    done
    psql_quiet -p "$CITUS_COORDINATOR_PORT" -d "$db" \
        -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_COORDINATOR_PORT)" >/dev/null
    for port in "${CITUS_WORKER_PORTS[@]}"; do
        psql_quiet -p "$CITUS_COORDINATOR_PORT" -d "$db" \
            -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
    done
    log "Citus: coordinator on port $CITUS_COORDINATOR_PORT, workers on ${CITUS_WORKER_PORTS[*]} ($("$PG_BIN/psql" -X -At -p "$CITUS_COORDINATOR_PORT" -d "$db" -c 'SELECT citus_version()' | sed 's/ on .*//'))"
}
