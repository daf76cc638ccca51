"""Date formats for the console (English): timestamps to the second, as an
on-call person compares them with logs. Formats not named here are Django's."""

DATETIME_FORMAT = "N j, Y, H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
TIME_FORMAT = "H:i:s"
