"""Scanning's own domain errors (the rest are ``config.errors``'s)."""

from __future__ import annotations

from config.errors import ApplicationError, Conflict


class ScannerBusy(Conflict):
    """A move into an active state that the single-active index refused:
    another job holds the scanner."""

    default_code = "scan_job.scanner_busy"


class OperatorPermissionRequired(ApplicationError):
    """A person without ``scanning.operate_scanner`` tried to change scanning
    data. Checked by the services, so the API, the admin and any other caller
    agree."""

    status_code = 403
    default_code = "scanning.permission_denied"
