#!/bin/sh
# Same invocation contract as the official Redis image's docker-entrypoint.sh: when the first
# argument is an option (-...) or a config file (*.conf), `redis-server` is put in front;
# any other command runs as given. So compose.yaml's `command:` works unchanged on both images.
# (The official script also drops root with gosu; this image runs as `redis` from the start.)
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
exec "$@"
