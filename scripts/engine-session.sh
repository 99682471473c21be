# engine-session.sh - sourced by compose-test.sh and fresh-test.sh: a Docker engine for as long
# as the calling script runs.
#
#   engine_session_up     start an engine if none answers (docker-engine.sh up: needs root),
#                         and export DOCKER_HOST when the one it started uses another socket
#   engine_session_down   stop the engine, but only if engine_session_up started it (call it
#                         from the caller's EXIT trap)

engine_started=0

engine_session_up() {
    local here
    here=$(dirname "${BASH_SOURCE[0]}")
    if ! timeout 10 docker info >/dev/null 2>&1; then
        engine_started=1
    fi
    bash "$here/docker-engine.sh" up
    local state=${LEOFLOW_DOCKER_STATE:-/var/tmp/leoflow-docker}
    if [[ -z ${DOCKER_HOST:-} && -s $state/docker-host ]] && ! timeout 10 docker info >/dev/null 2>&1; then
        DOCKER_HOST=$(<"$state/docker-host")
        export DOCKER_HOST
    fi
}

engine_session_down() {
    if [[ $engine_started -eq 1 ]]; then
        engine_started=0
        printf 'engine-session: stopping the Docker engine this run started\n' >&2
        bash "$(dirname "${BASH_SOURCE[0]}")/docker-engine.sh" down || true
    fi
}
