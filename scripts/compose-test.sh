#!/usr/bin/env bash
# compose-test.sh - `make compose-test`: the Compose appliance on a real Docker engine.
#
# Starts an engine if none answers (scripts/docker-engine.sh up), builds the project image, the
# Locust image of the `loadtest` profile and the Redis stand-in (no registry here), checks the
# Compose files statically, runs the end-to-end tests in tests/e2e (the loadtest profile's
# paced run prints a `compose-test: locust ...` line), and stops the engine it started (data
# root kept, so the base image is reused next time). Timings go to stderr.
#
# Environment: PYTHON (the venv's python), LEOFLOW_IMAGE_BASE (BASE_IMAGE build arg; default
# debian:bookworm-slim, the base docker-engine.sh imports here; a normal Docker host can leave
# the Dockerfile's pinned python image by setting it empty), PYTEST_ARGS.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-.venv/bin/python}
base=${LEOFLOW_IMAGE_BASE-debian:bookworm-slim}
version=$("$py" -c 'import leoflow_xcom; print(leoflow_xcom.__version__)')
export TESTCONTAINERS_RYUK_DISABLED=true

say() { printf 'compose-test: %s\n' "$*" >&2; }
stamp() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(stamp)" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(stamp)
# shellcheck source=scripts/engine-session.sh
source scripts/engine-session.sh
trap engine_session_down EXIT
t=$(stamp)
engine_session_up
say "engine ready in $(since "$t") s"

t=$(stamp)
build_args=(--build-arg "VERSION=$version")
[[ -n $base ]] && build_args+=(--build-arg "BASE_IMAGE=$base")
docker build --network host -q "${build_args[@]}" -f compose/Dockerfile -t "leoflow/xcom:$version" . >/dev/null
say "project image leoflow/xcom:$version built in $(since "$t") s ($(docker image ls --format '{{.Size}}' "leoflow/xcom:$version"))"
t=$(stamp)
docker build --network host -q "${build_args[@]}" --build-arg "XCOM_IMAGE=leoflow/xcom:$version" \
    -f compose/Dockerfile.loadtest -t "leoflow/xcom-locust:$version" . >/dev/null
say "locust image leoflow/xcom-locust:$version built in $(since "$t") s"
t=$(stamp)
docker build --network host -q -f compose/redis/Dockerfile.standin -t leoflow/redis-standin:dev compose/redis >/dev/null
say "redis stand-in built in $(since "$t") s"

t=$(stamp)
"$py" -m pytest -p no:cacheprovider -m e2e tests/e2e \
    --durations=0 -s ${PYTEST_ARGS:-}
say "e2e tests in $(since "$t") s; compose-test total $(since "$t0") s"
