#!/usr/bin/env bash
# upgrade.sh - upgrade the Leoflow XCom appliance by changing its pinned image tags.
#
#   scripts/upgrade.sh --version 0.2.0                 project images leoflow/xcom:0.2.0 ...
#   scripts/upgrade.sh --redis-image redis:7.4.3       another Redis tag
#   scripts/upgrade.sh --set LEOFLOW_XCOM_IMAGE=registry.example/xcom:0.2.0
#
# Options:
#   --env-file FILE   the pins to edit (default compose/.env); a backup FILE.bak-<time> is kept
#   --no-pull         do not `docker compose pull` (images built or loaded locally)
#   -- ARGS...        `docker compose` arguments instead of the default `-f compose.yaml`
#                     (e.g. -- -f compose.yaml -f my-override.yaml -p myproject)
#
# What it does: edits the tags in the env file, `docker compose pull`, `docker compose up -d
# --wait`. Containers whose image changed are recreated; the named volumes (Redis data with its
# AOF, secrets, ACL file) are kept, so data survives. xcom-init runs again first: if the new
# version does not know the data-layout version in Redis it refuses with a clear message
# (STORE_LAYOUT_MISMATCH) and the services are not started on it; roll back by restoring the
# backup env file and running `docker compose up -d` again.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
compose_dir="$here/compose"
env_file="$compose_dir/.env"
pull=1
sets=()
compose_args=()

die() { printf 'upgrade: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --version)
            [[ $# -ge 2 ]] || usage
            sets+=("LEOFLOW_VERSION=$2" "LEOFLOW_XCOM_IMAGE=leoflow/xcom:$2" "LEOFLOW_LOCUST_IMAGE=leoflow/xcom-locust:$2")
            shift 2 ;;
        --redis-image) [[ $# -ge 2 ]] || usage; sets+=("LEOFLOW_REDIS_IMAGE=$2"); shift 2 ;;
        --set) [[ $# -ge 2 && $2 == *=* ]] || usage; sets+=("$2"); shift 2 ;;
        --env-file) [[ $# -ge 2 ]] || usage; env_file=$2; shift 2 ;;
        --no-pull) pull=0; shift ;;
        --) shift; compose_args=("$@"); break ;;
        -h | --help) usage ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ ${#sets[@]} -gt 0 ]] || die "nothing to change: give --version, --redis-image or --set"
[[ -f $env_file ]] || die "no env file $env_file"
[[ ${#compose_args[@]} -gt 0 ]] || compose_args=(-f compose.yaml)

backup="$env_file.bak-$(date +%Y%m%d%H%M%S)"
cp -p "$env_file" "$backup"
for assignment in "${sets[@]}"; do
    name=${assignment%%=*}
    value=${assignment#*=}
    [[ $name =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "bad variable name $name"
    if grep -q "^$name=" "$env_file"; then
        # replace the line in place (no sed: values contain / and :)
        awk -v n="$name" -v v="$value" 'BEGIN { FS = OFS = "=" } $1 == n { print n "=" v; next } { print }' \
            "$env_file" >"$env_file.tmp" && cat "$env_file.tmp" >"$env_file" && rm -f "$env_file.tmp"
    else
        printf '%s=%s\n' "$name" "$value" >>"$env_file"
    fi
    printf 'upgrade: %s=%s\n' "$name" "$value" >&2
done

cd "$compose_dir"
compose=(docker compose --env-file "$env_file" "${compose_args[@]}")
if [[ $pull -eq 1 ]]; then
    "${compose[@]}" pull --ignore-buildable
fi
if ! "${compose[@]}" up -d --wait; then
    "${compose[@]}" logs --no-color --tail 20 xcom-init xcom-init-redis >&2 || true
    die "the stack did not come up healthy with the new tags (see above). To roll back: cp '$backup' '$env_file' && ${compose[*]} up -d --wait"
fi
printf 'upgrade: done; previous pins kept in %s\n' "$backup" >&2
