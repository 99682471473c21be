#!/usr/bin/env bash
# check-prereqs.sh - what the make targets need from the machine, checked before they build
# anything, so a missing piece stops `make` at once with one line naming it and how to get it
# (instead of a traceback halfway through the setup).
#
#   check-prereqs.sh venv        Python 3.11+ with venv/ensurepip (every target builds .venv)
#   check-prereqs.sh test        venv + a docker client (+ Compose v2 off linux/x86_64),
#                                a Redis server or the means to install one, curl
#   check-prereqs.sh run         venv (make run needs nothing else: valkey-server comes from PyPI)
#   check-prereqs.sh fresh-test  a docker client and git
#
# Prints one line per missing piece on stderr and exits 1; prints nothing and exits 0 when all
# is there. PYTHON names the interpreter that builds .venv (default python3); STAMP, when given,
# is .venv's marker file: once it exists, the venv's own Python is used. Runs on bash 3.2
# (macOS) and needs nothing beyond the shell itself to report a missing piece.
set -u

py=${PYTHON:-python3}
missing=0

# How to get a package on this host: apt on Debian/Ubuntu, Homebrew on macOS.
get() {
    local deb=$1 brew=$2
    local sudo="sudo "
    [ "$(id -u 2>/dev/null)" = 0 ] && sudo=""
    if command -v apt-get >/dev/null 2>&1; then
        echo "${sudo}apt-get install $deb"
    elif command -v brew >/dev/null 2>&1 || [ "$(uname -s 2>/dev/null)" = Darwin ]; then
        echo "$brew"
    else
        echo "your system's package manager (Debian/Ubuntu package: $deb)"
    fi
}

lack() {
    echo "make: missing prerequisite: $1" >&2
    missing=1
}

have() { command -v "$1" >/dev/null 2>&1; }

check_make() {
    have make || lack "make: install it with $(get make 'xcode-select --install')"
}

check_python() {
    # A built .venv (STAMP: its marker file, from make) no longer needs the system's Python.
    [ -n "${STAMP:-}" ] && [ -e "$STAMP" ] && return 0
    if ! have "$py"; then
        lack "Python 3.11+ ($py not found): install it with $(get python3 'brew install python@3.12')"
        return
    fi
    # One interpreter start: the version, then whether venv can install pip (Debian and Ubuntu
    # split ensurepip into python3-venv; without it `python3 -m venv` fails after creating a
    # half-made .venv).
    local probe version
    probe=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])
import ensurepip, venv; print("venv")' 2>/dev/null)
    version=$(echo "$probe" | head -n 1)
    [ -n "$version" ] || version="?"
    local major=${version%%.*} minor=${version#*.}
    case "$major.$minor" in
        [0-9]*.[0-9]*) ;;
        *)
            lack "Python 3.11+ ($py does not run): install it with $(get python3 'brew install python@3.12')"
            return
            ;;
    esac
    if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 11 ]; }; then
        lack "Python 3.11+ ($py is $version): install a newer one ($(get python3.11 'brew install python@3.12')) and run make PYTHON=python3.11 ..."
        return
    fi
    if [ "$(echo "$probe" | sed -n 2p)" != venv ]; then
        local pkg=python3-venv
        [ "$(basename "$py")" = python3 ] || pkg="python$version-venv"
        lack "Python's venv module with ensurepip ($py -m venv cannot install pip): install it with $(get "$pkg" 'brew install python@3.12')"
    fi
}

check_docker_client() {
    local why=$1
    if ! have docker; then
        lack "a docker client ($why): install it with $(get docker.io 'brew install docker docker-compose, or Docker Desktop')"
        return 1
    fi
}

check_compose() {
    # On linux/x86_64 `make compose-plugin` installs Compose v2 itself; elsewhere it must be there.
    [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] && return 0
    docker compose version >/dev/null 2>&1 ||
        lack "the Docker Compose v2 plugin (docker compose): install it with $(get docker-compose-plugin 'brew install docker-compose, or Docker Desktop')"
}

check_redis() {
    case ",${LEOFLOW_TEST_SERVERS:-valkey,redis}," in *,redis,*) ;; *) return 0 ;; esac
    have redis-server && return 0
    # scripts/ensure-redis.sh installs Debian's redis-server when it can.
    [ "$(id -u)" = 0 ] && have apt-get && return 0
    lack "redis-server (make test installs it only as root with apt): install it with $(get redis-server 'brew install redis'), or test against valkey only: LEOFLOW_TEST_SERVERS=valkey make test"
}

check_curl() {
    have curl || lack "curl (README's walk-through reads the proxy with it; make test runs the walk-through): install it with $(get curl 'brew install curl')"
}

check_git() {
    have git || lack "git (to clone the commit under test): install it with $(get git 'xcode-select --install')"
}

if [ $# -eq 0 ]; then set -- venv; fi
for target in "$@"; do
    case $target in
        venv | run)
            check_make
            check_python
            ;;
        test)
            check_make
            check_python
            if check_docker_client "make test runs docker compose config; no engine needed"; then
                check_compose
            fi
            check_redis
            check_curl
            ;;
        fresh-test)
            check_make
            check_docker_client "make fresh-test runs a Debian container" || true
            check_git
            ;;
        *)
            echo "check-prereqs: unknown target $target (venv, test, run, fresh-test)" >&2
            exit 2
            ;;
    esac
done
exit $missing
