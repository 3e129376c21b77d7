"""Django admin for staff and departments. Only administrators may enter the admin site."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from careloop.accounts.choices import Role
from careloop.accounts.models import Department, User


def _administrators_only(request: HttpRequest) -> bool:
    # Roles, not Django's is_staff flag, decide who administers CareLoop (F7.5); the project keeps
    # the default admin site, so its entry check is replaced here rather than in settings.
    user = request.user
    return bool(user.is_active and (user.is_superuser or getattr(user, "role", None) == Role.ADMIN))


admin.site.has_permission = _administrators_only  # type: ignore[method-assign]
admin.site.site_header = _("CareLoop administration")
admin.site.site_title = _("CareLoop")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "head", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["head"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = [
        "username",
        "display_name",
        "role",
        "all_departments",
        "is_active",
        "last_login",
        "locked_until",
    ]
    list_filter = ["role", "all_departments", "is_active", "departments"]
    search_fields = ["username", "display_name", "staff_code", "email"]
    filter_horizontal = ["departments", "groups", "user_permissions"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Person"), {"fields": ("display_name", "staff_code", "phone", "email")}),
        (_("Role and departments"), {"fields": ("role", "departments", "all_departments")}),
        (
            _("Access"),
            {
                "fields": (
                    "is_active",
                    "failed_logins",
                    "locked_until",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "display_name",
                    "role",
                    "departments",
                    "all_departments",
                    "password1",
                    "password2",
                ),
            },
        ),
    )
    readonly_fields = ["last_login", "date_joined"]
