#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server on a free loopback port.
#
#   scripts/with-postgres.sh swift test --filter OutboxConsumerPostgresTests
#
# Exports for the command:
#   OUTBOX_TEST_POSTGRES_URL  postgres://outbox_test:<password>@127.0.0.1:<port>/outbox_test
#                             (a role with a password that owns the database; not a superuser)
#   OUTBOX_POSTGRES_BINDIR    the directory of initdb, pg_ctl and postgres (tests that stop or
#                             restart a server start a private one with them)
#   OUTBOX_POSTGRES_RUN_AS    the system user that runs them (`postgres` when this runs as root,
#                             empty otherwise)
# The cluster lives in a temporary directory (its Unix socket too), with fsync off: it is thrown
# away. Set WITH_POSTGRES_DURABLE=1 to keep fsync on (for benchmarks that should pay for it).
# The server is stopped and the directory removed on exit, whatever happens. Exits with the
# command's status.
#
# initdb refuses to run as root: as root, the server runs as the `postgres` system user
# (Debian's postgresql package creates it) on a directory that user owns; otherwise as the
# current user.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

log() { echo "with-postgres: $*" >&2; }

# The directory holding initdb/pg_ctl/postgres: pg_config's answer when it has them, else the
# newest Debian /usr/lib/postgresql/*/bin, else whatever PATH has (Homebrew, Postgres.app).
find_bindir() {
    local candidate
    if command -v pg_config >/dev/null 2>&1; then
        candidate=$(pg_config --bindir 2>/dev/null || true)
        if [[ -n "$candidate" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
            printf '%s' "$candidate"
            return
        fi
    fi
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$candidate" && -x "$candidate/initdb" ]]; then
        printf '%s' "$candidate"
        return
    fi
    candidate=$(command -v initdb 2>/dev/null || true)
    if [[ -n "$candidate" ]]; then
        dirname "$candidate"
    fi
}

BINDIR=$(find_bindir)
if [[ -z "$BINDIR" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL not found; installing it with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -q --no-install-recommends postgresql </dev/null >&2; then
            apt-get update -q </dev/null >&2
            apt-get install -y -q --no-install-recommends postgresql </dev/null >&2
        fi
        BINDIR=$(find_bindir)
    fi
fi
if [[ -z "$BINDIR" ]]; then
    log "PostgreSQL's initdb not found. Install it (Debian/Ubuntu: apt-get install postgresql;" \
        "macOS: brew install postgresql) or put its bin directory on PATH."
    exit 1
fi

RUN_AS=""
if [[ $(id -u) -eq 0 ]]; then
    RUN_AS=postgres
    if ! id -u "$RUN_AS" >/dev/null 2>&1; then
        log "running as root, but there is no '$RUN_AS' system user to run PostgreSQL as" \
            "(initdb refuses root); install Debian's postgresql package or run as another user"
        exit 1
    fi
fi

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/with-postgres.XXXXXX")
# The server's user must reach the directory: a TMPDIR under root's home would not do.
if [[ -n "$RUN_AS" ]] && ! runuser -u "$RUN_AS" -- test -x "$(dirname "$WORK_DIR")"; then
    rmdir "$WORK_DIR"
    WORK_DIR=$(mktemp -d /tmp/with-postgres.XXXXXX)
fi
DATA_DIR="$WORK_DIR/data"
SERVER_LOG="$WORK_DIR/server.log"
if [[ -n "$RUN_AS" ]]; then
    chown "$RUN_AS" "$WORK_DIR"
fi

# Runs a PostgreSQL program as the server's user, from a directory that user can enter.
as_server_user() {
    if [[ -n "$RUN_AS" ]]; then
        (cd "$WORK_DIR" && runuser -u "$RUN_AS" -- "$@")
    else
        (cd "$WORK_DIR" && "$@")
    fi
}

STARTED=""
cleanup() {
    if [[ -n "$STARTED" ]]; then
        as_server_user "$BINDIR/pg_ctl" -D "$DATA_DIR" -m fast -w -t 20 stop >/dev/null 2>&1 || true
        # Whatever pg_ctl could not stop: the postmaster's pid is the first line of its pid file.
        if [[ -f "$DATA_DIR/postmaster.pid" ]]; then
            pid=$(head -n 1 "$DATA_DIR/postmaster.pid" 2>/dev/null || true)
            if [[ "$pid" =~ ^[0-9]+$ ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
        fi
    fi
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_in_use, free_port
source "$(dirname "${BASH_SOURCE[0]}")/free-port.sh"

# Local (socket) connections of the server's user need no password, for the setup below;
# TCP connections need one.
if ! as_server_user "$BINDIR/initdb" -D "$DATA_DIR" -U postgres --encoding=UTF8 --no-locale --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 >"$WORK_DIR/initdb.log" 2>&1; then
    log "initdb failed; its output:"
    cat "$WORK_DIR/initdb.log" >&2 || true
    exit 1
fi

durability=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
if [[ "${WITH_POSTGRES_DURABLE:-}" == "1" ]]; then
    durability=()
fi

# The port can be taken between choosing and binding it: retry with another one.
PORT=""
for attempt in 1 2 3; do
    candidate=$(free_port)
    options="-p $candidate -k $WORK_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 ${durability[*]}"
    if as_server_user "$BINDIR/pg_ctl" -D "$DATA_DIR" -l "$SERVER_LOG" -o "$options" -w -t 30 start >/dev/null 2>&1; then
        STARTED=1
        PORT=$candidate
        break
    fi
    log "postgres could not start on port $candidate (attempt $attempt); its log:"
    tail -n 20 "$SERVER_LOG" >&2 2>/dev/null || true
done
if [[ -z "$PORT" ]]; then
    log "giving up: postgres did not start"
    exit 1
fi

# A role with a password (what applications use: no superuser) that owns a database of its own.
USER_NAME=outbox_test
DATABASE=outbox_test
PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
psql_admin() {
    as_server_user "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK_DIR" -p "$PORT" -U postgres -d postgres "$@"
}
# The password goes through stdin, so it is never in a process listing.
if ! psql_admin >"$WORK_DIR/setup.log" 2>&1 <<SQL; then
CREATE ROLE $USER_NAME LOGIN PASSWORD '$PASSWORD';
CREATE DATABASE $DATABASE OWNER $USER_NAME;
SQL
    log "creating the test role and database failed:"
    cat "$WORK_DIR/setup.log" >&2 || true
    exit 1
fi

export OUTBOX_TEST_POSTGRES_URL="postgres://$USER_NAME:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
export OUTBOX_POSTGRES_BINDIR="$BINDIR"
export OUTBOX_POSTGRES_RUN_AS="$RUN_AS"
version=$("$BINDIR/postgres" --version 2>/dev/null | sed -n "s/[^0-9]*\([0-9][0-9.]*\).*/\1/p")
log "postgres $version at postgres://$USER_NAME@127.0.0.1:$PORT/$DATABASE${RUN_AS:+ (running as $RUN_AS)}"

set +e
"$@"
status=$?
set -e
exit "$status"
