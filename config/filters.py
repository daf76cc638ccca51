"""Filters shared by the API's list endpoints."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 moment, turned into UTC. Python accepts offsets up to ±23:59,
    PostgreSQL only up to ±15:59: a query sent with the offset the client gave
    (``+22:28``) would be a database error, not an answer."""

    def to_python(self, value):
        moment = super().to_python(value)
        return moment.astimezone(UTC) if moment is not None and moment.tzinfo else moment


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
