"""Writing the audit log (F7.6). Rows are only ever inserted."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from careloop.accounts.models import User
from careloop.audit.models import AuditEvent
from careloop.patients.models import Patient


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    user: User | None,
    patient: Patient | None = None,
    obj: Any = None,
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one audit event. ``detail`` must not contain personal data (ids and counts only)."""
    return AuditEvent.objects.create(
        action=action,
        user=user if user is not None and user.is_authenticated else None,
        username=user.get_username() if user is not None and user.is_authenticated else "",
        patient=patient,
        object_type=type(obj).__name__ if obj is not None else ("Patient" if patient else ""),
        object_id=str(getattr(obj, "pk", "") or (patient.pk if patient else "")),
        detail=detail or {},
        ip=_client_ip(request),
    )
