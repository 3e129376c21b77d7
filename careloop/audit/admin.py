from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from careloop.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: audit rows are never added, changed or deleted by hand (F7.6)."""

    list_display = ["at", "username", "action", "patient_id", "object_type", "object_id", "ip"]
    list_filter = ["action", "at"]
    search_fields = ["username", "object_id", "=patient__id"]
    date_hierarchy = "at"
    list_select_related = ["patient"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
