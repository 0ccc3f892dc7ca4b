#!/usr/bin/env bash
# Runs a command with a throw-away redis-server on a free loopback port.
#
#   scripts/with-redis.sh swift test --filter HiredisClientTests
#
# Exports for the command:
#   OUTBOX_REDIS_TEST_URL  redis://127.0.0.1:<port>
#   OUTBOX_REDIS_SERVER    path of the redis-server binary (tests that must kill a server
#                          start a private one with it)
# The server runs without persistence in a temporary directory; both are removed on exit,
# whatever happens. Exits with the command's status.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

log() { echo "with-redis: $*" >&2; }

find_redis_server() {
    local candidate
    candidate=$(command -v redis-server 2>/dev/null || true)
    if [[ -z "$candidate" ]]; then
        for candidate in /usr/bin/redis-server /usr/sbin/redis-server /usr/local/bin/redis-server /opt/homebrew/bin/redis-server; do
            [[ -x "$candidate" ]] && break
            candidate=""
        done
    fi
    printf '%s' "$candidate"
}

REDIS_SERVER=$(find_redis_server)
if [[ -z "$REDIS_SERVER" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "redis-server not found; installing it with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -q --no-install-recommends redis-server </dev/null >&2; then
            apt-get update -q </dev/null >&2
            apt-get install -y -q --no-install-recommends redis-server </dev/null >&2
        fi
        REDIS_SERVER=$(find_redis_server)
    fi
fi
if [[ -z "$REDIS_SERVER" ]]; then
    log "redis-server not found. Install it (Debian/Ubuntu: apt-get install redis-server;" \
        "macOS: brew install redis) or put it on PATH."
    exit 1
fi

# Answers 0 when a Redis server on $1 replies PONG. Loopback only, so a refused or
# answered connection is immediate; `read -t` bounds the wait for a reply.
ping_redis() {
    local port=$1 reply=""
    if command -v redis-cli >/dev/null 2>&1; then
        reply=$(redis-cli -h 127.0.0.1 -p "$port" ping </dev/null 2>/dev/null || true)
    else
        # Plain RESP over bash's /dev/tcp: an inline command, one status line back.
        reply=$(
            exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
            printf 'PING\r\n' >&3
            IFS= read -r -t 2 line <&3 || true
            printf '%s' "${line:-}"
        )
        reply=${reply%$'\r'}
        reply=${reply#+}
    fi
    [[ "$reply" == "PONG" ]]
}

# port_in_use, free_port
source "$(dirname "${BASH_SOURCE[0]}")/free-port.sh"

DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/with-redis.XXXXXX")
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# DEBUG is off by default since Redis 7 and the option does not exist before it.
extra_args=()
version=$("$REDIS_SERVER" --version | sed -n 's/.*v=\([0-9]*\).*/\1/p')
if [[ -n "$version" && "$version" -ge 7 ]]; then
    extra_args+=(--enable-debug-command local)
fi

# The port can be taken between choosing and binding it: retry with another one.
PORT=""
for attempt in 1 2 3; do
    candidate=$(free_port)
    : >"$DATA_DIR/redis.log"
    "$REDIS_SERVER" --port "$candidate" --bind 127.0.0.1 --dir "$DATA_DIR" \
        --save "" --appendonly no --daemonize no --logfile "$DATA_DIR/redis.log" \
        "${extra_args[@]}" </dev/null >>"$DATA_DIR/redis.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if ping_redis "$candidate"; then
            PORT=$candidate
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$PORT" ]] && break
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "redis-server on port $candidate did not answer PING within 10 s; its log:"
        cat "$DATA_DIR/redis.log" >&2 || true
        exit 1
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    log "redis-server could not start on port $candidate (attempt $attempt); its log:"
    cat "$DATA_DIR/redis.log" >&2 || true
done
if [[ -z "$PORT" ]]; then
    log "giving up: redis-server did not start"
    exit 1
fi

export OUTBOX_REDIS_TEST_URL="redis://127.0.0.1:$PORT"
export OUTBOX_REDIS_SERVER="$REDIS_SERVER"
log "redis-server $("$REDIS_SERVER" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') at $OUTBOX_REDIS_TEST_URL (pid $SERVER_PID)"

set +e
"$@"
status=$?
set -e
exit "$status"
