#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD [ARGS...]
#
# Runs CMD with DATABASE_URL pointing at a real PostgreSQL server, so the test
# suite can be exercised against the database we deploy on, not only SQLite.
#
# - If DATABASE_URL already names a PostgreSQL server, that server is used
#   as-is (CI services, a developer's local instance, a cluster started by an
#   outer invocation of this script).
# - Otherwise a throwaway cluster is created in a temp dir, used for CMD and
#   destroyed afterwards, whatever way CMD ends.
#
# Exit status: CMD's status; 3 if no PostgreSQL server binaries could be found
# (kept distinct so callers can choose between "skip" and "fail"); other
# non-zero values if the throwaway cluster could not be set up.
#
# Environment:
#   DATABASE_URL       see above.
#   BUREAU_PG_BINDIR   if set, the ONLY directory searched for initdb/pg_ctl
#                      (no pg_config, no /usr/lib/postgresql, no apt-get).
#                      Lets operators pin a server version, and lets us
#                      exercise the "no binaries" path in tests.
#   CI=true            allows installing the postgresql package with apt-get
#                      when running as root and no binaries are found. Never
#                      done on developer machines: that is their call.
set -euo pipefail

readonly EXIT_NO_BINARIES=3
readonly DB_USER=bureau
readonly DB_NAME=bureau

log() { printf 'with-postgres: %s\n' "$*" >&2; }

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

# Hide the password (userinfo and ?password=) so the line is safe in CI logs.
mask_url() {
    printf '%s\n' "$1" | sed -E \
        -e 's#^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?]*):[^/?]*@#\1:****@#' \
        -e 's#([?&]password=)[^&]*#\1****#g'
}

case "${DATABASE_URL:-}" in
    postgres://* | postgresql://*)
        log "using existing PostgreSQL server: $(mask_url "$DATABASE_URL")"
        exec "$@"
        ;;
    "") ;;
    *)
        log "ignoring non-PostgreSQL DATABASE_URL ($(mask_url "$DATABASE_URL")); starting a throwaway cluster"
        ;;
esac

# ---------------------------------------------------------------------------
# Locate server binaries.
# ---------------------------------------------------------------------------

has_server_bins() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ]; }

find_bindir() {
    if [ -n "${BUREAU_PG_BINDIR+set}" ]; then
        if has_server_bins "$BUREAU_PG_BINDIR"; then
            printf '%s\n' "$BUREAU_PG_BINDIR"
        fi
        return 0
    fi
    # pg_config is often present without the server (libpq-dev), hence the
    # check that initdb/pg_ctl really sit next to it.
    local dir
    if dir=$(pg_config --bindir 2>/dev/null) && has_server_bins "$dir"; then
        printf '%s\n' "$dir"
        return 0
    fi
    # Debian/Ubuntu keep server binaries off PATH, one dir per major version.
    local candidate
    for candidate in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
        if has_server_bins "$candidate"; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 0
}

PG_BIN=$(find_bindir)

if [ -z "$PG_BIN" ] && [ -z "${BUREAU_PG_BINDIR+set}" ] \
    && [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ] && command -v apt-get >/dev/null 2>&1; then
    log "no PostgreSQL server binaries found; CI=true, installing the postgresql package"
    # apt's chatter goes to stderr so CMD's stdout stays clean; a failed
    # install is reported by the "not found" message below.
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2; then
        log "apt-get install postgresql failed"
    fi
    PG_BIN=$(find_bindir)
fi

if [ -z "$PG_BIN" ]; then
    if [ -n "${BUREAU_PG_BINDIR+set}" ]; then
        echo "PostgreSQL server binaries (initdb, pg_ctl) not found in BUREAU_PG_BINDIR=$BUREAU_PG_BINDIR" >&2
    else
        echo "PostgreSQL server binaries (initdb, pg_ctl) not found; install the postgresql package or set BUREAU_PG_BINDIR" >&2
    fi
    exit "$EXIT_NO_BINARIES"
fi

CREATEDB="$PG_BIN/createdb"
if [ ! -x "$CREATEDB" ]; then
    # Some layouts ship the client tools separately from the server.
    CREATEDB=$(command -v createdb || true)
    if [ -z "$CREATEDB" ]; then
        log "createdb not found (neither in $PG_BIN nor on PATH)"
        exit 1
    fi
fi

# ---------------------------------------------------------------------------
# Throwaway cluster.
# ---------------------------------------------------------------------------

# PostgreSQL refuses to run as root, so as root we drop to the postgres system
# user for every server-side command.
PG_OS_USER=""
if [ "$(id -u)" = 0 ]; then
    PG_OS_USER=postgres
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "running as root but there is no '$PG_OS_USER' user to run the server as"
        exit 1
    fi
fi

# Runs a server-side command, as the postgres user when we are root. The cwd
# is the cluster's temp dir because the caller's cwd (e.g. the repo) may not be
# readable by postgres, and initdb/pg_ctl complain about that.
as_pg() {
    if [ -z "$PG_OS_USER" ]; then
        (cd "$TMPD" && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd "$TMPD" && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd "$TMPD" && su "$PG_OS_USER" -s /bin/bash -c "$(printf '%q ' "$@")")
    fi
}

