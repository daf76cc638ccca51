#!/usr/bin/env bash
# Usage: scripts/ensure-chromium.sh
#
# Makes sure the browser tests (tests/console) find a Chromium: Debian's
# `chromium` package, driven by Playwright (`playwright install` is never run).
#
# - Found (BUREAU_CHROMIUM, or chromium / chromium-browser on PATH): exit 0.
# - Not found, CI=true, running as root with apt-get: installs the `chromium`
#   package, as scripts/with-postgres.sh installs postgresql; exit 0 if the
#   browser is there afterwards.
# - Otherwise exit 1 with one line saying why. Outside CI the test suite then
#   skips the browser tests (and says so); scripts/test.sh calls this only
#   when CI=true, where a missing browser fails the run.
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

find_chromium() {
    if [ -n "${BUREAU_CHROMIUM:-}" ]; then
        [ -x "$BUREAU_CHROMIUM" ] && printf '%s\n' "$BUREAU_CHROMIUM"
        return 0
    fi
    command -v chromium || command -v chromium-browser || true
}

found=$(find_chromium)
if [ -z "$found" ] && [ -z "${BUREAU_CHROMIUM:-}" ] \
    && [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ] && command -v apt-get >/dev/null 2>&1; then
    log "no Chromium found; CI=true, installing the chromium package"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2; then
        log "apt-get install chromium failed"
    fi
    found=$(find_chromium)
fi

if [ -z "$found" ]; then
    if [ -n "${BUREAU_CHROMIUM:-}" ]; then
        log "BUREAU_CHROMIUM=$BUREAU_CHROMIUM is not an executable"
    else
        log "no Chromium found; install the Debian package chromium (or set BUREAU_CHROMIUM)"
    fi
    exit 1
fi
log "using $found"
