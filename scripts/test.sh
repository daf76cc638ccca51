#!/usr/bin/env bash
# Usage: scripts/test.sh [PYTEST ARGS...]
#
# Runs the whole test suite twice: on SQLite (what developers get by default)
# and on PostgreSQL (what we deploy on), because each hides bugs the other
# exposes: type strictness, transactional DDL, ordering, LIKE/collation rules.
#
# Environment:
#   PYTHON   interpreter with the project's dependencies, relative to the repo
#            root or on PATH (default: .venv/bin/python).
#   CI=true  makes the PostgreSQL pass mandatory: missing server binaries are
#            an error instead of a notice (see scripts/with-postgres.sh, which
#            may also install them in that case).
#   DATABASE_URL / BUREAU_PG_BINDIR  see scripts/with-postgres.sh.
#   BUREAU_CHROMIUM  the browser the console tests drive (scripts/ensure-chromium.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-.venv/bin/python}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "test.sh: Python interpreter '$PYTHON' not found (set PYTHON or create .venv)" >&2
    exit 1
fi

# pytest turns Ctrl-C into a normal-looking exit status, so remember the
# signal ourselves; otherwise a Ctrl-C in the first pass would start the second.
interrupted=0
trap 'interrupted=1' INT

describe() {
    case "$1" in
        0) echo passed ;;
        skipped) echo "skipped (no PostgreSQL server binaries)" ;;
        missing) echo "failed (no PostgreSQL server binaries, required when CI=true)" ;;
        *) echo "failed (exit $1)" ;;
    esac
}

summary() {
    echo "== summary =="
    echo "SQLite:     $(describe "$sqlite_status")"
    echo "PostgreSQL: $(describe "$pg_status")"
}

sqlite_status=0
pg_status=skipped

# The browser tests (tests/console) need Chromium: in CI it is installed if
# missing and its absence fails the run; elsewhere they are skipped, with the
# reason in pytest's summary.
if [ "${CI:-}" = true ] && ! bash scripts/ensure-chromium.sh; then
    echo "Chromium not available and CI=true: the browser tests are mandatory in CI, failing" >&2
    exit 1
fi

echo "== pytest on SQLite =="
# An exported DATABASE_URL (e.g. a developer's local Postgres) would silently
# turn this pass into a second PostgreSQL run.
env -u DATABASE_URL "$PYTHON" -m pytest "$@" || sqlite_status=$?

if [ "$interrupted" = 1 ]; then
    echo "test.sh: interrupted" >&2
    exit 130
fi

echo "== pytest on PostgreSQL =="
# with-postgres.sh exits 3 when it finds no server binaries, but pytest also
# exits 3 (internal error). Only a 3 seen before pytest started means "no
# binaries", so the command leaves a flag file as it starts.
flag_dir=$(mktemp -d)
trap 'rm -rf "$flag_dir"' EXIT
pg_status=0
bash scripts/with-postgres.sh \
    sh -c ': >"$0/started" && exec "$@"' "$flag_dir" "$PYTHON" -m pytest "$@" \
    || pg_status=$?

if [ "$interrupted" = 1 ]; then
    echo "test.sh: interrupted" >&2
    exit 130
fi

if [ "$pg_status" = 3 ] && [ ! -e "$flag_dir/started" ]; then
    if [ "${CI:-}" = true ]; then
        pg_status=missing
        summary
        echo "PostgreSQL server binaries not found and CI=true: the PostgreSQL pass is mandatory in CI, failing" >&2
        exit 1
    fi
    pg_status=skipped
    summary
    echo "PostgreSQL server binaries not found: ran the suite on SQLite only"
    exit "$sqlite_status"
fi

summary
if [ "$sqlite_status" != 0 ]; then
    exit "$sqlite_status"
fi
exit "$pg_status"
