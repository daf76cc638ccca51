"""Finding the browser the console tests drive: Debian's ``chromium`` (never a
browser downloaded by ``playwright install``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where a failed browser step leaves its screenshot (CI keeps this folder).
SCREENSHOT_DIR = Path(os.environ.get("BUREAU_SCREENSHOT_DIR") or ROOT / "var" / "test-screenshots")


def chromium_path() -> str | None:
    """``BUREAU_CHROMIUM`` when set, else the first Chromium on PATH."""
    configured = os.environ.get("BUREAU_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


MISSING = (
    "browser tests skipped: no Chromium found (install the Debian package `chromium`, "
    "or set BUREAU_CHROMIUM to its path)"
)
MISSING_IN_CI = (
    "no Chromium found and CI=true: the browser tests are mandatory in CI "
    "(scripts/ensure-chromium.sh installs the Debian package `chromium`)"
)
