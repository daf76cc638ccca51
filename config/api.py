"""Project-wide REST plumbing named by the ``REST_FRAMEWORK`` settings:
pagination. The JSON renderer is ``config.renderers`` and the exception
handler ``config.exception_handler``.

Nothing here imports ``rest_framework.views``: its ``APIView`` reads the
classes the settings name when it is defined, so a module that both defines
them and imports it fails whenever it is the first to be imported (DRF's
pagination system check does that).
"""

from __future__ import annotations

import binascii

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class _ListCursor(CursorPagination):
    """DRF's cursor pagination in the list's own order (the queryset's
    ``order_by``, else the model's ``Meta.ordering``): a page is "the next
    rows after this one" in an index, so a deep page costs what the first
    does. A cursor that is not one of ours is a 400 naming ``cursor``."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_ordering(self, request, queryset, view):
        ordering = tuple(queryset.query.order_by or queryset.model._meta.ordering)
        if not ordering or not all(isinstance(field, str) for field in ordering):
            raise TypeError(f"{view!r}: a cursor needs a list ordered by fields")
        self._position_field = queryset.model._meta.get_field(ordering[0].lstrip("-"))
        return ordering

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return None  # ``?cursor=``: the first page
        try:
            binascii.a2b_base64(encoded.encode("ascii"), strict_mode=True)
            cursor = super().decode_cursor(request)
            if cursor.position is not None:
                if "\x00" in cursor.position:  # PostgreSQL refuses it in any string
                    raise ValueError("NUL in a cursor")
                self._position_field.to_python(cursor.position)
        except (NotFound, ValueError, DjangoValidationError, binascii.Error):
            raise ValidationError({"cursor": ["Not a cursor this list gave out."]}) from None
        return cursor


# From this many rows deep, a numbered page finds its rows' keys first.
KEYS_FIRST_FROM = 1000


class _KeysFirstPaginator(DjangoPaginator):
    """Django's paginator, except that a page from ``KEYS_FIRST_FROM`` rows
    deep is read in two statements: the page's primary keys (``OFFSET`` over
    the list's order, which its index answers alone, without reading or
    sorting whole rows), then those rows with everything the list joins.
    Skipping 99,950 pending actions with their joins had PostgreSQL sort the
    whole table on disk (bench/scale_bench.py). Shallower pages stay one
    statement."""

    def _get_page(self, object_list, number, paginator):
        # ``object_list`` is the list's queryset sliced by ``Paginator.page``.
        if (
            isinstance(object_list, QuerySet)
            and object_list.query.low_mark >= KEYS_FIRST_FROM
            and not object_list.query.distinct
            and not object_list.query.combinator
        ):
            keys = list(object_list.values_list("pk", flat=True))
            # The list's own ORDER BY still orders them.
            object_list = self.object_list.filter(pk__in=keys)
        return super()._get_page(object_list, number, paginator)


class Pagination(PageNumberPagination):
    """``?page=`` (with ``count``) as before, or ``?cursor=`` (empty for the
    first page, then the ``next``/``previous`` links): cursor pages carry no
    ``count`` and never skip over rows, however deep. A deep numbered page
    still skips rows, but over an index alone (``_KeysFirstPaginator``)."""

    django_paginator_class = _KeysFirstPaginator
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    cursor_query_param = "cursor"

    _cursor: _ListCursor | None = None

    def paginate_queryset(self, queryset, request, view=None):
        if self.cursor_query_param not in request.query_params:
            return super().paginate_queryset(queryset, request, view)
        if self.page_query_param in request.query_params:
            raise ValidationError(
                {self.cursor_query_param: ["Ask for a page or a cursor, not both."]}
            )
        self._cursor = _ListCursor()
        return self._cursor.paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        if self._cursor is not None:
            return self._cursor.get_paginated_response(data)
        return super().get_paginated_response(data)

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Cursor pagination instead of page numbers: empty for the "
                "first page, then the value in the `next` or `previous` link. Cursor pages "
                "have no `count`; deep pages cost what the first does.",
                "schema": {"type": "string"},
            },
        ]

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "example": 123,
                    "description": "All matching rows (page-number pages only).",
                },
                "next": {**link, "example": "http://api.example.org/accounts/?cursor=cD0y"},
                "previous": {**link, "example": "http://api.example.org/accounts/?page=2"},
                "results": schema,
            },
        }