TMPD=""
CHILD=""

cleanup() {
    # Must never abort half-way: a leftover postmaster or data dir is exactly
    # what this script promises not to leave behind. A second Ctrl-C during
    # shutdown would otherwise cut it short (the EXIT trap only runs once).
    set +e
    trap '' INT TERM
    # postmaster.pid also covers a postmaster that pg_ctl gave up waiting for.
    if [ -n "$TMPD" ] && [ -f "$TMPD/data/postmaster.pid" ]; then
        if ! as_pg "$PG_BIN/pg_ctl" -D "$TMPD/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
            log "fast shutdown failed, forcing immediate shutdown"
            as_pg "$PG_BIN/pg_ctl" -D "$TMPD/data" -m immediate -w -t 30 stop >/dev/null 2>&1
        fi
    fi
    if [ -n "$TMPD" ] && [ -d "$TMPD" ]; then
        rm -rf -- "$TMPD"
    fi
    TMPD=""
}

child_alive() { [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; }

# Wait up to $1 seconds for CMD to exit on its own.
wait_child_for() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        child_alive || return 0
        sleep 0.1
    done
    return 1
}

on_signal() {
    local sig=$1 code=$2
    trap '' INT TERM
    if child_alive; then
        # A terminal Ctrl-C already reached CMD (same process group), and a
        # second SIGINT would interrupt its own clean-up (pytest's summary),
        # so give it a moment first. TERM sent to us alone is passed on.
        if [ "$sig" = INT ]; then
            wait_child_for 10 || kill -TERM "$CHILD" 2>/dev/null || true
        else
            kill -TERM "$CHILD" 2>/dev/null || true
        fi
        wait_child_for 10 || kill -KILL "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    exit "$code"   # the EXIT trap stops the cluster
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/bureau-pg.XXXXXXXX")
mkdir "$TMPD/sock"
if [ -n "$PG_OS_USER" ]; then
    chown -R "$PG_OS_USER:" "$TMPD"
    chmod 0755 "$TMPD"
fi

# Connection details come solely from DATABASE_URL; stray libpq variables from
# the caller's shell (PGSSLMODE=require, PGHOST, PGOPTIONS...) would otherwise
# silently redirect or break both createdb and CMD.
while IFS= read -r var; do
    unset "$var"
done < <(compgen -e | grep '^PG' || true)

# A real UTF-8 ctype makes upper()/lower()/ILIKE behave on non-ASCII text like
# in production; plain C is the fallback where C.UTF-8 is not installed. Being
# explicit also stops a broken LANG from making initdb fail.
LOCALE=C
if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
    LOCALE=C.UTF-8
fi

log "initdb with $PG_BIN in $TMPD"
if ! as_pg "$PG_BIN/initdb" -D "$TMPD/data" -U "$DB_USER" --auth=trust \
        -E UTF8 --locale="$LOCALE" --no-sync >"$TMPD/initdb.log" 2>&1; then
    log "initdb failed:"
    tail -n 30 "$TMPD/initdb.log" >&2
    exit 1
fi

if ! command -v python3 >/dev/null 2>&1; then
    log "python3 is needed to pick a free port"
    exit 1
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The port is free when the kernel hands it out but could be taken before the
# postmaster binds it (parallel CI jobs), so retry on that specific failure.
PORT=""
started=0
for attempt in 1 2 3; do
    PORT=$(free_port)
    # Durability is pointless for a database that is deleted afterwards, and
    # turning it off makes the suite markedly faster.
    if as_pg "$PG_BIN/pg_ctl" -w -t 60 -D "$TMPD/data" -l "$TMPD/postgres.log" \
            -o "-p $PORT -k $TMPD/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >/dev/null 2>&1; then
        started=1
        break
    fi
    if grep -q 'Address already in use' "$TMPD/postgres.log" 2>/dev/null && [ "$attempt" -lt 3 ]; then
        log "port $PORT was taken, retrying"
        continue
    fi
    break
done

if [ "$started" != 1 ]; then
    log "PostgreSQL failed to start; tail of its log (the cluster dir is deleted on exit):"
    tail -n 30 "$TMPD/postgres.log" >&2 2>/dev/null || true
    exit 1
fi

if ! as_pg "$CREATEDB" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" "$DB_NAME"; then
    log "createdb failed; tail of postgres log:"
    tail -n 30 "$TMPD/postgres.log" >&2 || true
    exit 1
fi

export DATABASE_URL="postgres://$DB_USER@127.0.0.1:$PORT/$DB_NAME"
log "throwaway PostgreSQL ($PG_BIN) at $DATABASE_URL"

# CMD runs in the background only so that `wait` can be interrupted by our
# signal traps (a foreground child defers them until it exits). In a
# non-interactive shell background jobs get stdin from /dev/null and ignore
# SIGINT; `<&0` and `trap -` undo that so CMD behaves as if in the foreground
# (pdb works, Ctrl-C reaches it).
( trap - INT QUIT; exec "$@" ) <&0 &
CHILD=$!
status=0
wait "$CHILD" || status=$?
CHILD=""
exit "$status"
