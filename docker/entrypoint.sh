#!/bin/sh
# tagloop container entrypoint (POSIX sh).
#   serve [ARGS]    wait for PostgreSQL (and Redis with TAGLOOP_WORKER=redis), migrate, then
#                   exec tagloop serve --host $TAGLOOP_HOST --port $TAGLOOP_PORT ARGS   (the default command)
#   worker [ARGS]   wait for PostgreSQL and Redis, migrate, then exec tagloop worker ARGS
#   tagloop ARGS    exec any other tagloop command as is (no waiting, no migration)
#   anything else   exec'd as is (e.g. sh)
# Waiting gives up after TAGLOOP_WAIT_S seconds (default 60) with exit code 69 and names the unreachable host.
set -eu

here=$(dirname "$0")
python=${TAGLOOP_PYTHON:-python}
wait_s=${TAGLOOP_WAIT_S:-60}

log() {
    printf 'entrypoint: %s\n' "$*" >&2
}

wait_for() {
    # $1: what it is, $2: its URL (the password is never printed)
    if ! "$python" "$here/wait_for.py" "$2" "$wait_s"; then
        log "giving up: the $1 is unreachable after ${wait_s} s (TAGLOOP_WAIT_S)"
        exit 69
    fi
}

prepare() {
    case "${TAGLOOP_DATABASE_URL:-}" in
        "" | sqlite*) ;;
        *) wait_for database "$TAGLOOP_DATABASE_URL" ;;
    esac
    if [ "$1" = worker ] || [ "${TAGLOOP_WORKER:-inprocess}" = redis ]; then
        wait_for Redis "${TAGLOOP_REDIS_URL:-redis://127.0.0.1:6379/0}"
    fi
    log "migrating the database schema"
    tagloop migrate
}

command=${1:-serve}
if [ "$#" -gt 0 ]; then
    shift
fi
case "$command" in
    serve)
        prepare serve
        exec tagloop serve --host "${TAGLOOP_HOST:-0.0.0.0}" --port "${TAGLOOP_PORT:-9090}" "$@"
        ;;
    worker)
        prepare worker
        exec tagloop worker "$@"
        ;;
    tagloop)
        exec tagloop "$@"
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
