from approvals.knox.client import KnoxClient, StatusReport, get_knox_client
from approvals.knox.errors import (
    KnoxError,
    KnoxProtocolError,
    KnoxRejected,
    KnoxTimeout,
    KnoxUnavailable,
)

__all__ = [
    "KnoxClient",
    "KnoxError",
    "KnoxProtocolError",
    "KnoxRejected",
    "KnoxTimeout",
    "KnoxUnavailable",
    "StatusReport",
    "get_knox_client",
]
