"""The department gate every app uses to scope data to a user (F7.5)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from careloop.accounts.models import Department, User


def sees_all_departments(user: User) -> bool:
    return bool(user.is_authenticated and (user.all_departments or user.is_superuser))


def department_ids(user: User) -> set[int] | None:
    """Ids of the departments whose data ``user`` may see; ``None`` means every department."""
    if sees_all_departments(user):
        return None
    if not user.is_authenticated:
        return set()
    return set(user.departments.values_list("id", flat=True))


def department_filter(user: User, field: str = "department") -> Q:
    """A Q object restricting ``field`` (a FK to Department) to the user's departments."""
    ids = department_ids(user)
    if ids is None:
        return Q()
    return Q(**{f"{field}__in": ids})


def visible_departments(user: User):  # type: ignore[no-untyped-def]
    return Department.objects.filter(department_filter(user, "id"))


def staff_visible_to(user: User):  # type: ignore[no-untyped-def]
    """Staff a supervisor or administrator may list: those sharing one of their departments."""
    staff = User.objects.prefetch_related("departments").order_by("username")
    ids = department_ids(user)
    if ids is None:
        return staff
    return staff.filter(
        Exists(
            User.departments.through.objects.filter(user_id=OuterRef("pk"), department_id__in=ids)
        )
    )


def search_staff(staff, q: str):  # type: ignore[no-untyped-def]
    return staff.filter(
        Q(username__icontains=q) | Q(display_name__icontains=q) | Q(staff_code__iexact=q)
    )
