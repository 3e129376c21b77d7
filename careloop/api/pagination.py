from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """``?page=N`` and ``?page_size=N`` (at most 200) on every list."""

    page_size_query_param = "page_size"
    max_page_size = 200
