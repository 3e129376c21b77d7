from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from careloop.accounts.choices import Role
from careloop.accounts.roles import ROLE_PERMISSIONS


class RoleBackend(ModelBackend):
    """Adds the permissions of the user's role to those granted in the admin."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        perms = set(super().get_all_permissions(user_obj, obj))
        perms |= ROLE_PERMISSIONS.get(user_obj.role, frozenset())
        return perms

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if (
            user_obj.is_active
            and not user_obj.is_anonymous
            and getattr(user_obj, "role", None) == Role.ADMIN
        ):
            return True
        return perm in self.get_all_permissions(user_obj, obj)
