"""Project-wide REST plumbing named by the ``REST_FRAMEWORK`` settings:
pagination. The JSON renderer is ``config.renderers`` and the exception
handler ``config.exception_handler``.

Nothing here imports ``rest_framework.views``: its ``APIView`` reads the
classes the settings name when it is defined, so a module that both defines
them and imports it fails whenever it is the first to be imported (DRF's
pagination system check does that).
"""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
