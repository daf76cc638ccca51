"""What can go wrong talking to Knox, typed so callers can decide.

- ``KnoxUnavailable``: the request did not reach Knox (refused, DNS, connect
  timeout, 5xx): nothing happened there.
- ``KnoxTimeout``: sent, but no answer in time: the outcome is unknown.
- ``KnoxRejected``: Knox answered and said no, with its message.
- ``KnoxProtocolError``: Knox answered something we cannot read.
"""

from config.errors import ApplicationError


class KnoxError(ApplicationError):
    status_code = 502
    default_code = "knox.error"


class KnoxUnavailable(KnoxError):
    status_code = 503
    default_code = "knox.unavailable"


class KnoxTimeout(KnoxError):
    status_code = 504
    default_code = "knox.timeout"


class KnoxRejected(KnoxError):
    default_code = "knox.rejected"


class KnoxProtocolError(KnoxError):
    default_code = "knox.protocol_error"
