#!/usr/bin/env bash
# fresh-test.sh - `make fresh-test`: README's two commands on a truly fresh machine.
#
# A fresh clone of the committed HEAD (uncommitted changes are NOT in it) is copied into a clean
# debian:bookworm-slim container (host network) that gets only the packages of README's
# prerequisites line, installed with apt as README says. There, as root, it runs `make test`,
# then `make run` with README's walk-through in a second shell and Ctrl-C
# (scripts/walkthrough.py). An install step README does not tell users about fails it. Starts a
# Docker engine if none answers and stops the one it started. Prints each phase's time.
#
# Reruns stay fast without installing anything README does not list: apt's downloaded .debs and
# pip's download cache live on the host in $LEOFLOW_FRESH_CACHE, mounted into the container.
# The host's network settings (proxies, pip's CA bundle, index and timeout) pass into the
# container: they describe the network, not the machine.
#
# Environment: LEOFLOW_FRESH_IMAGE (default debian:bookworm-slim, the image docker-engine.sh
# imports where none can be pulled), LEOFLOW_FRESH_CACHE (default /var/tmp/leoflow-fresh-cache),
# LEOFLOW_FRESH_KEEP=1 keeps the container after a failure to look inside, PYTHON (the venv's
# python: reads README).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-.venv/bin/python}
image=${LEOFLOW_FRESH_IMAGE:-debian:bookworm-slim}
cache=${LEOFLOW_FRESH_CACHE:-/var/tmp/leoflow-fresh-cache}
ctr="leoflow-fresh-$$"
src=/root/leoflow-xcom

say() { printf 'fresh-test: %s\n' "$*" >&2; }
stamp() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(stamp)" 'BEGIN { printf "%.1f", b - a }'; }

timings=()
current=""
# phase NAME COMMAND...: run one phase, timed; the summary names the one that failed.
phase() {
    local name=$1 t
    shift
    current=$name
    say "== $name"
    t=$(stamp)
    "$@"
    timings+=("$(printf '%-22s %7s s' "$name" "$(since "$t")")")
    current=""
}

work=""
t0=$(stamp)
finish() {
    local rc=$?
    if [[ -n $current ]]; then
        timings+=("$(printf '%-22s %7s' "$current" FAILED)")
    fi
    if docker container inspect "$ctr" >/dev/null 2>&1; then
        if [[ $rc -ne 0 && ${LEOFLOW_FRESH_KEEP:-} == 1 ]]; then
            say "kept container $ctr: docker exec -it $ctr bash; docker rm -f $ctr when done"
        else
            docker rm -f "$ctr" >/dev/null 2>&1 || true
        fi
    fi
    [[ -z $work ]] || rm -rf --one-file-system "$work"
    engine_session_down
    say "timings:"
    local line
    for line in ${timings[@]+"${timings[@]}"}; do say "  $line"; done
    say "  $(printf '%-22s %7s s' total "$(since "$t0")")"
    if [[ $rc -eq 0 ]]; then say "PASSED"; else say "FAILED (exit $rc)"; fi
}
# shellcheck source=scripts/engine-session.sh
source scripts/engine-session.sh
trap finish EXIT

packages=$("$py" scripts/walkthrough.py packages)
sha=$(git rev-parse HEAD)
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
    say "note: uncommitted changes are not tested: this is a fresh clone of HEAD ($sha)"
fi

phase engine engine_session_up

clone() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/leoflow-fresh.XXXXXX")
    git clone -q --no-checkout "$root" "$work/leoflow-xcom"
    git -C "$work/leoflow-xcom" checkout -q --detach "$sha"
    say "clone of $(git -C "$work/leoflow-xcom" log -1 --format='%h %s')"
}
phase clone clone

# A container as a fresh Debian host: PID 1 reaps orphans (--init), no package lists yet,
# nothing but the base system. Two things come from the test, not the user, and neither is a
# package: apt keeps the .debs it downloads (in the host cache), and package installs do not
# start services (as in Docker's official Debian image; a host with systemd starts them, and
# make test stops the Redis one).
container() {
    mkdir -p "$cache/apt/partial" "$cache/pip"
    local env=() name
    for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
        PIP_CERT PIP_INDEX_URL PIP_DEFAULT_TIMEOUT; do
        [[ -z ${!name:-} ]] || env+=(-e "$name")
    done
    docker run -d --init --name "$ctr" --network host \
        -v "$cache/apt:/var/cache/apt/archives" -v "$cache/pip:/root/.cache/pip" \
        ${env[@]+"${env[@]}"} "$image" sleep infinity >/dev/null
    docker exec "$ctr" sh -c '
        set -e
        for tool in python3 make git docker curl redis-server; do
            if command -v "$tool" >/dev/null; then echo "image is not clean: it has $tool" >&2; exit 1; fi
        done
        printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        rm -f /etc/apt/apt.conf.d/docker-clean
        echo "Binary::apt::APT::Keep-Downloaded-Packages \"true\";" >/etc/apt/apt.conf.d/99keep-debs'
}
phase container container

# README's prerequisites line, as root (no sudo in the container).
prerequisites() {
    say "apt-get install $packages"
    # shellcheck disable=SC2086 # a list of package names
    docker exec -e DEBIAN_FRONTEND=noninteractive "$ctr" sh -c \
        "apt-get update -qq && apt-get install -y -qq $packages" >"$work/apt.log" 2>&1 || {
        tail -n 30 "$work/apt.log" >&2
        say "installing README's prerequisites failed"
        return 1
    }
    # README promises a docker client is enough: no engine runs in here (installs start no
    # services, and the host's socket is not mounted).
    if docker exec "$ctr" timeout 10 docker info >/dev/null 2>&1; then
        say "a Docker engine answers inside the container: it would hide what make test needs"
        return 1
    fi
}
phase "README prerequisites" prerequisites

copy() { tar -C "$work" -cf - leoflow-xcom | docker cp - "$ctr:$(dirname "$src")"; }
phase "copy clone" copy

phase "make test" docker exec -w "$src" "$ctr" make test

phase "make run walk-through" docker exec -w "$src" "$ctr" .venv/bin/python scripts/walkthrough.py run
