#!/usr/bin/env bash
# Run one of the project's scripts for a chosen PostgreSQL major in a fresh
# Debian root (debootstrap --variant=minbase) of the release that ships it:
#
#   scripts/debian_root.sh MAJOR scripts/test.sh [ARGS...]
#
# (what `./scripts/test.sh --pg MAJOR`, `./scripts/demo.sh --pg MAJOR` and
# `bench/NAME.sh SIZE --pg MAJOR` do).
# The root comes from the same Debian mirror as this machine's apt, gets a
# copy of the checkout (with uncommitted changes) and of ../shared/data and
# ../shared/vendor, has /proc, /sys, /dev and the build cache mounted, and is
# unmounted and removed on exit, also
# when the script fails or is interrupted.  Needs root.  Exits with the
# script's exit code.
set -euo pipefail
export LC_ALL=C.UTF-8

SEGMENT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

source "$SEGMENT_ROOT/scripts/progress.sh"     # log, ticker_start/ticker_stop, with_ticker
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

[ $# -ge 2 ] || die "usage: $0 MAJOR SCRIPT [ARGS...]"
major=$1
script=$2
shift 2

# The Debian release that ships each major as its default PostgreSQL.
case $major in
    15) suite=bookworm ;;
    17) suite=trixie ;;
    18) suite=sid ;;
    16) die "PostgreSQL 16 is the default of no Debian release (12 ships 15, 13 ships 17, unstable 18), so Debian's mirror has no postgresql-16 to test with" ;;
    *) die "no Debian release ships PostgreSQL '$major'; choose 15 (Debian 12), 17 (Debian 13) or 18 (Debian unstable)" ;;
esac

[ "$(id -u)" -eq 0 ] || die "building a Debian root needs root (try: sudo $0 $major $script $*)"
[ -f "$SEGMENT_ROOT/$script" ] || die "no such script in the checkout: $script"

# The mirror this machine's apt uses for Debian itself (deb822 or one-line
# sources), and the one for security updates.
apt_uri() {
    local pattern=$1
    {
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n'
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p'
    } | grep -E "$pattern" | head -n 1 || true
}
mirror=$(apt_uri '/debian/?$')
mirror=${mirror:-http://deb.debian.org/debian}
security=$(apt_uri '/debian-security/?$')
security=${security:-http://deb.debian.org/debian-security}

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    with_ticker "installing debootstrap" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    with_ticker "installing debootstrap" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

root=$(mktemp -d /var/tmp/segment-root.XXXXXX)
chmod 755 "$root"       # it becomes /: the postgres and _apt users must enter it
mounted=()

# The processes running inside the root (a server a test left behind, or the
# whole run when this script is interrupted).
root_processes() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
    done
    return 0
}

# Stop what still runs inside the root, unmount whatever was mounted (lazily
# when busy) and remove the root; never remove it while anything is still
# mounted below it, which would delete through the bind mount of /dev.
cleanup() {
    local rc=$? i pids
    trap - EXIT INT TERM
    ticker_stop
    pids=$(root_processes)
    if [ -n "$pids" ]; then
        log "stopping the processes left in the root"
        kill -TERM $pids 2>/dev/null || true
        for i in $(seq 1 20); do
            [ -n "$(root_processes)" ] || break
            sleep 0.5
        done
        pids=$(root_processes)
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        sleep 0.5
    fi
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[i]}" 2>/dev/null || umount -R -l "${mounted[i]}" 2>/dev/null || true
    done
    if grep -q " $root/" /proc/mounts; then
        log "not removing $root: something is still mounted below it"
        [ "$rc" -ne 0 ] || rc=1
    else
        rm -rf "$root"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building a Debian root ($suite, PostgreSQL $major) from $mirror in $root"
started=$SECONDS
# debootstrap's log says which package it is at: its last line is the progress.
ticker_start "debootstrap $suite" "tail -n 1 '$root.debootstrap.log' | cut -c 1-60"
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1; then
    ticker_stop
    tail -n 20 "$root.debootstrap.log" >&2
    rm -f "$root.debootstrap.log"
    die "debootstrap $suite failed"
fi
ticker_stop
rm -f "$root.debootstrap.log"

# apt in the root: the release's updates and security suites as a real
# installation has them; unstable's Release file can be past its Valid-Until
# date on a mirror that is a snapshot.
{
    echo "deb $mirror $suite main"
    if [ "$suite" != sid ]; then
        echo "deb $mirror $suite-updates main"
        echo "deb $security $suite-security main"
    fi
} >"$root/etc/apt/sources.list"
echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99segment-valid-until"
# No daemons started by package scripts inside the root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
log "root ready in $((SECONDS - started)) s"

# The checkout as it is (tracked and new files, not what .gitignore leaves
# out), and the team's reference data beside it as ../shared/data.
mkdir -p "$root/src/segment"
if git -C "$SEGMENT_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$SEGMENT_ROOT" && git ls-files -z -co --exclude-standard |
        tar --null -cf - -T - 2>/dev/null) | tar -xf - -C "$root/src/segment"
else
    tar -cf - -C "$SEGMENT_ROOT" --exclude=./results . | tar -xf - -C "$root/src/segment"
fi
for dir in data vendor; do
    if [ -d "$SEGMENT_ROOT/../shared/$dir" ]; then
        mkdir -p "$root/src/shared"
        cp -a "$SEGMENT_ROOT/../shared/$dir" "$root/src/shared/"
    fi
done

for fs in proc sys dev; do
    mkdir -p "$root/$fs"
    case $fs in
        proc) mount -t proc proc "$root/proc" ;;
        *) mount --rbind "/$fs" "$root/$fs" && mount --make-rslave "$root/$fs" ;;
    esac
    mounted+=("$root/$fs")
done
# The builds the suite caches (Citus, per PostgreSQL version) outlive the root.
mkdir -p /var/cache/segment "$root/var/cache/segment"
mount --bind /var/cache/segment "$root/var/cache/segment"
mounted+=("$root/var/cache/segment")

# The benchmarks' settings (bench/README.md) reach a benchmark run in the
# root; nothing else of this environment does.
knobs=()
while IFS= read -r -d '' kv; do
    knobs+=("$kv")
done < <(env -0 | grep -zE '^(ROUNDS|BENCH_[A-Z_]+|EVENTS|PRODUCTS|CLV|AS_OF_RULES|N_INIT|PARTS|SHAPE|SIZES|SECONDS_PER_RUN|SECONDS_PER_CALL_RUN|SEGMENT_BENCH_GENERATOR)=' || true)

log "running $script $* in the $suite root"
# In the background and waited for, so that a signal to this script is acted
# on at once (cleanup stops the run) rather than after the run ends.
chroot "$root" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM="${TERM:-dumb}" LC_ALL=C.UTF-8 CI="${CI:-}" PG_MAJOR="$major" "${knobs[@]}" \
    bash "/src/segment/$script" "$@" </dev/null &
rc=0
wait $! || rc=$?
exit "$rc"
